import numpy as np
import pytest

from roz.errors import DataError
from roz.overlap import calibrate_synthetic, calibrate_with_ground_truth, pick_threshold
from roz.overlap.calibrate import _SuffixMatcher, precision_recall


def test_pick_threshold_by_hand():
    s = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6])
    y = np.array([1, 1, 0, 1, 0, 0], bool)
    r = pick_threshold(s, y, target_precision=1.0)
    # only {0.99, 0.95} reach precision 1; cut half-way to 0.9
    assert r["threshold"] == pytest.approx(0.925) and r["precision"] == 1.0 and r["recall"] == pytest.approx(2 / 3)
    r = pick_threshold(s, y, target_precision=0.75)
    # 0.8 cut: 3 TP / 1 FP = 0.75, recall 1
    assert r["threshold"] == pytest.approx(0.75) and r["recall"] == 1.0 and r["met_target"]
    assert precision_recall(s, y, 0.75) | {} == {k: r[k] for k in ("threshold", "tp", "fp", "fn", "precision", "recall")}
    r = pick_threshold(np.array([0.5, 0.9]), np.array([1, 0], bool), target_precision=0.99)
    assert not r["met_target"]
    with pytest.raises(DataError):
        pick_threshold(s, np.zeros(6, bool))


def test_suffix_matcher():
    m = _SuffixMatcher(["/data/w/mini-r/n1/a.png", "/data/w/mini-r/n2/a.png", "/data/w/corpus/images/c1.png"])
    assert m.find("mini-r/n2/a.png") == 1
    assert m.find("a.png") is None  # ambiguous
    assert m.find("corpus/images/c1.png") == 2 and m.find("images/c1.png") == 2
    assert m.find("other/zzz.png") is None
    assert m.find("mini-sketch/n2/a.png") is None  # same class/file name in another split: no match


def test_calibrate_with_ground_truth(world, test_paths, phash_detector):
    det = phash_detector
    r = calibrate_with_ground_truth(det, test_paths, world / "corpus" / "planted_duplicates.json", target_precision=0.99)
    assert r["n_pos"] == 50 and r["n_neg"] == 150
    assert r["met_target"] and r["precision"] >= 0.99 and r["recall"] >= 0.95


def test_calibrate_synthetic_seeded(phash_detector):
    det = phash_detector
    before = det.index.ntotal
    a = calibrate_synthetic(det, n_pos=40, n_neg=80, seed=3)
    b = calibrate_synthetic(det, n_pos=40, n_neg=80, seed=3)
    assert a["threshold"] == b["threshold"] and a["recall"] == b["recall"]
    assert det.index.ntotal == before  # corpus index restored
    assert a["met_target"] and a["precision"] >= 0.99 and a["recall"] >= 0.9 and a["pair_accuracy"] >= 0.95
