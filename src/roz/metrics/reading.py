"""Reading accuracy: zero-shot top-1 on word cards (``roz.shifts.word_cards``).

A word card shows its true class name alone; the prediction *reads* the card when it is the
written class -- or a class with the same name (ImageNet has a few duplicate names, e.g. two
"crane" classes, that no card can tell apart). Percent over the cards drawn (``ok`` and written
label ``>= 0``); skipped samples (multi-word class names, text that does not fit) are counted in
``n_skipped``. Predictions range over the dataset's full label space.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from roz.metrics.typographic import _np


def _same_name(names: Sequence[str] | None, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if names is None:
        return a == b
    norm = np.array([str(n).strip().lower() for n in names], dtype=object)
    inside = (a >= 0) & (a < len(norm)) & (b >= 0) & (b < len(norm))
    same = np.zeros(len(a), dtype=bool)
    same[inside] = norm[a[inside]] == norm[b[inside]]
    return (a == b) | same


def reading_scores(preds, written, ok=None, names: Sequence[str] | None = None) -> dict[str, float]:
    """``{"reading_accuracy" (percent), "n" (cards), "n_skipped"}``; ``names``: the label names
    (a prediction of another class with the written class's name counts as read)."""
    p, w = _np(preds).astype(np.int64), _np(written).astype(np.int64)
    if len(p) != len(w):
        raise ValueError(f"reading: {len(p)} predictions, {len(w)} written labels")
    keep = (w >= 0) if ok is None else (_np(ok).astype(bool) & (w >= 0))
    n = int(keep.sum())
    acc = 100.0 * float(_same_name(names, p[keep], w[keep]).mean()) if n else float("nan")
    return {"reading_accuracy": acc, "n": n, "n_skipped": int(len(p) - n)}


def aggregate_reading(rows, names: Sequence[str] | None = None) -> dict[str, float]:
    """:func:`reading_scores` of a per-sample table with ``pred``, ``written_label`` (``-1`` =
    skipped) and optionally ``ok`` columns."""
    ok = rows["ok"].to_numpy() if "ok" in rows.columns else None
    return reading_scores(rows["pred"].to_numpy(), rows["written_label"].to_numpy(), ok, names)
