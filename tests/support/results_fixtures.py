"""A tiny real run for the results-out tests: a zero-shot CLIP and a standard baseline (tiny,
random) on an ImageFolder, clean and under fog, plus an FGSM unit on the baseline; built once."""

from __future__ import annotations

import pytest

from support import tinymodels


def build_tiny_run(root, fx) -> dict:
    from roz import api
    from roz.engine.options import RunOptions

    cfg = {"models": [{"spec": fx["openclip"], "name": "clip"}, {"spec": fx["timm"], "name": "baseline"}],
           "datasets": [{"name": "imagefolder", "root": str(fx["data"]), "label": "tiny-val"}],
           "shifts": ["none", "corruption:fog:3"],
           "attacks": [{"name": "fgsm", "eps": [1 / 255], "models": ["baseline"]}]}
    api.run(cfg, out=root, options=RunOptions(batch_size=8))
    return {"run": root, "wnids": tinymodels.WNIDS}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, fx):
    return build_tiny_run(tmp_path_factory.mktemp("tinyrun") / "run", fx)
