import numpy as np
import pandas as pd
import pytest

from roz.overlap import owed_to_overlap, rescore


def frame(correct, start=0):
    c = np.asarray(correct, bool)
    return pd.DataFrame({"index": np.arange(start, start + len(c)), "path": [f"f{i}.png" for i in range(len(c))],
                         "correct": c})


def test_rescore_by_hand():
    # 10 samples, overlap = {0, 1, 2, 3}; model A: 4/4 right on overlap, 3/6 on clean
    a = frame([1, 1, 1, 1, 1, 1, 1, 0, 0, 0])
    b = frame([1, 0, 0, 0, 1, 1, 1, 1, 0, 0])
    ov = {0, 1, 2, 3}
    r = rescore({"A": a, "B": b}, ov, n_boot=500, seed=7).set_index("model")
    assert r.loc["A", "acc_full"] == pytest.approx(70.0)
    assert r.loc["A", "acc_clean"] == pytest.approx(50.0)
    assert r.loc["A", "acc_overlap"] == pytest.approx(100.0)
    assert r.loc["A", "delta_full_minus_clean"] == pytest.approx(20.0)
    # CLIP-paper identity: full - clean = f * (overlap - clean) = 0.4 * 50
    assert r.loc["A", "delta_check"] == pytest.approx(20.0)
    assert r.loc["B", "acc_full"] == pytest.approx(50.0) and r.loc["B", "acc_clean"] == pytest.approx(200 / 3)
    assert r.loc["B", "delta_full_minus_clean"] == pytest.approx(50 - 200 / 3)
    assert r.loc["A", "n_overlap"] == 4 and r.loc["A", "n_clean"] == 6 and r.loc["A", "overlap_frac"] == 0.4
    assert r.loc["A", "delta_full_minus_clean_lo"] <= 20.0 <= r.loc["A", "delta_full_minus_clean_hi"]
    # binomial test: 4/4 correct vs p0 = 0.5 -> p = 0.5^4
    assert r.loc["A", "p_overlap_gt_clean"] == pytest.approx(0.0625)
    # seeded: same seed, same CIs; another seed, different
    r2 = rescore({"A": a, "B": b}, ov, n_boot=500, seed=7).set_index("model")
    pd.testing.assert_frame_equal(r, r2)
    r3 = rescore({"A": a, "B": b}, ov, n_boot=500, seed=8).set_index("model")
    assert not np.allclose(r["acc_full_lo"].to_numpy(), r3["acc_full_lo"].to_numpy()) or \
        not np.allclose(r["delta_full_minus_clean_hi"].to_numpy(), r3["delta_full_minus_clean_hi"].to_numpy())


def test_missing_samples_and_no_overlap():
    a = frame([1, 0, 1, 1])
    b = frame([1, 1, 1], start=1)  # lacks sample 0
    r = rescore({"A": a, "B": b}, set(), n_boot=50).set_index("model")
    assert r.loc["B", "n_full"] == 3 and r.loc["B", "acc_full"] == pytest.approx(100.0)
    assert r.loc["A", "delta_full_minus_clean"] == 0.0 and np.isnan(r.loc["A", "acc_overlap"])


def test_owed_to_overlap_by_hand():
    zs = frame([1, 1, 1, 1, 1, 1, 1, 0, 0, 0])  # full 70, clean 50
    st = frame([0, 0, 1, 1, 1, 1, 1, 0, 0, 0])  # full 50, clean 50
    o = owed_to_overlap({"zs": zs, "std": st}, {0, 1, 2, 3}, [("zs", "std")], n_boot=300, seed=0).iloc[0]
    assert o["gap_full"] == pytest.approx(20.0) and o["gap_clean"] == pytest.approx(0.0)
    assert o["owed"] == pytest.approx(20.0) and o["owed_lo"] <= 20.0 <= o["owed_hi"]


def test_bootstrap_ci_covers_on_larger_sample():
    rng = np.random.default_rng(0)
    n = 3000
    ov = set(range(300))
    c = np.r_[rng.random(300) < 0.9, rng.random(n - 300) < 0.6]
    r = rescore({"m": frame(c)}, ov, n_boot=400, seed=1).iloc[0]
    # true effect 0.1 * (90 - 60) = 3 pp; CI is about +-1 pp wide
    assert r["delta_full_minus_clean_lo"] < r["delta_full_minus_clean"] < r["delta_full_minus_clean_hi"]
    assert 1.5 < r["delta_full_minus_clean"] < 4.5 and r["delta_full_minus_clean_hi"] - r["delta_full_minus_clean_lo"] < 2.5
    assert r["p_overlap_gt_clean"] < 1e-10
