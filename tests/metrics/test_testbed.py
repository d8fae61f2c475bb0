"""Ingesting the ImageNet testbed table (robustness_top1s.csv, shipped with ROZ) and its column mapping."""

from __future__ import annotations

import gzip
import hashlib
import math

import pytest

from roz.errors import DataError, RozError
from roz.metrics.effective import TESTBED_STANDARD_MODELS
from roz.metrics.testbed import TESTBED_COLUMNS, read_testbed, role_for_testbed_row, shipped_table_path
from roz.metrics.testbed_pgd import TESTBED_PGD, check_attack_unit, pgd_setting

#: SHA-256 of modestyachts/imagenet-testbed's robustness_top1s.csv (last changed in f4083a2, 2021-09-15).
UPSTREAM_SHA256 = "6b32665be2eef1594d6d296fcb07d33fed0dd4ecacacff463841d7cb08e835f7"
TESTBED = shipped_table_path()


@pytest.fixture(scope="module")
def tb():
    return read_testbed("testbed")


def test_shipped_table_is_the_upstream_file():
    assert TESTBED.name == "robustness_top1s.csv.gz" and TESTBED.is_file()
    with gzip.open(TESTBED, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == UPSTREAM_SHA256
    readme = (TESTBED.parent / "README.md").read_text()
    assert "MIT License" in readme and "Taori" in readme and UPSTREAM_SHA256 in readme


def test_mapping_and_values(tb):
    assert tb.acc.shape[0] == 338
    assert set(TESTBED_COLUMNS.values()) <= set(tb.acc.columns)
    assert set(tb.acc.columns) - set(TESTBED_COLUMNS.values()) == set(tb.derived)  # the ImageNet-C columns
    assert len(tb.derived) == 20 and tb.source.endswith("robustness_top1s.csv.gz")
    assert tb.value("vit_b_32_clip_zeroshot", "stylized-imagenet:top1") == pytest.approx(float(
        _cell("vit_b_32_clip_zeroshot", "stylized_imagenet")), abs=1e-9)
    assert tb.value("resnet50", "pgd-linf-2/255:top1") == pytest.approx(float(_cell("resnet50", "pgd.linf.eps2")))
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


def _cell(model: str, column: str) -> str:
    import csv

    with gzip.open(TESTBED, "rt", newline="") as f:
        return next(r for r in csv.DictReader(f) if r["model"] == model)[column]


def test_pgd_settings_in_pixel_units():
    """The testbed's eps are x/255 of [0, 1] pixels; its step is 0.03 eps (L-inf), 0.1 eps (L2), 100 steps."""
    linf = pgd_setting("pgd.linf.eps2")
    assert linf.shift == "pgd-linf-2/255" and linf.norm == "Linf" and linf.steps == 100
    assert linf.eps == pytest.approx(0.007843137255, abs=1e-12)  # the testbed's value
    assert pgd_setting("pgd-linf-0.5/255").eps == pytest.approx(0.001960784314, abs=1e-12)
    assert pgd_setting("pgd.l2.eps0.5").norm == "L2" and pgd_setting("pgd.l2.eps0.5").eps == 0.5
    params = linf.roz_params()
    assert params["alpha_factor"] == 0.03 and params["steps"] == 100 and params["early_stop"] is False
    # the ROZ PGD attack accepts exactly these parameters, with the testbed's step size
    import torch

    from roz.attacks.pgd import PGD

    kw = {k: v for k, v in params.items() if k not in ("name", "eps")}
    atk = PGD(torch.nn.Linear(3, 2), eps=params["eps"][0], **kw)
    assert atk.resolved()["alpha_resolved"] == pytest.approx(0.0002352941176470588, rel=1e-9)
    assert atk.resolved()["steps_resolved"] == 100
    with pytest.raises(RozError, match="no L2 attack"):
        pgd_setting("pgd-l2-0.1").roz_params()
    assert set(TESTBED_PGD) == {c for c in TESTBED_COLUMNS if c.startswith("pgd.")}


def test_pgd_line_refuses_other_eps_or_norm():
    same = {**pgd_setting("pgd-linf-2/255").roz_params(), "eps": [1 / 255, 2 / 255, 4 / 255]}
    metric, diffs = check_attack_unit("pgd-linf-2/255", same)
    assert metric == "robust_acc@2/255" and not any(d.startswith(("steps", "alpha_factor", "name")) for d in diffs)
    assert any("clip" in d for d in diffs) and any("clean prediction" in d for d in diffs)
    _, diffs = check_attack_unit("pgd.linf.eps2", {"name": "pgd", "eps": [2 / 255]})  # ROZ defaults: 10 steps
    assert any(d.startswith("steps") for d in diffs)
    with pytest.raises(RozError, match="eps"):
        check_attack_unit("pgd-linf-2/255", {"name": "pgd", "eps": [1 / 255, 4 / 255]})
    with pytest.raises(RozError, match="norm"):
        check_attack_unit("pgd-l2-0.5", {"name": "pgd", "eps": [0.5]})  # a ROZ (L-inf) unit on an L2 line
    with pytest.raises(RozError, match="norm"):
        check_attack_unit("pgd-linf-0.5/255", {"name": "x", "norm": "L2", "eps": [0.5 / 255]})
    with pytest.raises(RozError, match="eps_space"):
        check_attack_unit("pgd-linf-0.5/255", {"name": "pgd", "eps": [0.5 / 255], "eps_space": "normalized"})
    with pytest.raises(RozError, match="not a testbed attack"):
        pgd_setting("fgsm")
