"""Fixture trees for the synthetic-shift loaders and shifts (tiny images, generated on the fly)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
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
