"""The named image decoders: ``roz`` (EXIF rotation, alpha on white) vs ``testbed`` (plain convert)."""

import io

import numpy as np
import pytest
from PIL import Image

from roz.datasets.images import load_image
from roz.datasets.registry import create_dataset
from roz.errors import DataError

WNID = "n01440764"


def _exif_rotated_jpeg(path):
    """A 40x20 JPEG whose EXIF orientation 6 says 'rotate 90° clockwise to display' (a phone photo)."""
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = (250, 10, 10)  # left half red, right half blue as stored
    a[:, 20:] = (10, 10, 250)
    img = Image.fromarray(a)
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(path, quality=95, exif=exif.tobytes())


def _rgba_png(path):
    """Opaque green left half; fully transparent right half whose stored colour is black."""
    a = np.zeros((16, 16, 4), np.uint8)
    a[:, :8] = (0, 200, 0, 255)
    Image.fromarray(a, "RGBA").save(path)


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "data" / WNID
    d.mkdir(parents=True)
    _exif_rotated_jpeg(d / "a_exif.jpg")
    _rgba_png(d / "b_rgba.png")
    return tmp_path / "data"


def test_decoders_differ_on_exif_and_alpha(folder):
    exif, rgba = folder / WNID / "a_exif.jpg", folder / WNID / "b_rgba.png"
    # EXIF: roz displays the photo upright (20 wide, 40 tall, red on top); testbed keeps the stored 40x20
    upright, stored = load_image(exif), load_image(exif, "testbed")
    assert upright.size == (20, 40) and stored.size == (40, 20)
    assert np.asarray(upright)[5, 10, 0] > 200 and np.asarray(stored)[10, 5, 0] > 200
    # the testbed's decode is PIL's plain convert, exactly
    with Image.open(exif) as im:
        assert np.array_equal(np.asarray(stored), np.asarray(im.convert("RGB")))
    # alpha: roz composites on white, testbed shows the transparent pixels' stored black
    on_white, dropped = np.asarray(load_image(rgba)), np.asarray(load_image(rgba, "testbed"))
    assert (on_white[:, 12] == 255).all() and (dropped[:, 12] == 0).all()
    assert (on_white[:, 2] == dropped[:, 2]).all()  # opaque pixels agree


def test_decode_choice_is_recorded_and_used(folder):
    roz, testbed = create_dataset("imagefolder", folder), create_dataset("imagefolder", folder, decode="testbed")
    assert roz.protocol["decode"] == "roz" and testbed.protocol["decode"] == "testbed"
    assert roz.describe()["protocol"]["decode"] == "roz"
    assert roz[0][0].size == (20, 40) and testbed[0][0].size == (40, 20)
    assert not np.array_equal(np.asarray(roz[1][0]), np.asarray(testbed[1][0]))


def test_decode_recorded_in_unit_protocol(folder, tmp_path):
    """Through the engine: the unit record carries the decoder in its dataset protocol, and the
    two decoders are two different units."""
    import timm
    import torch

    from roz import api
    from roz.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    net = timm.create_model("test_vit", num_classes=2, img_size=32)
    path = save_checkpoint(net.state_dict(), tmp_path / "tiny.pt",
                           {"source": "timm", "arch": "test_vit", "kwargs": {"img_size": 32},
                            "classes": [WNID, "n01443537"]})
    recs = {}
    for decode in ("roz", "testbed"):
        rec = api.evaluate(f"timm:test_vit@{path}", "imagefolder", folder, out=tmp_path / "run",
                           dataset_options={"decode": decode})[0]
        recs[decode] = rec
        assert rec.protocol["dataset_protocol"]["decode"] == decode
    assert recs["roz"].unit_id != recs["testbed"].unit_id


def test_unknown_decoder_is_a_clear_error(folder):
    with pytest.raises(DataError, match="unknown image decoder 'pil'") as e:
        create_dataset("imagefolder", folder, decode="pil")
    assert "roz, testbed" in e.value.hint
    with pytest.raises(DataError, match="unknown image decoder"):
        load_image(folder / WNID / "b_rgba.png", decode="RGB")


def test_testbed_decode_still_reports_bad_files(tmp_path):
    bad = tmp_path / "trunc.jpg"
    buf = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(buf, "JPEG")
    bad.write_bytes(buf.getvalue()[:100])
    with pytest.raises(DataError, match="cannot decode image"):
        load_image(bad, "testbed")
