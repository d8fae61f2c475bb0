"""Bad input gets a clear, actionable error (or a listed skip), never a deep traceback."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from roz import api
from roz.datasets.images import load_image
from roz.datasets.registry import create_dataset
from roz.engine.store import ResultStore
from roz.errors import DataError, RozError, StoreError


def test_missing_root_shows_layout(tmp_path):
    with pytest.raises(DataError, match="does not exist") as e:
        create_dataset("imagefolder", tmp_path / "nope")
    assert "expected layout" in str(e.value)


def test_empty_class_folder(tmp_path):
    (tmp_path / "n01440764").mkdir()
    with pytest.raises(DataError, match="contains no images"):
        create_dataset("imagefolder", tmp_path)


def test_non_wnid_folder(tmp_path):
    (tmp_path / "goldfish").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "goldfish" / "a.png")
    with pytest.raises(DataError, match="not a WordNet ID"):
        create_dataset("imagefolder", tmp_path)


def test_unknown_dataset_suggests(tmp_path):
    with pytest.raises(DataError, match="did you mean imagefolder"):
        create_dataset("imagefoldr", tmp_path)


def _bad_tree(root):
    from support import tinymodels

    tinymodels.make_imagefolder(root, n=3)
    (root / "n01440764" / "zero.JPEG").write_bytes(b"")
    good = (root / "n01443537" / "img_000.JPEG").read_bytes()
    (root / "n01443537" / "trunc.JPEG").write_bytes(good[: len(good) // 3])
    (root / "n01484850" / "text.JPEG").write_text("not an image")
    return root


def test_bad_images_fail_by_default(fx, tmp_path):
    data = _bad_tree(tmp_path / "bad")
    with pytest.raises(DataError, match="zero-byte|cannot decode"):
        api.evaluate(fx["timm"], "imagefolder", data, out=tmp_path / "run")


def test_bad_images_skip_lists_them(fx, tmp_path):
    data = _bad_tree(tmp_path / "bad")
    rec = api.evaluate(fx["timm"], "imagefolder", data, out=tmp_path / "run", on_bad_image="skip")[0]
    assert sorted(rec.skipped_files) == ["n01440764/zero.JPEG", "n01443537/trunc.JPEG", "n01484850/text.JPEG"]
    assert rec.metrics["n_skipped"] == 3 and rec.metrics["n"] == 12


def test_decoding_of_odd_modes(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)
    Image.fromarray(a).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(a[..., 0]).save(tmp_path / "gray.png")
    p = Image.fromarray(a).convert("P")
    p.info["transparency"] = 0
    p.save(tmp_path / "pal.png", transparency=0)
    Image.fromarray((a[..., 0].astype(np.uint16) * 257)).save(tmp_path / "16bit.png")
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90° on display
    im.save(tmp_path / "exif.jpg", exif=exif)
    for f in ("cmyk.jpg", "gray.png", "pal.png", "16bit.png", "exif.jpg"):
        out = load_image(tmp_path / f)
        assert out.mode == "RGB", f
    assert load_image(tmp_path / "exif.jpg").size == (10, 12)  # transposed by EXIF orientation
    g16 = np.asarray(load_image(tmp_path / "16bit.png"))[..., 0]
    assert abs(int(g16.astype(int).max()) - int(a[..., 0].max())) <= 1  # scaled, not clipped to white


def test_incompatible_run_directory(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"roz_version": "99.0", "store_format": 99}))
    with pytest.raises(StoreError, match="store format 99"):
        ResultStore(tmp_path)


def test_cli_prints_error_without_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "roz.cli", "eval", "-m", "timm:nope@none", "-d", "imagefolder",
                        "-r", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "error:" in r.stderr and "Traceback" not in r.stderr


def test_config_errors(tmp_path):
    from roz.engine.plan import plan_units

    with pytest.raises(RozError, match="unknown keys"):
        plan_units({"models": ["timm:x@none"], "datasets": [{"name": "imagefolder", "root": "."}], "modles": []})
    with pytest.raises(RozError, match="at least one model"):
        plan_units({"models": [], "datasets": [{"name": "imagefolder", "root": "."}]})
