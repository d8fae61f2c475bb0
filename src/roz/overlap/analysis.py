"""Re-scoring stored per-sample results on full / clean / overlap subsets.

Inputs are per-sample frames as written by the result store (columns ``index``, ``path``,
``correct``; one frame per model, all on the same test set) and the set of test sample indices
detected as overlapping. For each model (accuracies in percent, like the store's metrics):

* ``acc_full``, ``acc_clean`` (overlap removed), ``acc_overlap`` (overlap only);
* ``delta_full_minus_clean`` = ``acc_full - acc_clean``, the CLIP paper's (Radford et al. 2021,
  Sec. 5) "overall accuracy change attributable to overlap": since
  ``acc_full = f acc_overlap + (1 - f) acc_clean`` (``f`` the overlap fraction), it equals
  ``f (acc_overlap - acc_clean)``, which is what ``delta_check`` recomputes;
* a paired bootstrap CI of the delta: resample the test samples with replacement, recompute
  full and clean accuracy on the *same* resample (clean = its non-overlap part), take percentiles;
* the paper's significance check: a one-sided binomial test of the overlap subset's correct
  count against the clean accuracy as null (``p_overlap_gt_clean``), and a Clopper-Pearson
  interval of the overlap accuracy.

``owed_to_overlap`` does the same for the gap between two models (e.g. a zero-shot model minus a
standard one): ``gap_full - gap_clean`` with one bootstrap shared by both models (paired across
models and across subsets).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from roz.errors import DataError


def overlap_indices(duplicates: pd.DataFrame | dict) -> set[int]:
    """Sample indices flagged as duplicates, from a duplicates table or a clean manifest."""
    if isinstance(duplicates, dict):
        return {int(r["index"]) for r in duplicates["removed"]}
    return {int(i) for i in duplicates.loc[duplicates["is_duplicate"].astype(bool), "test_index"]}


def _correct_series(frame: pd.DataFrame, on: str = "index") -> pd.Series:
    if on not in frame or "correct" not in frame:
        raise DataError(f"per-sample results need columns {on!r} and 'correct'; got {list(frame.columns)}")
    if frame[on].duplicated().any():
        raise DataError(f"per-sample results have duplicate {on!r} values")
    return pd.Series(frame["correct"].astype(float).to_numpy(), index=frame[on].to_numpy())


def _align(per_sample_by_model: dict[str, pd.DataFrame], overlap, on: str):
    """-> (models, correct matrix [m, n] with NaN where a model lacks a sample, overlap mask [n], keys)."""
    if not per_sample_by_model:
        raise DataError("no per-sample results to re-score")
    series = {m: _correct_series(f, on) for m, f in per_sample_by_model.items()}
    keys = pd.Index(sorted(set().union(*[s.index for s in series.values()])))
    mat = np.stack([s.reindex(keys).to_numpy(dtype=float) for s in series.values()])
    ov = np.asarray(keys.isin(list(overlap)), dtype=bool)
    return list(series), mat, ov, keys


def _acc(mat: np.ndarray, mask: np.ndarray) -> np.ndarray:
    sub = mat[:, mask]
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100.0 * np.nansum(sub, axis=1) / np.sum(~np.isnan(sub), axis=1)


def _bootstrap(mat: np.ndarray, ov: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """[n_boot, 3, m] accuracies (full, clean, overlap) on shared resamples."""
    rng = np.random.default_rng(seed)
    n = mat.shape[1]
    out = np.empty((n_boot, 3, mat.shape[0]))
    valid = ~np.isnan(mat)
    filled = np.nan_to_num(mat)
    for b in range(n_boot):
        cnt = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)  # resample as counts
        for j, w in enumerate((cnt, cnt * ~ov, cnt * ov)):
            with np.errstate(invalid="ignore", divide="ignore"):
                out[b, j] = 100.0 * (filled * w).sum(1) / (valid * w).sum(1)
    return out


def _ci(x: np.ndarray, level: float) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    if not len(x):
        return float("nan"), float("nan")
    a = (1 - level) / 2
    return float(np.quantile(x, a)), float(np.quantile(x, 1 - a))


def rescore(per_sample_by_model: dict[str, pd.DataFrame], overlap, *, on: str = "index", n_boot: int = 1000,
            seed: int = 0, level: float = 0.95, alpha_cp: float = 0.005) -> pd.DataFrame:
    """One row per model: accuracies on full / clean / overlap, delta with paired bootstrap CI,
    binomial test and Clopper-Pearson interval (``1 - alpha_cp``; the CLIP paper used 99.5 %)."""
    models, mat, ov, _ = _align(per_sample_by_model, overlap, on)
    full, clean, over = _acc(mat, np.ones_like(ov)), _acc(mat, ~ov), _acc(mat, ov)
    boot = _bootstrap(mat, ov, n_boot, seed) if n_boot else None
    rows = []
    for j, m in enumerate(models):
        valid = ~np.isnan(mat[j])
        n_full, n_ov = int(valid.sum()), int((valid & ov).sum())
        k_ov = int(np.nansum(mat[j, ov]))
        f = n_ov / n_full if n_full else float("nan")
        r = {"model": m, "n_full": n_full, "n_clean": n_full - n_ov, "n_overlap": n_ov, "overlap_frac": f,
             "acc_full": full[j], "acc_clean": clean[j], "acc_overlap": over[j],
             "delta_full_minus_clean": full[j] - clean[j],
             "delta_check": f * (over[j] - clean[j]) if n_ov else 0.0,
             "overlap_minus_clean": over[j] - clean[j]}
        if boot is not None:
            for name, x in (("acc_full", boot[:, 0, j]), ("acc_clean", boot[:, 1, j]),
                            ("delta_full_minus_clean", boot[:, 0, j] - boot[:, 1, j]),
                            ("overlap_minus_clean", boot[:, 2, j] - boot[:, 1, j])):
                r[f"{name}_lo"], r[f"{name}_hi"] = _ci(x, level)
        if n_ov and np.isfinite(clean[j]):
            p0 = min(max(clean[j] / 100.0, 0.0), 1.0)
            r["p_overlap_gt_clean"] = float(stats.binomtest(k_ov, n_ov, p0, alternative="greater").pvalue)
            ci = stats.binomtest(k_ov, n_ov).proportion_ci(confidence_level=1 - alpha_cp, method="exact")
            r["acc_overlap_cp_lo"], r["acc_overlap_cp_hi"] = 100 * ci.low, 100 * ci.high
        else:
            r["p_overlap_gt_clean"] = float("nan")
            r["acc_overlap_cp_lo"] = r["acc_overlap_cp_hi"] = float("nan")
        rows.append(r)
    df = pd.DataFrame(rows)
    df.attrs["protocol"] = {"bootstrap": n_boot, "seed": seed, "ci_level": level, "match_on": on,
                            "clopper_pearson_level": 1 - alpha_cp, "units": "percent"}
    return df


def owed_to_overlap(per_sample_by_model: dict[str, pd.DataFrame], overlap, pairs: list[tuple[str, str]], *,
                    on: str = "index", n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """For each ``(a, b)``: ``gap = acc_a - acc_b`` on full and clean, and ``owed = gap_full - gap_clean``
    (how much of a's measured advantage came from overlap), with paired bootstrap CIs."""
    missing = sorted({m for p in pairs for m in p} - set(per_sample_by_model))
    if missing:
        raise DataError(f"owed_to_overlap: no per-sample results for {missing}")
    models, mat, ov, _ = _align(per_sample_by_model, overlap, on)
    pos = {m: j for j, m in enumerate(models)}
    full, clean = _acc(mat, np.ones_like(ov)), _acc(mat, ~ov)
    boot = _bootstrap(mat, ov, n_boot, seed) if n_boot else None
    rows = []
    for a, b in pairs:
        ia, ib = pos[a], pos[b]
        r = {"model_a": a, "model_b": b, "gap_full": full[ia] - full[ib], "gap_clean": clean[ia] - clean[ib]}
        r["owed"] = r["gap_full"] - r["gap_clean"]
        if boot is not None:
            gf = boot[:, 0, ia] - boot[:, 0, ib]
            gc = boot[:, 1, ia] - boot[:, 1, ib]
            r["gap_full_lo"], r["gap_full_hi"] = _ci(gf, level)
            r["gap_clean_lo"], r["gap_clean_hi"] = _ci(gc, level)
            r["owed_lo"], r["owed_hi"] = _ci(gf - gc, level)
        rows.append(r)
    return pd.DataFrame(rows)
