"""Pillow's decompression-bomb guard stays on: an image over the limit is a bad image (issue 13)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from roz.datasets.base import EvalDataset, LabelSpace
from roz.datasets.images import PILLOW_MAX_PIXELS, load_image
from roz.datasets.registry import create_dataset
from roz.errors import DataError

SRC = Path(__file__).resolve().parents[2] / "src" / "roz"


def _png(path: Path, w: int, h: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 120, np.uint8)).save(path)
    return path


@pytest.mark.parametrize("size", [(12, 12), (20, 20)])  # 1.44x (Pillow only warns) and 4x (Pillow refuses)
def test_an_image_over_the_limit_is_a_data_error_naming_the_limit(tmp_path, monkeypatch, size):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    path = _png(tmp_path / "big.png", *size)
    with pytest.raises(DataError) as info:
        load_image(path)
    err = info.value
    assert str(path) in err.what and "decompression-bomb limit" in err.what and "100" in err.what
    assert "\n" not in err.what
    assert "max_image_pixels" in err.hint and "--on-bad-image skip" in err.hint
    assert load_image(_png(tmp_path / "small.png", 10, 10)).size == (10, 10)  # at the limit: fine


def test_overlap_hashing_applies_the_same_limit(tmp_path, monkeypatch):
    from roz.overlap.hashing import open_image_fast

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(DataError, match="over the decompression-bomb limit of 100 pixels"):
        open_image_fast(_png(tmp_path / "big.png", 12, 12))
    assert open_image_fast(_png(tmp_path / "ok.png", 10, 10)).size == (10, 10)


def test_the_limit_can_be_raised_deliberately_and_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    path = _png(tmp_path / "n01440764" / "big.png", 20, 20)
    assert load_image(path, max_pixels=400).size == (20, 20)
    with pytest.raises(DataError, match="over the decompression-bomb limit of 399"):
        load_image(path, max_pixels=399)
    assert Image.MAX_IMAGE_PIXELS == 100  # raised for that one file only: other datasets keep theirs

    ds = create_dataset("imagefolder", tmp_path, max_image_pixels=1000)
    assert ds.protocol["max_image_pixels"] == 1000 and ds[0][3] is True
    assert create_dataset("imagefolder", tmp_path).protocol["max_image_pixels"] == 100  # Pillow's current limit
    for bad in (0, -5, 1.5, "many", True):
        with pytest.raises(DataError, match="max_image_pixels"):
            create_dataset("imagefolder", tmp_path, max_image_pixels=bad)


def test_a_bomb_is_skipped_and_flagged_or_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    big = _png(tmp_path / "a" / "big.png", 12, 12)
    _png(tmp_path / "a" / "ok.png", 8, 8)
    labels = LabelSpace.singletons(["n01440764"], ["tench"])
    samples = [("a/big.png", 0), ("a/ok.png", 0)]
    skip = EvalDataset(name="t", root=tmp_path, samples=samples, labels=labels, on_bad_image="skip")
    assert [skip[i][3] for i in range(2)] == [False, True]
    fail = EvalDataset(name="t", root=tmp_path, samples=samples, labels=labels, on_bad_image="fail")
    with pytest.raises(DataError, match=re.escape(str(big))):
        fail[0]


def test_no_roz_code_disables_the_guard():
    assigned = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                if re.search(r"MAX_IMAGE_PIXELS\s*=\s*(None|0\b)", p.read_text())]
    assert assigned == []
    import roz.api  # noqa: F401  (imports every layer a run uses, the world's included)
    import roz.cli  # noqa: F401
    import roz.world.demo  # noqa: F401

    assert Image.MAX_IMAGE_PIXELS == PILLOW_MAX_PIXELS
