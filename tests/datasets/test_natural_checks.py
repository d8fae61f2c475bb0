"""`roz datasets check`: a complete fixture passes against its own counts, fails against the
published ones, and a partial copy (one image file removed) fails loudly."""

from __future__ import annotations

import pytest

from support import natural_fixtures as fx
from roz.datasets.checks import check_dataset


def _val(tmp):
    return fx.make_imagenet_val_folders(tmp), {}, {"total": 6, "n_classes": 3,
                                                   "per_class": {fx.wnid(0): 2, fx.wnid(1): 2, fx.wnid(2): 2}}, \
        "val/" + fx.wnid(1) + "/ILSVRC2012_val_00000003.JPEG"


def _v2(tmp):
    return fx.make_imagenetv2(tmp), {}, {"total": 5, "n_classes": 3}, "imagenetv2-matched-frequency-format-val/100/" + f"{1:040x}.jpeg"


def _sketch(tmp):
    return fx.make_sketch(tmp), {}, {"total": [4, 99], "n_classes": 3}, f"sketch/{fx.wnid(3)}/sketch_0.JPEG"


def _r(tmp):
    plan = fx.restricted_plan("r")
    return fx.make_imagenet_r_a(tmp, "r"), {}, {"total": 5, "n_classes": 3}, f"{fx.wnid(plan[0][0])}/img_0.png"


def _a(tmp):
    plan = fx.restricted_plan("a")
    return fx.make_imagenet_r_a(tmp, "a"), {}, {"total": 5, "n_classes": 3}, f"{fx.wnid(plan[4][0])}/img_4.png"


def _on(tmp):
    return fx.make_objectnet(tmp), {}, {"total": 5, "n_classes": 2}, "objectnet-1.0/images/banana/" + f"{1:032x}.png"


def _vid(tmp):
    root, _ = fx.make_vid(tmp)
    return root, {}, {"anchors": 3}, "val/ILSVRC2015_val_00000002/000051.JPEG"


def _ytbb(tmp):
    root, _ = fx.make_ytbb(tmp, with_pmsets=True)
    return root, {}, {"anchors": 4}, "bbbbbbbbb_b_2000/frame-61.jpg"


def _ytbb_derived(tmp):
    root, _ = fx.make_ytbb(tmp)
    return root, {}, {"anchors": 4}, "bbbbbbbbb_b_2000/frame-60.jpg"  # anchor frame


CASES = {"imagenet-val": _val, "imagenetv2-matched-frequency": _v2, "imagenet-sketch": _sketch, "imagenet-r": _r,
         "imagenet-a": _a, "objectnet": _on, "imagenet-vid-robust": _vid, "ytbb-robust": _ytbb,
         "ytbb-robust-derived": _ytbb_derived}


@pytest.mark.parametrize("case", list(CASES))
def test_check(tmp_path, case):
    name = case.replace("-derived", "")
    root, opts, own, victim = CASES[case](tmp_path)
    ok = check_dataset(name, root, expected=own, **opts)
    assert ok.ok, ok.report()
    published = check_dataset(name, root, **opts)
    assert not published.ok and "MISMATCH" in published.report()
    (root / victim).unlink()
    partial = check_dataset(name, root, expected=own, **opts)
    assert not partial.ok, partial.report()
    assert "FAILED" in partial.report()


def test_check_reports_layout_on_bad_root(tmp_path):
    r = check_dataset("imagenet-r", tmp_path / "missing")
    assert not r.ok and "expected layout" in r.report()


def test_check_published_message(tmp_path):
    root = fx.make_imagenet_val_folders(tmp_path)
    r = check_dataset("imagenet-val", root)
    text = r.report()
    assert "found 6 images, the published dataset has 50,000" in text
    assert "997" in text or "1000 classes" in text  # per-class mismatches are listed
    assert r.to_dict()["counts"]["total"] == 6


def test_cli_datasets_check(tmp_path):
    from typer.testing import CliRunner

    import roz.cli as cli

    root = fx.make_imagenet_r_a(tmp_path, "r")
    r = CliRunner().invoke(cli.app, ["datasets", "check", "imagenet-r", str(root)])
    assert r.exit_code == 1
    assert "MISMATCH" in r.output and "30,000" in r.output
