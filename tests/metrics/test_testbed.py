"""Ingesting the ImageNet testbed table (robustness_top1s.csv) and its column mapping."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from roz.errors import DataError
from roz.metrics.effective import TESTBED_STANDARD_MODELS
from roz.metrics.testbed import TESTBED_COLUMNS, read_testbed, role_for_testbed_row

TESTBED = Path(__file__).resolve().parents[3] / "shared" / "reference" / "imagenet-testbed" / "robustness_top1s.csv"
pytestmark = pytest.mark.skipif(not TESTBED.is_file(), reason="testbed reference table not available")


@pytest.fixture(scope="module")
def tb():
    return read_testbed(TESTBED)


def test_mapping_and_values(tb):
    assert tb.acc.shape[0] == 338
    assert set(tb.acc.columns) == set(TESTBED_COLUMNS.values())
    # published numbers, straight from the CSV
    assert tb.value("resnet50", "imagenet-val:top1") == pytest.approx(76.13, abs=0.01)
    assert tb.value("vit_b_32_clip_zeroshot", "imagenet-r:top1") == pytest.approx(69.2567, abs=1e-3)
    assert tb.value("vit_b_32_clip_zeroshot", "imagenet-vid-robust:pm0") == pytest.approx(82.236, abs=1e-3)
    assert tb.value("vit_b_32_clip_zeroshot", "val-on-imagenet-vid-robust-classes:top1") > 90
    # ImageNetV2 maps the -format-val column (the testbed's figures use it)
    assert tb.value("resnet50", "imagenetv2-matched-frequency:top1") == pytest.approx(63.20, abs=0.01)


def test_missing_cells_are_nan(tb):
    assert math.isnan(tb.value("resnet50-vtab", "imagenet-r:top1"))
    assert math.isnan(tb.value("resnet50_imagenet_subsample_125_classes_batch64_original_images", "imagenet-val:top1"))
    assert math.isnan(tb.value("no-such-model", "imagenet-val:top1"))


def test_roles(tb):
    assert tb.role("resnet50") == "standard"
    assert tb.role("vit_b_32_clip_zeroshot") == "zeroshot" == role_for_testbed_row("resnet50_clip_zeroshot")
    assert tb.role("instagram-resnext101_32x48d") == "testbed"  # extra data: not a baseline model
    assert tb.role("resnet50_linf_eps4_robust") == "testbed"  # adversarially trained
    assert tb.role("resnet50_aws_baseline") == "testbed"  # the testbed's fits leave *_aws out
    present = TESTBED_STANDARD_MODELS & set(tb.models)
    assert len(present) == 78
    assert not any(s in m for m in present for s in ("clip", "_ssl", "swsl", "instagram", "_aws", "batch64", "robust"))


def test_custom_mapping_and_unmapped(tb):
    t = read_testbed(TESTBED, {"val": "imagenet-val", "imagenetv2-matched-frequency": "imagenetv2-matched-frequency"})
    assert sorted(t.acc.columns) == ["imagenet-val:top1", "imagenetv2-matched-frequency:top1"]
    assert t.value("resnet50", "imagenetv2-matched-frequency:top1") == pytest.approx(63.32, abs=0.01)
    t2 = read_testbed(TESTBED, keep_unmapped=True)
    assert "imagenet-c.fog.3_in-memory" in t2.acc.columns


def test_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_testbed(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("name,val\nx,1\n")
    with pytest.raises(DataError, match="'model' column"):
        read_testbed(bad)


def test_mini_format(tmp_path):
    """Any table in the testbed format works, e.g. a ROZ-Mini baseline table."""
    p = tmp_path / "mini.csv"
    p.write_text("model,mini-val,mini-r\na,50,20\nb,60,\n")
    t = read_testbed(p, {"mini-val": "mini-val", "mini-r": "mini-r"}, roles={"a": "standard"})
    assert t.value("a", "mini-r:top1") == 20 and math.isnan(t.value("b", "mini-r:top1"))
    assert t.role("a") == "standard" and t.role("b") == "testbed"
