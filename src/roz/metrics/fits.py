"""Baseline fits of effective robustness: the logit-linear fit and the testbed's piecewise fit.

* ``linear`` (:class:`LinearFit`, :func:`fit_baseline`): ordinary least squares of
  ``logit(acc_shift)`` on ``logit(acc_ref)`` over the baseline models, accuracies as fractions.
* ``piecewise-testbed`` (:class:`PiecewiseFit`, :func:`fit_piecewise`): the ImageNet testbed's
  ImageNet-A figure (Taori et al. 2020, modestyachts/imagenet-testbed
  ``plotting/paper_imagenet_a.py``) fits two such lines, one on the baseline models below a pivot
  of the reference axis and one on those above it, and draws each on its own side. The pivot is
  ResNet-50's accuracy on that axis: 91.86 % on ``val-on-imagenet-a-classes`` (the figure's
  default, class-restricted axis) and 76.13 % on ``imagenet-val`` (its ``no-subsample`` option).
  A model exactly at the pivot is in neither line's fit (the testbed's strict ``<`` / ``>``)
  and is predicted by the upper line (the testbed draws the upper band from ``x >= pivot``).

Which fit a shift uses (:func:`fit_kinds`): ``"default"`` is ``piecewise-testbed`` for
ImageNet-A -- the testbed's own ImageNet-A figure uses it -- when its reference axis has a testbed
pivot and each side has enough baseline models, else ``linear`` (the reason is recorded); every
other shift is ``linear``. ``"linear"`` / ``"piecewise-testbed"`` force a kind for all shifts, and
``{shift: kind}`` (or ``"SHIFT=KIND"`` strings) per shift; a forced piecewise fit that cannot be
made is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from roz.errors import RozError

DEFAULT_N_BOOT = 1000
DEFAULT_SEED = 0
DEFAULT_LEVEL = 0.95


class FitKind(StrEnum):
    LINEAR = "linear"
    PIECEWISE_TESTBED = "piecewise-testbed"


FIT_KINDS = tuple(k.value for k in FitKind)
DEFAULT = "default"
#: ResNet-50's accuracy on each reference axis the testbed splits ImageNet-A's fit at (percent).
TESTBED_PIVOTS = {"val-on-imagenet-a-classes": 91.86, "imagenet-val": 76.13}
#: Shifts whose default fit is the piecewise one (the testbed's ImageNet-A figure).
PIECEWISE_BY_DEFAULT = ("imagenet-a",)


def logit(p):
    """``log(p / (1 - p))`` of fractions (arrays ok); 0 -> -inf, 1 -> +inf."""
    p = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(p) - np.log1p(-p)


def expit(z):
    z = np.asarray(z, dtype=float)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def _interval(samples: np.ndarray, level: float, axis: int = 0) -> tuple[Any, Any]:
    a = (1.0 - level) / 2.0
    samples = np.asarray(samples, dtype=float)
    q = [100.0 * a, 100.0 * (1.0 - a)]
    with np.errstate(invalid="ignore"):
        if np.isnan(samples).any():  # degenerate replicates (e.g. all draws one model): ignored
            lo, hi = np.nanpercentile(samples, q, axis=axis)
        else:  # the fast path (nanpercentile loops over columns)
            lo, hi = np.percentile(samples, q, axis=axis)
    return lo, hi


@dataclass
class LinearFit:
    """The baseline fit of one shift, in logit space of fractions."""

    kind: ClassVar[str] = "linear"

    shift: str
    x_key: str
    y_key: str
    slope: float
    intercept: float
    r2: float
    models: tuple[str, ...]
    dropped: tuple[tuple[str, str], ...] = ()
    boot_slope: np.ndarray | None = None
    boot_intercept: np.ndarray | None = None
    level: float = DEFAULT_LEVEL
    n_boot: int = 0
    seed: int | None = None

    @property
    def n_models(self) -> int:
        return len(self.models)

    def predict(self, acc_ref):
        """Baseline-predicted shift accuracy (percent) at reference accuracy ``acc_ref`` (percent)."""
        return 100.0 * expit(self.slope * logit(np.asarray(acc_ref, float) / 100.0) + self.intercept)

    def predict_boot(self, acc_ref) -> np.ndarray:
        """``[n_boot, len(acc_ref)]`` predictions of every bootstrap replicate (percent)."""
        if self.boot_slope is None:
            raise RozError("this fit has no bootstrap replicates (n_boot=0)")
        z = logit(np.atleast_1d(np.asarray(acc_ref, float)) / 100.0)
        return 100.0 * expit(self.boot_slope[:, None] * z[None, :] + self.boot_intercept[:, None])

    def band(self, acc_ref, level: float | None = None):
        """Pointwise percentile band ``(lo, hi)`` of the fit at ``acc_ref`` (percent)."""
        return _interval(self.predict_boot(acc_ref), level or self.level)

    def ci(self, which: str = "slope", level: float | None = None) -> tuple[float, float]:
        arr = self.boot_slope if which == "slope" else self.boot_intercept
        if arr is None:
            return (float("nan"), float("nan"))
        lo, hi = _interval(arr, level or self.level)
        return float(lo), float(hi)

    def segments(self) -> list[tuple[str, "LinearFit"]]:
        """``[(where it applies, line)]``: one line over the whole axis."""
        return [("all", self)]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "shift": self.shift, "x": self.x_key, "y": self.y_key, "slope": self.slope,
                "intercept": self.intercept, "r2": self.r2, "n_models": self.n_models,
                "slope_ci": list(self.ci("slope")), "intercept_ci": list(self.ci("intercept")),
                "level": self.level, "n_boot": self.n_boot, "seed": self.seed,
                "models": list(self.models), "dropped": [list(d) for d in self.dropped]}


def _valid_points(models, x, y):
    """Split baseline points into usable ones and dropped (model, reason) pairs."""
    keep, dropped = [], []
    for i, m in enumerate(models):
        xi, yi = x[i], y[i]
        if not (np.isfinite(xi) and np.isfinite(yi)):
            dropped.append((m, "missing"))
        elif not (0.0 < xi < 100.0 and 0.0 < yi < 100.0):
            dropped.append((m, "accuracy at 0% or 100% (logit undefined)"))
        else:
            keep.append(i)
    return keep, dropped


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    mx, my = x.mean(), y.mean()
    xc, yc = x - mx, y - my
    sxx, sxy, syy = float(xc @ xc), float(xc @ yc), float(yc @ yc)
    if sxx <= 0:
        return float("nan"), float("nan"), float("nan")
    slope = sxy / sxx
    intercept = float(my - slope * mx)
    r2 = sxy * sxy / (sxx * syy) if syy > 0 else float("nan")
    return float(slope), intercept, float(r2)


def _weighted_ols(counts: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares per row of ``counts`` ([B, M] multiplicities) on points ``x``, ``y`` [M]."""
    mx0, my0 = x.mean(), y.mean()
    xc, yc = x - mx0, y - my0  # centre first: numerically stable moments
    w = counts.astype(float)
    sw = w.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = (w @ xc) / sw
        my = (w @ yc) / sw
        sxx = (w @ (xc * xc)) / sw - mx * mx
        sxy = (w @ (xc * yc)) / sw - mx * my
        slope = np.where(sxx > 1e-12 * max(1.0, float(xc @ xc) / len(x)), sxy / sxx, np.nan)
        intercept = (my + my0) - slope * (mx + mx0)
    return slope, intercept


def _bootstrap_counts(n_boot: int, n_models: int, seed: int | None) -> np.ndarray:
    """``[n_boot, n_models]`` multiplicities of resampling ``n_models`` models with replacement."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_models, size=(n_boot, n_models))
    counts = np.zeros((n_boot, n_models), dtype=np.int32)
    np.add.at(counts, (np.arange(n_boot)[:, None], idx), 1)
    return counts


def fit_baseline(acc_ref, acc_shift, models: Sequence[str] | None = None, *, shift: str = "",
                 x_key: str = "", y_key: str = "", n_boot: int = DEFAULT_N_BOOT, seed: int | None = DEFAULT_SEED,
                 level: float = DEFAULT_LEVEL, counts: np.ndarray | None = None, min_models: int = 3) -> LinearFit:
    """Fit ``logit(acc_shift/100) = slope * logit(acc_ref/100) + intercept`` over baseline models.

    ``acc_ref``/``acc_shift``: percent, one entry per baseline model (NaN = missing).
    ``counts``: optional precomputed bootstrap multiplicities ``[n_boot, len(models)]`` (used to
    share one model resampling across shifts); otherwise drawn from ``default_rng(seed)``.
    """
    x = np.asarray(acc_ref, dtype=float)
    y = np.asarray(acc_shift, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise RozError(f"fit_baseline: acc_ref and acc_shift must be 1-d of equal length, got {x.shape} and {y.shape}")
    models = list(models) if models is not None else [str(i) for i in range(len(x))]
    keep, dropped = _valid_points(models, x, y)
    if len(keep) < min_models:
        raise RozError(f"baseline fit for {shift or y_key or 'shift'}: only {len(keep)} usable baseline model(s), need {min_models}",
                       hint="evaluate more standard models on both datasets, or use an external baseline table (--baseline PATH)")
    lx, ly = logit(x[keep] / 100.0), logit(y[keep] / 100.0)
    slope, intercept, r2 = _ols(lx, ly)
    bs = bi = None
    if n_boot:
        if counts is None:
            c = _bootstrap_counts(n_boot, len(keep), seed)
        else:
            counts = np.asarray(counts)
            if counts.shape[1] != len(models):
                raise RozError(f"counts has {counts.shape[1]} columns for {len(models)} models")
            c = counts[:, keep]
        bs, bi = _weighted_ols(c, lx, ly)
    return LinearFit(shift=shift, x_key=x_key, y_key=y_key, slope=slope, intercept=intercept, r2=r2,
                     models=tuple(models[i] for i in keep), dropped=tuple(dropped), boot_slope=bs,
                     boot_intercept=bi, level=level, n_boot=int(n_boot), seed=seed)


def effective_robustness(acc_shift, acc_ref, fit: LinearFit):
    """``acc_shift - fit.predict(acc_ref)`` in percentage points (arrays ok)."""
    return np.asarray(acc_shift, float) - fit.predict(acc_ref)


# -- the piecewise fit -----------------------------------------------------------------------------


@dataclass
class PiecewiseFit:
    """Two logit-linear fits split at ``pivot`` (percent) on the reference axis."""

    kind: ClassVar[str] = FitKind.PIECEWISE_TESTBED.value
    shift: str
    x_key: str
    y_key: str
    pivot: float
    lower: LinearFit  # fitted on baseline models with acc_ref < pivot; predicts below the pivot
    upper: LinearFit  # fitted on those with acc_ref > pivot; predicts at and above it
    at_pivot: tuple[str, ...] = ()  # baseline models exactly at the pivot: in neither fit
    r2: float = float("nan")  # of both lines together, in logit space, over the fitted points

    @property
    def models(self) -> tuple[str, ...]:
        return self.lower.models + self.upper.models

    @property
    def n_models(self) -> int:
        return len(self.models)

    @property
    def dropped(self) -> tuple[tuple[str, str], ...]:
        return (self.lower.dropped + self.upper.dropped
                + tuple((m, f"at the pivot {self.pivot:g} (in neither line)") for m in self.at_pivot))

    @property
    def level(self) -> float:
        return self.lower.level

    @property
    def boot_slope(self):
        """Not None when the fit was bootstrapped (what plotting code tests before :meth:`band`)."""
        return self.lower.boot_slope

    def _side(self, acc_ref) -> np.ndarray:
        return np.asarray(acc_ref, float) >= self.pivot

    def predict(self, acc_ref):
        x = np.asarray(acc_ref, float)
        return np.where(self._side(x), self.upper.predict(x), self.lower.predict(x))

    def predict_boot(self, acc_ref) -> np.ndarray:
        x = np.atleast_1d(np.asarray(acc_ref, float))
        return np.where(self._side(x)[None, :], self.upper.predict_boot(x), self.lower.predict_boot(x))

    def band(self, acc_ref, level: float | None = None):
        return _interval(self.predict_boot(acc_ref), level or self.level)

    def segments(self) -> list[tuple[str, LinearFit]]:
        return [(f"< {self.pivot:g}", self.lower), (f">= {self.pivot:g}", self.upper)]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "shift": self.shift, "x": self.x_key, "y": self.y_key, "pivot": self.pivot,
                "r2": self.r2, "n_models": self.n_models, "models": list(self.models),
                "dropped": [list(d) for d in self.dropped],
                "lower": self.lower.to_dict(), "upper": self.upper.to_dict()}


def fit_piecewise(acc_ref, acc_shift, models: Sequence[str] | None = None, *, pivot: float, shift: str = "",
                  x_key: str = "", y_key: str = "", n_boot: int = DEFAULT_N_BOOT, seed: int | None = DEFAULT_SEED,
                  level: float = DEFAULT_LEVEL, counts: np.ndarray | None = None, min_models: int = 3) -> PiecewiseFit:
    """Fit :func:`fit_baseline` separately below and above ``pivot`` (percent on the reference axis).

    ``counts`` (``[n_boot, len(models)]``) is shared as in :func:`fit_baseline`: each line is
    refitted on its own side's models of the same draw, so both lines' replicates pair up.
    """
    x = np.asarray(acc_ref, dtype=float)
    y = np.asarray(acc_shift, dtype=float)
    models = list(models) if models is not None else [str(i) for i in range(len(x))]
    if counts is None and n_boot:
        counts = _bootstrap_counts(n_boot, len(models), seed)
    with np.errstate(invalid="ignore"):  # a missing reference goes below, where it is listed as dropped
        sides = {"lower": np.flatnonzero((x < pivot) | ~np.isfinite(x)), "upper": np.flatnonzero(x > pivot)}
    lines = {}
    for side, idx in sides.items():
        try:
            lines[side] = fit_baseline(x[idx], y[idx], [models[i] for i in idx], shift=shift, x_key=x_key,
                                       y_key=y_key, n_boot=n_boot, seed=seed, level=level,
                                       counts=None if counts is None else np.asarray(counts)[:, idx],
                                       min_models=min_models)
        except RozError as e:
            raise RozError(f"piecewise fit for {shift or y_key or 'shift'}: the line {'below' if side == 'lower' else 'above'} "
                           f"the pivot {pivot:g} % of {x_key or 'the reference'}: {e.what}",
                           hint="evaluate more baseline models on that side, or use fit=linear") from None
    at = tuple(models[i] for i in np.flatnonzero(x == pivot))
    fit = PiecewiseFit(shift=shift, x_key=x_key, y_key=y_key, pivot=float(pivot), lower=lines["lower"],
                       upper=lines["upper"], at_pivot=at)
    used = [models.index(m) for m in fit.models]
    ly, pred = logit(y[used] / 100.0), logit(fit.predict(x[used]) / 100.0)
    fit.r2 = float(1.0 - ((ly - pred) ** 2).sum() / ((ly - ly.mean()) ** 2).sum())
    return fit


# -- choosing a fit per shift ----------------------------------------------------------------------


def fit_kinds(spec: Any = DEFAULT) -> dict[str, str]:
    """Normalise a fit choice to ``{shift or "*": kind}``: ``"*"`` is the choice for every shift.

    ``spec``: ``None``/``"default"``; a kind (``"linear"``, ``"piecewise-testbed"``); a mapping
    ``{shift: kind}``; or a list of ``"KIND"`` / ``"SHIFT=KIND"`` strings (the CLI's ``--fit``).
    """
    if spec is None:
        spec = DEFAULT
    if isinstance(spec, str):
        spec = [spec]
    items = spec.items() if isinstance(spec, Mapping) else [
        tuple(s.split("=", 1)) if "=" in s else ("*", s) for s in (str(v) for v in spec)]
    out: dict[str, str] = {"*": DEFAULT}
    for shift, kind in items:
        kind = str(kind).strip()
        if kind not in (*FIT_KINDS, DEFAULT):
            raise RozError(f"unknown fit {kind!r}" + (f" for shift {shift!r}" if shift != "*" else ""),
                           hint=f"use one of {(DEFAULT, *FIT_KINDS)}, globally or as SHIFT=KIND")
        out[str(shift).strip()] = kind
    return out


def fit_for_shift(kinds: Mapping[str, str], shift: str, x, y, models, *, x_key: str, **kw):
    """The fit of one shift under the choice ``kinds`` (from :func:`fit_kinds`).

    Returns ``(fit, note)``; ``note`` says why the default fell back to the linear fit (else "").
    """
    kind = kinds.get(shift, kinds.get("*", DEFAULT))
    x_dataset = x_key.split(":")[0]
    pivot = TESTBED_PIVOTS.get(x_dataset)
    if kind == DEFAULT:
        if shift not in PIECEWISE_BY_DEFAULT:
            return fit_baseline(x, y, models, x_key=x_key, shift=shift, **kw), ""
        if pivot is None:
            return (fit_baseline(x, y, models, x_key=x_key, shift=shift, **kw),
                    f"linear: the reference {x_dataset} has no testbed pivot")
        try:
            return fit_piecewise(x, y, models, pivot=pivot, x_key=x_key, shift=shift, **kw), ""
        except RozError as e:
            return fit_baseline(x, y, models, x_key=x_key, shift=shift, **kw), f"linear: {e.what}"
    if kind == FitKind.LINEAR:
        return fit_baseline(x, y, models, x_key=x_key, shift=shift, **kw), ""
    if pivot is None:
        raise RozError(f"fit piecewise-testbed for {shift}: the reference {x_dataset} has no testbed pivot",
                       hint=f"the testbed's pivots are on {sorted(TESTBED_PIVOTS)}; use fit=linear for this shift")
    return fit_piecewise(x, y, models, pivot=pivot, x_key=x_key, shift=shift, **kw), ""


def alternative_fit(used, shift: str, x, y, models, *, x_key: str, **kw):
    """For ImageNet-A (:data:`PIECEWISE_BY_DEFAULT`), the other kind than ``used`` -- so the report
    can show the linear and the piecewise fit side by side; None for other shifts or when the
    other kind cannot be made (no pivot on this axis, too few models on a side)."""
    if shift not in PIECEWISE_BY_DEFAULT:
        return None
    other = FitKind.LINEAR if used.kind == FitKind.PIECEWISE_TESTBED else FitKind.PIECEWISE_TESTBED
    try:
        return fit_for_shift({"*": other.value}, shift, x, y, models, x_key=x_key, **kw)[0]
    except RozError:
        return None
