import numpy as np
import pytest

from roz.datasets.base import EvalDataset, LabelSpace
from roz.errors import DataError
from roz.overlap import build_manifest, filter_dataset, read_manifest, write_manifest


@pytest.fixture(scope="module")
def dataset(world):
    files = sorted((world / "mini-r").rglob("*.png"))
    wnids = sorted({p.parent.name for p in files})
    samples = [(str(p.relative_to(world / "mini-r")), wnids.index(p.parent.name)) for p in files]
    return EvalDataset(name="mini-r", root=world / "mini-r", samples=samples,
                       labels=LabelSpace.singletons(wnids, wnids))


@pytest.fixture(scope="module")
def dups(dataset, phash_detector):
    return phash_detector.query([dataset.path(i) for i in range(len(dataset))])


def test_manifest_excludes_exactly_the_duplicates(tmp_path, dataset, dups):
    m = build_manifest(dups, dataset)
    found = set(dups.loc[dups.is_duplicate, "test_index"])
    assert len(found) > 0
    assert set(m["kept_indices"]) == set(range(len(dataset))) - found
    assert {r["index"] for r in m["removed"]} == found and m["n_removed"] == len(found)
    assert m["kept_paths"] == [dataset.samples[i][0] for i in m["kept_indices"]]
    p = write_manifest(tmp_path / "clean.json", m)
    assert read_manifest(p) == m

    clean = filter_dataset(dataset, p)
    assert len(clean) == len(dataset) - len(found) and clean.name == "mini-r-clean"
    assert [clean.path(i) for i in range(len(clean))] == [dataset.path(i) for i in m["kept_indices"]]
    assert clean.sample_meta()["orig_index"] == m["kept_indices"]
    clean.transform = lambda im: np.asarray(im).shape
    x, target, idx, ok = clean[1]
    assert x == (64, 64, 3) and idx == 1 and ok and target == dataset.samples[m["kept_indices"][1]][1]

    over = filter_dataset(dataset, m, which="overlap")
    assert sorted(over.indices) == sorted(found)


def test_manifest_refuses_other_dataset(dataset, dups):
    m = build_manifest(dups, dataset)
    other = EvalDataset(name="x", root=dataset.root, samples=list(reversed(dataset.samples)), labels=dataset.labels)
    with pytest.raises(DataError, match="changed"):
        filter_dataset(other, m)
    short = EvalDataset(name="x", root=dataset.root, samples=dataset.samples[:5], labels=dataset.labels)
    with pytest.raises(DataError, match="covers"):
        filter_dataset(short, m)
    with pytest.raises(DataError, match="one per sample"):
        build_manifest(dups.iloc[:5], dataset)
