"""A CLIP_benchmark webdataset collection (written by ``webdataset`` as CLIP_benchmark's converter
writes it) is a root for the matching ROZ dataset: the same samples, targets, label space (class
mask, ObjectNet mapping) and per-sample predictions of a scripted model as the original layout."""

from __future__ import annotations

import pytest

from support import natural_fixtures as fx
from support import wds_fixtures as wfx
from roz.datasets.registry import create_dataset
from roz.errors import DataError


def make_r_a_full(root, which):
    """ImageNet-R/-A folders with every published class (the plan's images plus one per other class)."""
    fx.make_imagenet_r_a(root, which)
    for c in fx.r_a_classes(which):
        d = root / fx.wnid(c)
        if not d.is_dir():
            fx.write_image(d / "extra.png", c)
    return root


def objectnet_cb_label(ds):
    """CLIP_benchmark's ObjectNet label: position of the image's folder among the sorted mapped folders."""
    from roz.datasets.objectnet import find_mappings, load_objectnet_mapping

    mp = load_objectnet_mapping(find_mappings(ds.root))
    folders = sorted(f for f, lab in mp.folder_to_label.items() if lab in mp.groups)
    names = [mp.folder_to_label[f].lower() for f in folders]
    return (lambda p, t: folders.index(p.split("/")[-2])), names


CASES = {
    "imagenet-val": (lambda r: fx.make_imagenet_val_folders(r), fx.VAL_EXPECTED),
    "imagenetv2-matched-frequency": (lambda r: fx.make_imagenetv2(r), fx.V2_EXPECTED),
    "imagenet-sketch": (lambda r: fx.make_sketch(r), fx.SKETCH_EXPECTED),
    "imagenet-r": (lambda r: make_r_a_full(r, "r"), {"n": 5 + 197}),
    "imagenet-a": (lambda r: make_r_a_full(r, "a"), {"n": 5 + 197}),
    "objectnet": (lambda r: fx.make_objectnet(r), fx.OBJECTNET_EXPECTED),
    "imagenet-o": (lambda r: make_imagenet_o(r), {"top1": 60.0, "n": 5}),
}


def make_imagenet_o(root):
    """Five images of three classes."""
    for j, (t, p) in enumerate([(1, 1), (954, 954), (954, 0), (1, 836), (900, 901)]):
        fx.write_image(root / fx.wnid(t) / f"o_{j}.png", p)  # masked: 0 -> 1 wrong, 836 -> 1 ok, 901 -> 1 wrong
    return root


def both_layouts(tmp_path, name):
    make, expected = CASES[name]
    folder = create_dataset(name, make(tmp_path / "folders"))
    label_of, names = (None, None)
    if name == "objectnet":
        label_of, names = objectnet_cb_label(folder)
    elif name not in ("imagenet-r", "imagenet-a", "imagenet-o"):  # the 1000-way sets list all ImageNet classes
        names = wfx.imagenet_names(range(1000))
    wds_root = wfx.from_folder_dataset(folder, tmp_path / f"wds_{name}", label_of=label_of, classnames=names)
    options = {"mappings": fx.REFERENCE / "objectnet"} if name == "objectnet" else {}
    return folder, create_dataset(name, wds_root, **options), expected


@pytest.mark.parametrize("name", list(CASES))
def test_wds_collection_gives_identical_rows(tmp_path, name):
    folder, wds, expected = both_layouts(tmp_path, name)
    assert wds.protocol["layout"] == "clip_benchmark-wds" and wds.protocol["n_shards"] > 1
    assert [t for _, t in wds.samples] == [t for _, t in folder.samples]
    assert wds.labels.groups == folder.labels.groups and wds.labels.names == folder.labels.names
    model = fx.FakeModel(pos="corner" if name == "objectnet" else "center")
    m_folder, rows_folder = fx.score(folder, model)
    m_wds, rows_wds = fx.score(wds, model)
    assert rows_wds.equals(rows_folder)
    assert m_wds == m_folder
    for k, v in expected.items():
        assert m_wds[k] == pytest.approx(v)
    # how labels are read, and what the converter left out, differ by layout
    same = {k for k in folder.protocol if k not in ("layout", "label_rule", "mask", "n_images_excluded_unmapped")}
    assert {k: wds.protocol.get(k) for k in same} == {k: folder.protocol[k] for k in same}


def test_wds_objectnet_needs_the_mappings(tmp_path):
    folder = create_dataset("objectnet", fx.make_objectnet(tmp_path / "folders"))
    label_of, names = objectnet_cb_label(folder)
    root = wfx.from_folder_dataset(folder, tmp_path / "wds_objectnet", label_of=label_of, classnames=names)
    with pytest.raises(DataError, match="webdataset collection, which does not carry ObjectNet.s mappings"):
        create_dataset("objectnet", root)


def test_wds_collection_of_another_dataset_is_refused(tmp_path):
    folder = create_dataset("imagenet-sketch", fx.make_sketch(tmp_path / "folders"))
    root = wfx.from_folder_dataset(folder, tmp_path / "wds", classnames=wfx.imagenet_names(range(1000)))
    with pytest.raises(DataError, match="classnames.txt lists 1000 classes"):
        create_dataset("imagenet-r", root)


def test_wds_missing_shard_is_reported(tmp_path):
    folder = create_dataset("imagenet-sketch", fx.make_sketch(tmp_path / "folders"))
    root = wfx.from_folder_dataset(folder, tmp_path / "wds", classnames=wfx.imagenet_names(range(1000)))
    (root / "test" / "1.tar").unlink()
    with pytest.raises(DataError, match="shards listed by"):
        create_dataset("imagenet-sketch", root)


def test_wds_root_through_the_engine(tmp_path, monkeypatch):
    """api.evaluate on a collection root: a DataLoader worker reads the shards (the dataset pickles),
    the store keeps the shard member paths, and the rows equal those of the folder layout."""
    import roz.engine.jobs as runner  # where the runner builds its models
    from roz import api
    from roz.models.base import wrap_module
    from support.tinymodels import store_rows

    def fake(spec, **kw):
        return wrap_module(fx.FakeModel(), "imagenet-1k", input_size=16, resize_size=16, mean=(0.0, 0.0, 0.0),
                           std=(1.0, 1.0, 1.0), name=kw.get("name") or "fake")

    monkeypatch.setattr(runner, "create_model", fake)
    folder = create_dataset("imagenet-val", fx.make_imagenet_val_folders(tmp_path / "folders"))
    wds_root = wfx.from_folder_dataset(folder, tmp_path / "wds_imagenet1k", classnames=wfx.imagenet_names(range(1000)))
    runs = {}
    for layout, root in (("folders", folder.root), ("wds", wds_root)):
        api.evaluate("timm:fake@none", "imagenet-val", root, out=tmp_path / layout, name="fake",
                     settings={"workers": 1, "batch_size": 4})
        (rows, metrics), = store_rows(tmp_path / layout).values()
        runs[layout] = rows, metrics
    rows_f, metrics_f = runs["folders"]
    rows_w, metrics_w = runs["wds"]
    assert metrics_w["top1"] == pytest.approx(fx.VAL_EXPECTED["top1"]) and metrics_w == metrics_f
    assert rows_w["path"].str.startswith("test/").all() and rows_w["path"].str.endswith(".webp").all()
    cols = [c for c in rows_f.columns if c not in ("path", "unit_id")]  # the unit id hashes the root
    assert rows_w[cols].equals(rows_f[cols]) and (rows_w["unit_id"] != rows_f["unit_id"]).all()


def test_imagenet_o_names_that_clip_uses_twice_are_refused():
    from roz.datasets.imagenet_o import wnids_from_names

    assert wnids_from_names(["goldfish", "banana"], "o") == [fx.wnid(1), fx.wnid(954)]
    with pytest.raises(DataError, match="names ImageNet classes \\[836, 837\\]"):
        wnids_from_names(["goldfish", "sunglasses"], "o")


def test_shard_index_is_cached_and_follows_the_shard(tmp_path):
    from roz.datasets.shards import index_shard, index_shard_cached
    from roz.paths import cache_dir

    folder = create_dataset("imagenet-sketch", fx.make_sketch(tmp_path / "folders"))
    root = wfx.from_folder_dataset(folder, tmp_path / "wds", classnames=wfx.imagenet_names(range(1000)), maxcount=10)
    shard = root / "test" / "0.tar"
    before = set(cache_dir("shard-index").glob("*.json"))
    first = index_shard_cached(shard, "test/0.tar")
    (entry,) = set(cache_dir("shard-index").glob("*.json")) - before
    assert index_shard_cached(shard, "test/0.tar") == first == index_shard(shard, "test/0.tar")
    entry.write_text("{damaged")
    assert index_shard_cached(shard, "test/0.tar") == first  # rebuilt
    wfx.write_clip_benchmark_wds(tmp_path / "other", [(folder.root / p, 7) for p, _ in folder.samples[:2]],
                                 ["x"], maxcount=10)
    (tmp_path / "other" / "test" / "0.tar").replace(shard)  # a new shard at the same path
    again = index_shard_cached(shard, "test/0.tar")
    assert len(again) == 2 and again == index_shard(shard, "test/0.tar")



def make_val_objectnet(root):
    """ImageNet val images of two mapped classes (one predicted as a sibling class) and one unmapped class."""
    for j, (t, p) in enumerate([(530, 409), (954, 954), (954, 409), (0, 0)]):
        fx.write_image(root / "val" / fx.wnid(t) / f"v{j}.JPEG", p)
    return root


VAL_ON = {
    "val-on-imagenet-r-classes": lambda root: fx.make_val_with_r_classes(root)[0],
    "val-on-imagenet-a-classes": lambda root: fx.make_imagenet_r_a(root / "val", "a").parent,
    "val-on-objectnet-classes": make_val_objectnet,
}


@pytest.mark.parametrize("name", list(VAL_ON))
def test_wds_imagenet1k_as_root_of_the_restricted_val_variants(tmp_path, name):
    """The class-restricted ImageNet val variants over wds_imagenet1k: same subset, mask / collapse, rows."""
    options = {"mappings": fx.REFERENCE / "objectnet"} if name == "val-on-objectnet-classes" else {}
    root = VAL_ON[name](tmp_path / "folders")
    folder = create_dataset(name, root, **options)
    full = create_dataset("imagenet-val", root)
    wds_root = wfx.from_folder_dataset(full, tmp_path / "wds_imagenet1k", classnames=wfx.imagenet_names(range(1000)))
    wds = create_dataset(name, wds_root, **options)
    assert wds.protocol["layout"] == "clip_benchmark-wds" and len(wds) == len(folder) > 0
    assert [t for _, t in wds.samples] == [t for _, t in folder.samples]
    assert wds.labels.groups == folder.labels.groups and wds.labels.names == folder.labels.names
    m_folder, rows_folder = fx.score(folder)
    m_wds, rows_wds = fx.score(wds)
    assert rows_wds.equals(rows_folder) and m_wds == m_folder
