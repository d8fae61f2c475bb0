"""Each natural-shift loader on a fixture tree in its real layout, scored by a scripted fake model
whose every prediction is known: the metrics must equal the hand-computed values."""

from __future__ import annotations

import os

import pytest

from support import natural_fixtures as fx
from roz.datasets.registry import create_dataset, dataset_info, list_datasets
from roz.errors import DataError

NATURAL = ["imagenet-val", "imagenetv2-matched-frequency", "imagenetv2-threshold0.7", "imagenetv2-top-images",
           "imagenet-sketch", "imagenet-r", "val-on-imagenet-r-classes", "imagenet-a", "val-on-imagenet-a-classes",
           "objectnet", "val-on-objectnet-classes", "imagenet-vid-robust", "ytbb-robust"]


def approx(d):
    return {k: pytest.approx(v) for k, v in d.items()}


def check(metrics, expected):
    for k, v in expected.items():
        assert metrics[k] == pytest.approx(v), (k, metrics)


def test_registered_in_paper_order():
    names = [d.name for d in list_datasets()]
    for n in NATURAL:
        assert n in names
    order = [names.index(n) for n in ["imagenet-val", "imagenetv2-matched-frequency", "imagenet-sketch",
                                      "imagenet-r", "imagenet-a", "objectnet", "imagenet-vid-robust", "ytbb-robust"]]
    assert order == sorted(order)
    assert dataset_info("imagenet-vid-robust").metrics == ("pm0", "pm10")


# ----------------------------------------------------------------------------- ImageNet val
@pytest.mark.parametrize("layout", ["folders", "folders-root", "flat-devkit", "kaggle"])
def test_imagenet_val_layouts(tmp_path, layout):
    if layout == "folders":
        root = fx.make_imagenet_val_folders(tmp_path)
    elif layout == "folders-root":
        root = fx.make_imagenet_val_folders(tmp_path, sub="") 
    elif layout == "flat-devkit":
        root = fx.make_imagenet_val_flat(tmp_path)
    else:
        root = fx.make_imagenet_val_kaggle(tmp_path)
    ds = create_dataset("imagenet-val", root)
    assert len(ds.labels) == 1000  # always 1000-way
    m, df = fx.score(ds)
    check(m, fx.VAL_EXPECTED)
    assert [ds.labels.groups[t][0] for _, t in ds.samples] == [fx.wnid(t) for t, _ in fx.VAL_IMAGES]


def test_imagenet_val_devkit_ids_are_not_indices(tmp_path):
    """The devkit's ILSVRC2012_IDs are not the model's class order: mapping must go through meta.mat."""
    root = fx.make_imagenet_val_flat(tmp_path)
    ds = create_dataset("imagenet-val", root)
    assert ds.protocol["layout"] == "flat+devkit"
    assert [t for _, t in ds.samples] == [t for t, _ in fx.VAL_IMAGES]


def test_imagenet_val_flat_without_ground_truth(tmp_path):
    fx.write_image(tmp_path / "ILSVRC2012_val_00000001.JPEG", 0)
    with pytest.raises(DataError, match="no ground truth"):
        create_dataset("imagenet-val", tmp_path)


def test_missing_root_lists_layout_and_source(tmp_path):
    for name in NATURAL:
        with pytest.raises(DataError) as e:
            create_dataset(name, tmp_path / "nope")
        msg = str(e.value)
        assert "expected layout" in msg and "download" in msg, name


@pytest.mark.parametrize("name", NATURAL)
def test_malformed_root_lists_layout(tmp_path, name):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "readme.txt").write_text("x")
    with pytest.raises(DataError) as e:
        create_dataset(name, tmp_path, **({"mappings": tmp_path} if name == "val-on-objectnet-classes" else {}))
    assert "expected layout" in str(e.value)


# ----------------------------------------------------------------------------- ImageNetV2
@pytest.mark.parametrize("variant", ["matched-frequency", "threshold0.7", "top-images"])
def test_imagenetv2_label_is_int_folder(tmp_path, variant):
    root = fx.make_imagenetv2(tmp_path, variant)
    ds = create_dataset(f"imagenetv2-{variant}", root)
    # folders 10, 100, 2 in string order: labels must be the integers, not sorted positions
    labels = sorted({(os.path.basename(os.path.dirname(p)), t) for p, t in ds.samples})
    assert labels == [("10", 10), ("100", 100), ("2", 2)]
    m, _ = fx.score(ds)
    check(m, fx.V2_EXPECTED)
    assert ds.protocol["variant"] == variant


def test_imagenetv2_rejects_out_of_range_folder(tmp_path):
    fx.write_image(tmp_path / "1000" / "a.jpeg", 0)
    with pytest.raises(DataError, match="0..999"):
        create_dataset("imagenetv2-matched-frequency", tmp_path)


# ----------------------------------------------------------------------------- Sketch
def test_sketch(tmp_path):
    ds = create_dataset("imagenet-sketch", fx.make_sketch(tmp_path))
    m, _ = fx.score(ds)
    check(m, fx.SKETCH_EXPECTED)
    assert ds.protocol["version"] == "other" and len(ds.labels) == 1000


def test_sketch_version_names():
    from roz.datasets.sketch import sketch_variant

    assert sketch_variant(50889) == "release-50889" and sketch_variant(50000) == "testbed-50000"


# ----------------------------------------------------------------------------- R / A
@pytest.mark.parametrize("which", ["r", "a"])
def test_imagenet_r_a_mask(tmp_path, which):
    ds = create_dataset(f"imagenet-{which}", fx.make_imagenet_r_a(tmp_path, which), allow_partial=True)
    assert len(ds.labels) == 3 and ds.protocol["mask_matches_published"] is False
    assert ds.protocol["allow_partial"] is True and ds.protocol["n_missing_classes"] == 197
    m, _ = fx.score(ds)
    check(m, fx.RA_EXPECTED)


@pytest.mark.parametrize("which", ["r", "a"])
def test_imagenet_r_a_partial_copy_fails(tmp_path, which):
    """A copy missing classes would be masked to fewer classes than the 200-class reference."""
    root = fx.make_imagenet_r_a(tmp_path, which)
    with pytest.raises(DataError, match=r"3 class folders, the published dataset has 200: 197 missing") as e:
        create_dataset(f"imagenet-{which}", root)
    assert "allow_partial=true" in e.value.hint
    with pytest.raises(DataError, match="not a boolean"):
        create_dataset(f"imagenet-{which}", root, allow_partial="maybe")
    ds = create_dataset(f"imagenet-{which}", root, allow_partial="true")  # as --option gives it
    assert len(ds.labels) == 3 and ds.protocol["allow_partial"] is True


def test_imagenet_r_full_copy_needs_no_option(tmp_path):
    from roz.datasets.imagenet import timm_synsets

    for j, w in enumerate(timm_synsets("r")):
        fx.write_image(tmp_path / w / "x.png", j % 1000)
    ds = create_dataset("imagenet-r", tmp_path)
    assert len(ds.labels) == 200 and len(ds) == 200
    assert ds.protocol["mask_matches_published"] is True and ds.protocol["allow_partial"] is False


def test_val_on_r_classes(tmp_path):
    root, expected = fx.make_val_with_r_classes(tmp_path)
    ds = create_dataset("val-on-imagenet-r-classes", root)
    assert len(ds.labels) == 200 and ds.protocol["restricted"]
    m, _ = fx.score(ds)
    check(m, expected)  # out-of-mask predictions go to the lowest-index R class


def test_val_on_a_classes_drops_other_classes(tmp_path):
    fx.make_imagenet_r_a(tmp_path / "val", "a")
    fx.write_image(tmp_path / "val" / fx.wnid(0) / "x.JPEG", 0)  # tench is not an ImageNet-A class
    ds = create_dataset("val-on-imagenet-a-classes", tmp_path)
    assert len(ds) == 5 and len(ds.labels) == 200


# ----------------------------------------------------------------------------- ObjectNet
def test_objectnet_protocol(tmp_path):
    root = fx.make_objectnet(tmp_path)
    ds = create_dataset("objectnet", root)
    assert len(ds.labels) == 113 and len(ds) == 5
    assert ds.protocol["protocol"] == "objectnet-1.0-beta" and ds.protocol["n_imagenet_classes"] == 125
    assert ds.protocol["n_images_excluded_unmapped"] == 2 and ds.protocol["border_crop_px"] == 2
    names = ds.labels.names
    assert ds.labels.groups[names.index("Alarm clock")] == (fx.wnid(409), fx.wnid(530))
    m, df = fx.score(ds, fx.FakeModel(pos="corner"))  # corner pixel is the decoy unless cropped
    check(m, fx.OBJECTNET_EXPECTED)
    assert list(df["objectnet_class"]) == ["Alarm clock"] * 3 + ["Banana"] * 2


def test_objectnet_border_crop_matters(tmp_path):
    """Without the 2-px crop the corner-reading model sees the decoy (banana) everywhere: 2/5."""
    ds = create_dataset("objectnet", fx.make_objectnet(tmp_path), pre_cropped=True)
    assert ds.protocol["pre_cropped"] is True and ds.pre_transform is None
    m, _ = fx.score(ds, fx.FakeModel(pos="corner"))
    assert m["top1"] == pytest.approx(40.0)


def test_val_on_objectnet_classes(tmp_path):
    on = fx.make_objectnet(tmp_path / "on")
    val = tmp_path / "val"
    # 530 digital clock predicted 409 analog clock: a sibling ImageNet class of the same ObjectNet
    # class ("Alarm clock") -> correct, as in the testbed's accuracy_topk_subselected_and_collapsed.
    # 954 banana predicted 409: another ObjectNet class -> wrong. 0 (tench) is not mapped: dropped.
    for j, (t, p) in enumerate([(530, 409), (954, 954), (954, 409), (0, 0)]):
        fx.write_image(val / fx.wnid(t) / f"v{j}.JPEG", p)
    for kw in ({"objectnet_root": on}, {"mappings": on / "objectnet-1.0" / "mappings"}):
        ds = create_dataset("val-on-objectnet-classes", val, **kw)
        assert len(ds.labels) == 113 and len(ds) == 3 and ds.protocol["n_imagenet_classes"] == 125
        assert ds.labels.groups[ds.labels.names.index("Alarm clock")] == (fx.wnid(409), fx.wnid(530))
        m, _ = fx.score(ds)
        assert m["top1"] == pytest.approx(200 / 3)
    with pytest.raises(DataError, match="objectnet_root"):
        create_dataset("val-on-objectnet-classes", val)


def test_objectnet_unknown_lemma(tmp_path):
    import json

    root = fx.make_objectnet(tmp_path)
    p = root / "objectnet-1.0" / "mappings" / "objectnet_to_imagenet_1k.json"
    d = json.loads(p.read_text())
    d["Banana"] = "banana; plantain"
    p.write_text(json.dumps(d))
    with pytest.raises(DataError, match="plantain"):
        create_dataset("objectnet", root)


# ----------------------------------------------------------------------------- video
def test_vid_robust(tmp_path):
    root, expected = fx.make_vid(tmp_path)
    ds = create_dataset("imagenet-vid-robust", root)
    assert len(ds.labels) == 30 and ds.labels.names[0] == "airplane"
    assert ds.metric_names() == ["pm0", "pm10"]
    m, df = fx.score(ds)
    check(m, expected)
    assert set(df.columns) >= {"anchor", "frame", "offset"}
    assert sorted(df[df.anchor == "val/ILSVRC2015_val_00000000/000010.JPEG"].offset) == [-5, 0, 10]


def test_vid_robust_missing_frame_fails(tmp_path):
    root, _ = fx.make_vid(tmp_path)
    (root / "val/ILSVRC2015_val_00000001/000101.JPEG").unlink()
    with pytest.raises(DataError, match="missing"):
        create_dataset("imagenet-vid-robust", root)


@pytest.mark.parametrize("with_pmsets", [False, True])
def test_ytbb_robust(tmp_path, with_pmsets):
    root, expected = fx.make_ytbb(tmp_path, with_pmsets=with_pmsets)
    ds = create_dataset("ytbb-robust", root)
    assert ds.protocol["pmsets"].startswith("metadata" if with_pmsets else "derived")
    assert len(ds.labels) == 19  # the 24 YTBB classes that have ImageNet classes
    assert "car" in ds.labels.names
    m, df = fx.score(ds)
    check(m, expected)
    assert not (df.offset.abs() > 10).any()


def test_ytbb_reviewed_pmk_labels(tmp_path):
    """With pmk_labels.json only reviewed-similar neighbours count and bad anchors are dropped."""
    import json

    root, _ = fx.make_ytbb(tmp_path)
    vocab = ["similar", "dissimilar", "bad-anchor"]
    ann = [  # P: keep only the -1 neighbour; Q: its wrong +1 neighbour is 'dissimilar'; R: bad anchor
        {"key": "aaaaaaaaaaa_1000/frame-30.jpg,aaaaaaaaaaa_1000/frame-29.jpg", "labels": [0]},
        {"key": "bbbbbbbbb_b_2000/frame-60.jpg,bbbbbbbbb_b_2000/frame-61.jpg", "labels": [1]},
        {"key": "ccccccccccc_3000/frame-90.jpg,ccccccccccc_3000/frame-92.jpg", "labels": [0, 2]},
    ]
    (root / "metadata" / "pmk_labels.json").write_text(json.dumps({"annotations": ann, "labels": vocab}))
    ds = create_dataset("ytbb-robust", root)
    assert ds.protocol["pmsets"].startswith("reviewed")
    m, _ = fx.score(ds)
    # anchors P (ok, nbr ok), Q (ok, no valid nbr), T (wrong): pm0 = pm10 = 2/3
    assert m["n_anchors"] == 3
    assert m["pm0"] == pytest.approx(200 / 3) and m["pm10"] == pytest.approx(200 / 3)


def test_pm_aggregate_on_subset(tmp_path):
    """Per-sample rows can be re-scored on any subset of anchors."""
    root, _ = fx.make_vid(tmp_path)
    ds = create_dataset("imagenet-vid-robust", root)
    _, df = fx.score(ds)
    sub = df[df.anchor != "val/ILSVRC2015_val_00000002/000050.JPEG"]
    m = ds.aggregate(sub)
    assert m["pm0"] == pytest.approx(100.0) and m["pm10"] == pytest.approx(50.0)
    # re-scored with a smaller neighbourhood: B's wrong frame (+1) still counts, A's (-5, +10) do not
    from roz.datasets.video import aggregate_pmk

    assert aggregate_pmk(df, k=1, name="pm1")["pm1"] == pytest.approx(100.0 / 3)
    assert aggregate_pmk(df[df.offset.abs() < 1], k=None)["pm10"] == pytest.approx(200.0 / 3)
