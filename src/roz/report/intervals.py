"""Per-point uncertainty for the report's figures: Clopper–Pearson intervals, as in the ImageNet
testbed's plots (Taori et al. 2020 draw 99.5 % Clopper–Pearson intervals on both axes).

An accuracy of ``a`` percent over ``n`` samples is ``k = round(a * n / 100)`` successes; its
interval is the exact binomial (Clopper–Pearson) one at level :data:`CP_LEVEL`, in its beta-quantile
form (the same numbers as ``scipy.stats.binomtest(...).proportion_ci(method="exact")``, which the
overlap analysis uses, at a fraction of the cost: a report draws a thousand of them). The sample count of a point is the
unit's evaluated count (metric ``n``; ``n_anchors`` for the video metrics pm-0 / pm-k), not the
dataset's size, so a ``--limit`` run gets the wider bars it deserves. Points without a known
count (derived means over several cells, rows of an external table) get no bar.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache

#: the level of the testbed's plots
CP_LEVEL = 0.995
_PER_ANCHOR = ("pm0", "pm10")


def clopper_pearson(acc_percent: float, n: int, level: float = CP_LEVEL) -> tuple[float, float]:
    """The exact binomial interval (percent) of an accuracy ``acc_percent`` over ``n`` samples;
    ``(nan, nan)`` when ``n`` is not a positive count or the accuracy is not finite."""
    if not n or n <= 0 or acc_percent is None or not math.isfinite(acc_percent):
        return math.nan, math.nan
    n = int(n)
    return _interval(min(n, max(0, int(round(acc_percent * n / 100.0)))), n, float(level))


@lru_cache(maxsize=4096)
def _interval(k: int, n: int, level: float) -> tuple[float, float]:
    from scipy.stats import beta

    alpha = 1.0 - level
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return 100.0 * low, 100.0 * high


def sample_counts(units: Iterable) -> dict[tuple[str, str], int]:
    """``(model, "dataset:metric") -> evaluated samples`` of the natural-shift eval units
    (:class:`~roz.report.context.UnitRow`; the last unit of a cell wins, as in the accuracy table)."""
    out: dict[tuple[str, str], int] = {}
    for u in units:
        if u.kind != "eval" or u.shift:
            continue
        for metric in ("top1", "top5", *_PER_ANCHOR):
            if metric not in u.metrics:
                continue
            n = u.metrics.get("n_anchors" if metric in _PER_ANCHOR else "n")
            if n is not None and math.isfinite(n) and n > 0:
                out[(u.model, f"{u.dataset}:{metric}")] = int(n)
    return out
