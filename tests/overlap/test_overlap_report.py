import numpy as np
import pandas as pd
import pytest

from roz.datasets.base import EvalDataset, LabelSpace
from roz.overlap import overlap_report, read_manifest


def test_overlap_report_end_to_end(tmp_path, world, phash_detector):
    files = sorted((world / "mini-r").rglob("*.png"))
    wnids = sorted({p.parent.name for p in files})
    ds = EvalDataset(name="mini-r", root=world / "mini-r",
                     samples=[(str(p.relative_to(world / "mini-r")), wnids.index(p.parent.name)) for p in files],
                     labels=LabelSpace.singletons(wnids, wnids))
    gt = world / "corpus" / "planted_duplicates.json"
    import json

    planted = {r["test_file"].split("/", 1)[1] for r in json.loads(gt.read_text())}
    is_planted = np.array([s in planted for s, _ in ds.samples])
    rng = np.random.default_rng(0)
    # a "memorising" zero-shot model: always right on planted images, 50 % elsewhere; a standard one: 50 % everywhere
    zs = is_planted | (rng.random(len(ds)) < 0.5)
    st = rng.random(len(ds)) < 0.5
    per = {m: pd.DataFrame({"index": np.arange(len(ds)), "path": [s for s, _ in ds.samples], "correct": c})
           for m, c in (("zs", zs), ("std", st))}
    out = overlap_report(ds, world / "corpus" / "images", per, seed=0, ground_truth=gt,
                         manifest_path=tmp_path / "m.json", pairs=[("zs", "std")], n_boot=200,
                         detector=phash_detector)
    assert out["detection"]["precision"] >= 0.9 and out["detection"]["recall"] >= 0.9
    assert read_manifest(tmp_path / "m.json") == out["manifest"]
    dup = out["duplicates"]["is_duplicate"].to_numpy()
    acc = out["accuracy"].set_index("model")
    assert acc.loc["zs", "acc_overlap"] == pytest.approx(100 * zs[dup].mean())
    assert acc.loc["zs", "acc_clean"] == pytest.approx(100 * zs[~dup].mean())
    assert acc.loc["zs", "delta_full_minus_clean"] > 5 and acc.loc["zs", "delta_full_minus_clean_lo"] > 0
    owed = out["owed"].iloc[0]
    assert owed["owed"] == pytest.approx(acc.loc["zs", "delta_full_minus_clean"] - acc.loc["std", "delta_full_minus_clean"])
    assert out["protocol"]["method"] == "phash" and out["protocol"]["n_overlap"] == int(dup.sum())


def test_ground_truth_split_inference(world):
    from roz.errors import DataError
    from roz.overlap.report import _infer_split

    truth = pd.DataFrame({"test_file": ["n1/a.png", "n1/a.png"], "corpus_file": ["images/x.png", "images/y.png"],
                          "split": ["mini-r", "mini-sketch"]})
    def mk(name, root):
        return EvalDataset(name=name, root=root, samples=[], labels=LabelSpace.singletons(["n1"], ["a"]))

    assert _infer_split(truth, mk("mini-sketch", world / "x")) == "mini-sketch"
    assert _infer_split(truth, mk("whatever", world / "mini-r")) == "mini-r"
    assert _infer_split(truth.iloc[:1], mk("whatever", world)) is None
    with pytest.raises(DataError, match="ground_truth_split"):
        _infer_split(truth, mk("other", world / "other"))
