"""Session fixtures shared across packages: an ImageFolder tree and tiny checkpoints (``fx``,
``clifx``, ``seqfx``) and an in-process ``roz`` runner (``roz_cli``)."""

from __future__ import annotations

import sys

import pytest

from support import tinymodels


@pytest.fixture(scope="session")
def fx(tmp_path_factory):
    """An ImageFolder tree and tiny checkpoints of each adapter family."""
    root = tmp_path_factory.mktemp("fx")
    data = tinymodels.make_imagefolder(root / "val", n=6)
    oc_spec, oc_path = tinymodels.openclip_checkpoint(root / "oc")
    tm_spec, tm_path = tinymodels.timm_checkpoint(root / "timm")
    return {"root": root, "data": data, "openclip": oc_spec, "openclip_path": oc_path, "timm": tm_spec,
            "timm_path": tm_path, "wnids": tinymodels.WNIDS}


@pytest.fixture(scope="session")
def clifx(tmp_path_factory):
    """An ImageFolder of 4 wnids x 3 images and a tiny timm checkpoint (32 px input)."""
    root = tmp_path_factory.mktemp("cli")
    data = tinymodels.make_imagefolder(root / "val", n=3)
    spec, path = tinymodels.timm_checkpoint(root / "timm")
    return {"root": root, "data": data, "model": spec, "model_path": path}


@pytest.fixture(scope="session")
def seqfx(tmp_path_factory):
    """An ImageFolder of 4 wnids x 2 random PNGs and two tiny timm checkpoints (32 px input)."""
    root = tmp_path_factory.mktemp("seq")
    data = tinymodels.make_imagefolder(root / "val", n=2, size=(40, 44), ext="png")
    spec_a, _ = tinymodels.timm_checkpoint(root / "a", seed=0)
    spec_b, _ = tinymodels.timm_checkpoint(root / "b", seed=1)
    return {"root": root, "data": data, "model": spec_a, "model_b": spec_b, "wnids": tinymodels.WNIDS}


@pytest.fixture
def roz_cli(monkeypatch, capsys):
    """Run ``roz ARGS`` in this process through ``roz.cli.main`` (its error printer and exit codes)."""
    from roz import cli

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["roz", *map(str, args)])
        code = 0
        try:
            cli.main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return run
