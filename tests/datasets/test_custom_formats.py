"""User datasets in other tools' formats, written by those tools' libraries (webdataset, Hugging Face
``datasets``), and own folders with ordinary class names: each gives the same per-sample rows
(targets, label space, predictions of a scripted model) as the plain WordNet-ID ImageFolder."""

from __future__ import annotations

import json
import shutil

import pytest

from support import natural_fixtures as fx
from support import wds_fixtures as wfx
from roz.datasets.registry import create_dataset
from roz.errors import DataError


@pytest.fixture
def plain(tmp_path):
    """The reference: an ImageFolder by WordNet ID (3 classes, 6 images, 4 right)."""
    return create_dataset("imagefolder", fx.make_imagenet_val_folders(tmp_path / "plain", sub=""))


def same_rows(ds, ref):
    assert [t for _, t in ds.samples] == [t for _, t in ref.samples]
    assert ds.labels.groups == ref.labels.groups and ds.labels.names == ref.labels.names
    m, rows = fx.score(ds)
    m_ref, rows_ref = fx.score(ref)
    assert rows.equals(rows_ref) and m == m_ref
    assert m["top1"] == pytest.approx(fx.VAL_EXPECTED["top1"])


def test_generic_webdataset_shards(plain, tmp_path):
    root = wfx.write_clip_benchmark_wds(tmp_path / "shards", [(plain.root / p, t) for p, t in plain.samples],
                                        [g[0] for g in plain.labels.groups], maxcount=4, ext="jpg")
    for f in (root / "test").iterdir():  # plain shards in ROOT, no split folder
        shutil.move(str(f), root / f.name)
    ds = create_dataset("wds", root)
    assert ds.protocol["n_shards"] == 2 and ds.protocol["label_space"] == "3 WordNet IDs"
    same_rows(ds, plain)


def _hf_dataset(plain):
    import datasets

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=[g[0] for g in plain.labels.groups])})
    rows = {"image": [{"bytes": (plain.root / p).read_bytes(), "path": None} for p, _ in plain.samples],
            "label": [t for _, t in plain.samples]}
    return datasets.Dataset.from_dict(rows, features=features)


def test_hf_save_to_disk(plain, tmp_path):
    import datasets

    ds = _hf_dataset(plain)
    datasets.DatasetDict({"train": ds.select([0]), "test": ds}).save_to_disk(str(tmp_path / "hf"))
    got = create_dataset("hf", tmp_path / "hf")
    assert got.protocol["split"] == "test" and got.protocol["layout"] == "hf-save_to_disk"
    same_rows(got, plain)
    with pytest.raises(DataError, match="no split 'validation'"):
        create_dataset("hf", tmp_path / "hf", split="validation")
    with pytest.raises(DataError, match="no column 'img'"):
        create_dataset("hf", tmp_path / "hf", image_column="img")


def test_hf_hub_parquet_copy(plain, tmp_path):
    (tmp_path / "repo" / "data").mkdir(parents=True)
    _hf_dataset(plain).to_parquet(str(tmp_path / "repo" / "data" / "test-00000-of-00001.parquet"))
    got = create_dataset("hf", tmp_path / "repo")
    assert got.protocol["layout"] == "hf-parquet"
    same_rows(got, plain)


def test_folder_with_class_names_json(plain, tmp_path):
    """Ordinary folder names plus a JSON naming each folder's WordNet ID: the plain rows."""
    entries = {}
    for k, g in enumerate(plain.labels.groups):
        folder = f"class_{k}"
        shutil.copytree(plain.root / g[0], tmp_path / "mine" / folder)
        entries[folder] = {"wnid": g[0], "name": plain.labels.names[k]}
    (tmp_path / "names.json").write_text(json.dumps(entries))
    same_rows(create_dataset("folder", tmp_path / "mine", class_names=tmp_path / "names.json"), plain)


def test_folder_with_plain_names(tmp_path):
    for name in ("golden_retriever", "tabby_cat"):
        fx.write_image(tmp_path / "pets" / name / "a.png", 0)
    ds = create_dataset("folder", tmp_path / "pets")
    assert ds.labels.names == ["golden retriever", "tabby cat"]
    assert ds.labels.groups == [("golden retriever",), ("tabby cat",)]
    (tmp_path / "bad.json").write_text(json.dumps({"golden_retriever": "dog"}))
    with pytest.raises(DataError, match="no entry for 1 classes"):
        create_dataset("folder", tmp_path / "pets", class_names=tmp_path / "bad.json")


def test_hf_dataset_through_the_engine(plain, tmp_path, monkeypatch):
    """api.evaluate on a save_to_disk directory with a DataLoader worker (the dataset pickles)."""
    import roz.engine.jobs as runner  # where the runner builds its models
    from roz import api
    from roz.models.base import wrap_module
    from support.tinymodels import store_rows

    monkeypatch.setattr(runner, "create_model", lambda spec, **kw: wrap_module(
        fx.FakeModel(), "imagenet-1k", input_size=16, resize_size=16, mean=(0.0,) * 3, std=(1.0,) * 3, name="fake"))
    _hf_dataset(plain).save_to_disk(str(tmp_path / "hf"))
    api.evaluate("timm:fake@none", "hf", tmp_path / "hf", out=tmp_path / "run", label="my-hf",
                 settings={"workers": 1, "batch_size": 4})
    (rows, metrics), = store_rows(tmp_path / "run").values()
    assert metrics["top1"] == pytest.approx(fx.VAL_EXPECTED["top1"])
    assert list(rows["path"]) == [f"train/{i}" for i in range(len(plain))]
    assert api.results(tmp_path / "run")["dataset"].tolist() == ["my-hf"]
