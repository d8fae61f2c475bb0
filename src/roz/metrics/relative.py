"""Relative robustness (Taori et al. 2020) of an intervention, with a paired bootstrap.

``RR = acc_shift(f) - acc_shift(f0)`` in percentage points: ``f`` is the model after the
intervention (e.g. CLIP-Auto), ``f0`` the one before (CLIP); or the same model on two test
sets (cleaned vs full).

Interval: when both sides have per-sample results in the store, a paired percentile bootstrap
over *test samples*: each replicate draws the union of sample ids with replacement (seeded
``numpy.random.default_rng(seed)``, ``n_boot`` default 1000) and recomputes both accuracies on
the drawn ids each side has — a plain paired bootstrap when both sides cover the same samples,
and the right thing when one set is a subset of the other (cleaned vs full). Samples are
matched by an id column (the first of :data:`ID_COLUMNS` both tables have); tables of equal
length without a common id column are matched by row order (flagged ``matched_by='row'``).
Disjoint sample sets fall back to independent bootstraps of each side (``paired=False``).
Without per-sample results the interval is absent (NaN) and ``method`` says why.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

from roz.errors import RozError, StoreError
from roz.metrics.effective import DEFAULT_LEVEL, DEFAULT_N_BOOT, DEFAULT_SEED, _interval

#: Per-sample id columns tried, in order, to pair two per-sample tables.
ID_COLUMNS = ("sample_id", "sample", "idx", "index", "path", "id")
#: Per-sample column holding the 0/1 outcome of a metric.
CORRECT_COLUMNS = {"top1": "correct", "top5": "correct5"}


def relative_robustness(acc, acc0):
    """``acc - acc0`` (percent in, percentage points out; arrays ok)."""
    return np.asarray(acc, float) - np.asarray(acc0, float)


@dataclass
class RelativeRobustness:
    model: str
    model0: str
    dataset: str
    dataset0: str
    metric: str
    acc: float
    acc0: float
    rr: float
    lo: float = float("nan")
    hi: float = float("nan")
    paired: bool = False
    matched_by: str = ""
    n: int = 0
    n0: int = 0
    n_boot: int = 0
    seed: int | None = None
    level: float = DEFAULT_LEVEL
    method: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _counts(rng, n_items: int, n_draw: int, n_boot: int, chunk: int = 64):
    """Yield ``[b, n_items]`` multiplicity matrices of ``n_draw`` draws, ``n_boot`` rows in all."""
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        idx = rng.integers(0, n_items, size=(b, n_draw))
        c = np.zeros((b, n_items), dtype=np.float64)
        np.add.at(c, (np.arange(b)[:, None], idx), 1.0)
        yield c
        done += b


def paired_bootstrap(values, values0, ids=None, ids0=None, *, n_boot: int = DEFAULT_N_BOOT,
                     seed: int | None = DEFAULT_SEED, level: float = DEFAULT_LEVEL) -> dict:
    """Percentile interval of ``100 * (mean(values) - mean(values0))`` under resampling samples.

    ``values``/``values0``: per-sample outcomes (0/1 or any number); ``ids``/``ids0`` their
    sample ids (``None``: matched by position, lengths must agree). Returns ``{"diff", "lo",
    "hi", "paired", "n_union", "boot"}``.
    """
    v = np.asarray(values, dtype=float)
    v0 = np.asarray(values0, dtype=float)
    rng = np.random.default_rng(seed)
    if ids is None or ids0 is None:
        if len(v) != len(v0):
            raise RozError(f"paired bootstrap by position needs equal lengths, got {len(v)} and {len(v0)}",
                           hint="give sample ids")
        ids = ids0 = np.arange(len(v))
    ids = np.asarray(ids)
    ids0 = np.asarray(ids0)
    union, inv = np.unique(np.concatenate([ids, ids0]), return_inverse=True)
    ia, ib = inv[: len(ids)], inv[len(ids):]
    diff = 100.0 * (v.mean() - v0.mean())
    shared = np.intersect1d(ids, ids0).size
    boot = np.empty(n_boot)
    if shared:
        # each side's sum and count over the drawn ids, per replicate
        wa = np.zeros(len(union))
        ca = np.zeros(len(union))
        np.add.at(wa, ia, v)
        np.add.at(ca, ia, 1.0)
        wb = np.zeros(len(union))
        cb = np.zeros(len(union))
        np.add.at(wb, ib, v0)
        np.add.at(cb, ib, 1.0)
        k = 0
        for c in _counts(rng, len(union), len(union), n_boot):
            with np.errstate(invalid="ignore", divide="ignore"):
                boot[k:k + len(c)] = 100.0 * ((c @ wa) / (c @ ca) - (c @ wb) / (c @ cb))
            k += len(c)
        paired = True
    else:
        k = 0
        for c, c0 in zip(_counts(rng, len(v), len(v), n_boot), _counts(rng, len(v0), len(v0), n_boot)):
            boot[k:k + len(c)] = 100.0 * ((c @ v) / len(v) - (c0 @ v0) / len(v0))
            k += len(c)
        paired = False
    # n_boot=0 (``roz report --bootstrap 0``): the point estimate without an interval
    lo, hi = _interval(boot, level) if n_boot > 0 else (float("nan"), float("nan"))
    return {"diff": float(diff), "lo": float(lo), "hi": float(hi), "paired": paired, "n_union": int(len(union)),
            "boot": boot}


def _find_unit(units, model: str, dataset: str) -> dict | None:
    found = units[(units["model"] == model) & (units["dataset"] == dataset)] if len(units) else units
    return found.iloc[-1].to_dict() if len(found) else None


def _outcomes(samples: Callable, unit: dict, metric: str):
    """(values, ids, matched id column) of a unit's per-sample results, or None."""
    try:
        df = samples(unit["unit_id"])
    except StoreError:
        return None
    col = CORRECT_COLUMNS.get(metric, metric)
    if col not in df.columns:
        return None
    if "ok" in df.columns and df["ok"].dtype == bool:
        df = df[df["ok"]]
    return df, col


_IDENTITY = ("unit_id", "model", "role", "dataset", "dataset_n")


def _size(u: dict) -> int:
    v = u.get("dataset_n")
    return 0 if v is None or (isinstance(v, float) and math.isnan(v)) else int(v or 0)


def _metric(u: dict, metric: str) -> float | None:
    v = u.get(metric)
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def relative_robustness_from_units(units, samples: Callable, model: str, model0: str, dataset: str,
                        dataset0: str | None = None, *, metric: str = "top1", n_boot: int = DEFAULT_N_BOOT,
                        seed: int | None = DEFAULT_SEED, level: float = DEFAULT_LEVEL,
                        source: str = "the run") -> RelativeRobustness:
    """Relative robustness of ``model`` on ``dataset`` vs ``model0`` on ``dataset0`` (default the same).

    ``units``: the run's natural-shift eval units, one row each (``ResultStore.natural_table()``:
    ``unit_id, model, dataset, dataset_n`` + metric columns; the last row of a (model, dataset)
    counts); ``samples(unit_id)``: that unit's per-sample rows (``ResultStore.samples``), raising
    :class:`~roz.errors.StoreError` when there are none."""
    dataset0 = dataset0 or dataset
    u, u0 = _find_unit(units, model, dataset), _find_unit(units, model0, dataset0)
    if u is None or u0 is None:
        miss = f"{model} on {dataset}" if u is None else f"{model0} on {dataset0}"
        raise StoreError(f"no finished eval unit for {miss} in {source}",
                         hint="evaluate it first (roz eval), or check the model/dataset names")
    a, a0 = _metric(u, metric), _metric(u0, metric)
    if a is None or a0 is None:
        have = sorted(k for k, v in (u if a is None else u0).items()
                      if k not in _IDENTITY and not (isinstance(v, float) and math.isnan(v)))
        raise StoreError(f"metric {metric!r} missing for {model if a is None else model0}",
                         hint=f"available: {have}")
    res = RelativeRobustness(model=model, model0=model0, dataset=dataset, dataset0=dataset0, metric=metric,
                             acc=a, acc0=a0, rr=a - a0, n=_size(u), n0=_size(u0),
                             n_boot=n_boot, seed=seed, level=level)
    s, s0 = _outcomes(samples, u, metric), _outcomes(samples, u0, metric)
    if s is None or s0 is None:
        res.method = f"no per-sample '{metric}' outcomes for {model if s is None else model0}: no interval"
        return res
    (df, col), (df0, col0) = s, s0
    idc = next((c for c in ID_COLUMNS if c in df.columns and c in df0.columns), None)
    if idc is not None:
        ids, ids0, res.matched_by = df[idc].to_numpy(), df0[idc].to_numpy(), idc
    elif len(df) == len(df0):
        ids = ids0 = None
        res.matched_by = "row"
    else:
        ids, ids0 = np.arange(len(df)), np.arange(len(df)) + len(df)  # disjoint: unpaired
        res.matched_by = "none"
    b = paired_bootstrap(df[col].to_numpy(float), df0[col0].to_numpy(float), ids, ids0, n_boot=n_boot, seed=seed,
                         level=level)
    res.lo, res.hi, res.paired = b["lo"], b["hi"], b["paired"]
    res.method = ("paired bootstrap over test samples" if b["paired"] else "independent bootstrap of each side") + \
        f" (matched by {res.matched_by}, B={n_boot}, seed={seed}, percentile {level:.0%})"
    return res


def default_pairs(roles: dict[str, str]) -> list[tuple[str, str]]:
    """Intervention pairs (f, f0) found by role: each "zeroshot-auto" model vs its "zeroshot"
    model — the one whose name equals it without an ``auto`` token, or the only zero-shot model."""
    zs = [m for m, r in roles.items() if r == "zeroshot"]
    out = []
    for m, r in roles.items():
        if r != "zeroshot-auto":
            continue
        base = m
        for tok in ("-auto", "_auto", "auto-", "auto_", "+auto", "auto"):
            base = base.replace(tok, "")
        match = [z for z in zs if z == base] or (zs if len(zs) == 1 else [])
        if match:
            out.append((m, match[0]))
    return out


def relative_table(units, samples: Callable, pairs: Sequence[tuple[str, str]], datasets: Sequence[str] | None = None,
                   *, metric: str = "top1", n_boot: int = DEFAULT_N_BOOT, seed: int | None = DEFAULT_SEED,
                   level: float = DEFAULT_LEVEL):
    """Relative robustness of every pair on every dataset both models have (pandas DataFrame);
    ``units`` and ``samples`` as for :func:`relative_robustness_from_units`."""
    import pandas as pd

    have: dict[str, set] = {}
    if len(units) and metric in units.columns:
        for r in units[units[metric].notna()].itertuples(index=False):
            have.setdefault(r.model, set()).add(r.dataset)
    rows = []
    for m, m0 in pairs:
        common = sorted(have.get(m, set()) & have.get(m0, set()))
        for ds in (common if datasets is None else [d for d in datasets if d in common]):
            rows.append(relative_robustness_from_units(units, samples, m, m0, ds, metric=metric, n_boot=n_boot,
                                                       seed=seed, level=level).to_dict())
    cols = list(RelativeRobustness.__dataclass_fields__)
    return pd.DataFrame(rows, columns=cols)
