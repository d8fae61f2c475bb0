"""Effective robustness on full vs clean (de-duplicated) test sets, side by side.

For every natural shift whose test set was checked for overlap: the run's natural-shift accuracies
(``ResultStore.natural_table``) give the full-set ER of every model with the existing machinery
(:func:`roz.metrics.effective.compute_effective_robustness`: baseline fit over the run's standard
models, the default fit per shift). The clean-set ER is the same computation with that shift's
accuracies replaced by the accuracies on the clean part (near-duplicates removed) for *every*
model, baseline included — the baseline line is refitted on clean accuracies, the reference
(e.g. ImageNet val) is unchanged.

Intervals: a paired bootstrap over the shift's test samples (``n_boot`` replicates from
``default_rng(seed)``): each replicate resamples the test samples with replacement, recomputes
every model's full and clean accuracy on the *same* resample, refits the baseline on both and
records ER_full, ER_clean and their difference; percentiles at ``level``. It reflects test-set
sampling noise (the reference accuracies are held fixed), the question being whether removing
the duplicates changed ER beyond that noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from roz.metrics.effective import accuracy_table_from_rows, compute_effective_robustness
from roz.metrics.fits import effective_robustness, fit_for_shift, fit_kinds
from roz.metrics.shift_sets import key


def _per_sample_matrix(store, split: str):
    """(models, correct float[m, n] with NaN gaps, sample index array) of the split's plain eval units."""
    frames = {r.model.name: store.samples(r.unit_id) for r in store.records()
              if r.dataset.name == split and not r.shift and not r.attack}
    frames = {m: f for m, f in frames.items() if f is not None and "correct" in f and "index" in f}
    if not frames:
        return [], np.zeros((0, 0)), np.zeros(0, np.int64)
    idx = np.array(sorted(set().union(*[set(f["index"].tolist()) for f in frames.values()])), np.int64)
    mat = np.stack([pd.Series(f["correct"].astype(float).to_numpy(), index=f["index"].to_numpy())
                    .reindex(idx).to_numpy(dtype=float) for f in frames.values()])
    return list(frames), mat, idx


def _acc(mat: np.ndarray, w: np.ndarray) -> np.ndarray:
    valid = ~np.isnan(mat)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100.0 * (np.nan_to_num(mat) * w).sum(1) / (valid * w).sum(1)


def _er(x_ref: np.ndarray, y: np.ndarray, models, base, shift, kinds, xk, yk) -> np.ndarray:
    pos = [models.index(b) for b in base]
    fit, _ = fit_for_shift(kinds, shift, x_ref[pos], y[pos], list(base), x_key=xk, y_key=yk, n_boot=0)
    return effective_robustness(y, x_ref, fit)


def clean_er_table(store, duplicates: dict[str, pd.DataFrame], *, n_boot: int = 200, seed: int = 0,
                   level: float = 0.95) -> dict:
    """``{"rows": [...], "skipped": {split: why}, "protocol": {...}}``; one row per (shift, model)."""
    nat = store.natural_table()
    full_table = accuracy_table_from_rows(nat, source=str(store.root))
    full = compute_effective_robustness(full_table, n_boot=0, seed=seed)
    kinds = fit_kinds("default")
    rows, skipped = [], {}
    for split, dups in duplicates.items():
        shift = next((s for s in full.shifts if s.dataset == split and s.metric == "top1"), None)
        if shift is None or shift.name not in full.fits:
            skipped[split] = ("not a top-1 natural shift of this run with a baseline fit"
                              + (f" ({full.skipped[shift.name]})" if shift is not None and shift.name in full.skipped else ""))
            continue
        models, mat, idx = _per_sample_matrix(store, split)
        fit = full.fits[shift.name]
        base = [b for b in fit.models if b in models]
        if len(base) < len(fit.models):
            skipped[split] = "per-sample rows missing for some baseline models"
            continue
        xk, yk = shift.x_key("standard"), shift.y_key
        x_ref = np.array([full_table.value(m, xk) for m in models])
        dup_idx = set(dups.loc[dups["is_duplicate"].astype(bool), "test_index"].astype(int))
        clean = ~np.isin(idx, list(dup_idx))
        ones = np.ones(len(idx))
        er_full = _er(x_ref, _acc(mat, ones), models, base, shift.name, kinds, xk, yk)
        er_clean = _er(x_ref, _acc(mat, ones * clean), models, base, shift.name, kinds, xk, yk)
        rng = np.random.default_rng(seed)
        boot = np.full((n_boot, 2, len(models)), np.nan)
        for b in range(n_boot):
            w = np.bincount(rng.integers(0, len(idx), len(idx)), minlength=len(idx)).astype(float)
            try:
                boot[b, 0] = _er(x_ref, _acc(mat, w), models, base, shift.name, kinds, xk, yk)
                boot[b, 1] = _er(x_ref, _acc(mat, w * clean), models, base, shift.name, kinds, xk, yk)
            except Exception:  # noqa: BLE001  a degenerate resample (0 %/100 % baseline cells): left out
                continue
        a = (1 - level) / 2
        for j, m in enumerate(models):
            r = {"split": split, "shift": shift.name, "reference": xk, "model": m, "role": full_table.role(m),
                 "n_full": int((~np.isnan(mat[j])).sum()), "n_clean": int((~np.isnan(mat[j]) & clean).sum()),
                 "er_full": float(er_full[j]), "er_clean": float(er_clean[j]),
                 "er_full_minus_clean": float(er_full[j] - er_clean[j])}
            for name, x in (("er_full", boot[:, 0, j]), ("er_clean", boot[:, 1, j]),
                            ("er_full_minus_clean", boot[:, 0, j] - boot[:, 1, j])):
                x = x[np.isfinite(x)]
                r[f"{name}_lo"], r[f"{name}_hi"] = ((float(np.quantile(x, a)), float(np.quantile(x, 1 - a)))
                                                    if len(x) else (float("nan"), float("nan")))
            rows.append(r)
    protocol = {"er": full.protocol.get("definition"), "baseline_rule": full.protocol.get("baseline_rule"),
                "fits": {k: v for k, v in full.protocol.get("fits", {}).items()},
                "clean": "shift accuracies of every model (baseline refitted) on the test set minus detected duplicates; "
                         "reference accuracies unchanged",
                "bootstrap": "paired over test samples (full and clean on the same resample), reference fixed",
                "n_boot": int(n_boot), "seed": seed, "level": level, "metric": key("<shift>", "top1")}
    return {"rows": rows, "skipped": skipped, "protocol": protocol}
