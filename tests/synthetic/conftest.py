"""Fixture trees for the synthetic-shift loaders (tiny images, generated on the fly)."""

from __future__ import annotations

from videofixtures import write_video  # noqa: F401  (re-exported for the tests)

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

WNIDS = ("n01440764", "n01443537")


def write_image(path: Path, seed: int, size=(8, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)


@pytest.fixture(scope="session")
def class_file(tmp_path_factory) -> str:
    p = tmp_path_factory.mktemp("classes") / "two.json"
    p.write_text(json.dumps({"name": "two", "wnids": list(WNIDS), "names": ["tench", "goldfish"]}))
    return str(p)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: intra-op threads only add contention on a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
