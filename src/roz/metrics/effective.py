"""Effective robustness (Taori et al. 2020): the baseline fit and each model's distance to it.

Definitions (accuracies in percent at the API, fractions inside the logit):

* **Baseline fit** of a shift: over a named set of baseline models (standard ImageNet models),
  ordinary least squares of ``logit(acc_shift)`` on ``logit(acc_ref)`` with accuracies as
  fractions: ``logit(y) = slope * logit(x) + intercept``. Reported with R² (of the fit in logit
  space) and a percentile bootstrap band over the baseline *models*. ImageNet-A by default uses
  the testbed's piecewise fit (two such lines split at ResNet-50's reference accuracy); the
  choice per shift is the ``fit`` option and is recorded (:mod:`roz.metrics.fits`).
* **Effective robustness** of a model f on a shift:
  ``ER(f) = acc_shift(f) - 100 * sigmoid(slope * logit(acc_ref(f)) + intercept)`` in percentage
  points; averaged over the natural shifts it is the headline number.

Bootstrap (the protocol, recorded in every result): ``n_boot`` (default 1000) replicates drawn
from ``numpy.random.default_rng(seed)`` (default seed 0). A replicate resamples the union of
baseline models with replacement — the *same* draw for every shift, so per-shift and averaged
intervals are consistent — and refits each shift by least squares weighted by the draw
multiplicities (identical to refitting on the resampled list). Intervals are percentiles
(``level`` default 0.95: the 2.5th and 97.5th). The ER interval reflects the uncertainty of the
baseline fit only (the evaluated model's own accuracies are taken as given); for finite-test-set
noise of an accuracy use the per-sample paired bootstrap in :mod:`roz.metrics.relative`.

Baseline cells that are missing (NaN) or at 0 % / 100 % (logit undefined) are dropped from that
shift's fit and listed in ``LinearFit.dropped``.

Shifts are configurable (:mod:`roz.metrics.shift_sets`): a :class:`Shift` names the shifted
dataset and metric and the reference dataset it is compared to; the ImageNet shifts are built in
and other worlds register their shift sets (ROZ-Mini: :func:`roz.world.register`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Callable, Sequence

import numpy as np

from roz.errors import RozError
from roz.metrics.shift_sets import (IMAGENET_SHIFTS, SHIFT_SETS, Shift, key, make_shifts,  # noqa: F401  (re-exported)
                                    register_shift_set)

from roz.metrics.fits import (DEFAULT_LEVEL, DEFAULT_N_BOOT, DEFAULT_SEED, FitKind, LinearFit,  # noqa: F401
                              PiecewiseFit, _bootstrap_counts, _interval, alternative_fit, effective_robustness,
                              expit, fit_baseline, fit_for_shift, fit_kinds, logit)


class Protocol(StrEnum):
    """Which accuracy a shift is compared to: the full reference, or the reference on its classes."""

    STANDARD = "standard"
    CLASS_RESTRICTED = "class-restricted"


PROTOCOLS = tuple(p.value for p in Protocol)  # plain strings (messages print them)

# -- accuracy tables -------------------------------------------------------------------------------


@dataclass
class AccuracyTable:
    """Accuracies in percent: one row per model, one column per ``"dataset:metric"`` key.

    ``acc`` is a pandas DataFrame (index: model name); ``roles`` maps model -> role
    ("standard", "zeroshot", "zeroshot-auto", anything else = other); ``n`` maps a column key
    to its number of test samples where known; ``source`` says where the numbers came from;
    ``derived`` maps a column key computed from several source columns (e.g. the ImageNet-C mean
    of a testbed table) to those columns (recorded in the effective-robustness protocol).
    """

    acc: Any
    roles: dict[str, str] = field(default_factory=dict)
    n: dict[str, int] = field(default_factory=dict)
    source: str = ""
    derived: dict[str, list[str]] = field(default_factory=dict)

    def value(self, model: str, k: str) -> float:
        if model not in self.acc.index or k not in self.acc.columns:
            return float("nan")
        v = self.acc.at[model, k]
        return float(v) if v is not None else float("nan")

    def role(self, model: str) -> str:
        return self.roles.get(model, "other")

    @property
    def models(self) -> list[str]:
        return list(self.acc.index)

    def has(self, k: str) -> bool:
        return k in self.acc.columns and bool(self.acc[k].notna().any())


ACCURACY_METRICS = ("top1", "top5", "pm0", "pm10")


def accuracy_table_from_rows(rows, metrics: Sequence[str] = ACCURACY_METRICS, source: str = "") -> AccuracyTable:
    """Natural-shift accuracies of a run from a tidy table, one row per eval unit without a synthetic
    shift (``ResultStore.natural_table()``): columns ``model``, ``role``, ``dataset``, ``dataset_n``
    (the dataset's size, may be missing) and one column per metric (NaN where a unit lacks it).
    Units with a shift and attack units belong elsewhere. Several rows for the same (model, key):
    the last one wins."""
    import pandas as pd

    acc_rows: dict[str, dict[str, float]] = {}
    roles, n = {}, {}  # model -> role; key -> the dataset's size
    for r in rows.to_dict("records") if len(rows) else []:
        m = r["model"]
        roles[m] = r.get("role") or "standard"
        for met in metrics:
            v = r.get(met)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and not pd.isna(v):
                acc_rows.setdefault(m, {})[key(r["dataset"], met)] = float(v)
                if r.get("dataset_n") and not pd.isna(r["dataset_n"]):
                    n[key(r["dataset"], met)] = int(r["dataset_n"])
    acc = pd.DataFrame.from_dict(acc_rows, orient="index").sort_index(axis=1) if acc_rows else pd.DataFrame()
    acc.index.name = "model"
    return AccuracyTable(acc=acc, roles=roles, n=n, source=source)


# -- baseline model sets --------------------------------------------------------------------------

#: Testbed rows classified "Standard training" in the ImageNet testbed's own model metadata
#: (Taori et al. 2020, modestyachts/imagenet-testbed ``plotting/model_types.py``): trained on
#: ImageNet-1k only, no extra data, no robustness intervention, not adversarially trained.
#: As in the testbed's line fits, the ``*_aws`` and ``*batch64*`` (subsampled re-trainings)
#: rows are left out. Not included: ViTs (ImageNet-21k pre-training), self-supervised
#: (SimCLR, SwAV, SimSiam, *_ssl/_swsl), zero-shot CLIP, early-stopped low-accuracy checkpoints.
TESTBED_STANDARD_MODELS: frozenset[str] = frozenset("""
FixPNASNet FixResNet50 FixResNet50_no_adaptation FixResNet50_v2 alexnet bninception cafferesnet101
densenet121 densenet161 densenet169 densenet201 dpn131 dpn68 dpn98 efficientnet-b0 efficientnet-b0-autoaug
efficientnet-b1 efficientnet-b1-autoaug efficientnet-b2 efficientnet-b2-autoaug efficientnet-b3
efficientnet-b3-autoaug efficientnet-b4 efficientnet-b4-autoaug efficientnet-b5 efficientnet-b5-autoaug
efficientnet-b5-randaug efficientnet-b6-autoaug efficientnet-b7-autoaug efficientnet-b7-randaug fbresnet152
googlenet/inceptionv1 inceptionresnetv2 inceptionv3 inceptionv4 mnasnet0_5 mnasnet1_0 mobilenet_v2
nasnetalarge nasnetamobile pnasnet5large polynet resnet101 resnet152 resnet18 resnet34 resnet50
resnet50-randomized_smoothing_noise_0.00 resnet50-vtab resnet50-vtab-exemplar resnet50-vtab-rotation
resnet50-vtab-semi-exemplar resnet50-vtab-semi-rotation resnext101_32x4d resnext101_32x8d resnext101_64x4d
resnext50_32x4d se_resnet101 se_resnet152 se_resnet50 se_resnext101_32x4d se_resnext50_32x4d senet154
shufflenet_v2_x0_5 shufflenet_v2_x1_0 squeezenet1_0 squeezenet1_1 vgg11 vgg11_bn vgg13 vgg13_bn vgg16
vgg16_bn vgg19 vgg19_bn wide_resnet101_2 wide_resnet50_2 xception
""".split())

BaselineSelector = str | Sequence[str] | Callable[[str, str], bool] | None


def select_baseline(table: AccuracyTable, selector: BaselineSelector = None) -> tuple[list[str], str]:
    """Baseline model names of ``table`` and a description of the rule that picked them.

    ``selector``: ``None``/``"role:standard"`` — models whose role is "standard";
    ``"testbed-standard"`` — :data:`TESTBED_STANDARD_MODELS`; ``"models:a,b,c"`` or a list of
    names — exactly those; a callable ``(name, role) -> bool``.
    """
    names = table.models
    if selector is None or selector == "role:standard":
        return [m for m in names if table.role(m) == "standard"], "role:standard (models whose role is 'standard')"
    if isinstance(selector, str) and selector.startswith("role:"):
        role = selector.split(":", 1)[1]
        return [m for m in names if table.role(m) == role], f"role:{role}"
    if selector == "testbed-standard":
        return [m for m in names if m in TESTBED_STANDARD_MODELS], \
            "testbed-standard (ImageNet testbed 'Standard training' models, no *_aws / *batch64*)"
    if isinstance(selector, str) and selector.startswith("models:"):
        want = [s.strip() for s in selector.split(":", 1)[1].split(",") if s.strip()]
        missing = [w for w in want if w not in table.acc.index]
        if missing:
            raise RozError(f"baseline models not found: {missing[:5]}", hint="check the names in the baseline table")
        return want, f"models:{','.join(want)}"
    if callable(selector):
        return [m for m in names if selector(m, table.role(m))], getattr(selector, "__name__", "callable")
    if isinstance(selector, str):
        raise RozError(f"unknown baseline selector {selector!r}",
                       hint="use role:standard, testbed-standard, models:a,b,c, a list of names or a callable")
    want = list(selector)
    missing = [w for w in want if w not in table.acc.index]
    if missing:
        raise RozError(f"baseline models not found: {missing[:5]}", hint="check the names in the baseline table")
    return want, f"list of {len(want)} models"


# -- the whole computation ------------------------------------------------------------------------


@dataclass
class EffectiveRobustness:
    """Result of :func:`compute_effective_robustness`.

    ``fits``: shift name -> :class:`LinearFit`; ``per_shift``: long DataFrame (model, role,
    shift, acc_ref, acc_shift, predicted, er, er_lo, er_hi); ``average``: per model the mean ER
    over the natural shifts it has (``er_avg``, ``n_shifts``) with its interval, and side by side
    the same over the synthetic and the adversarial shifts (``er_avg_synthetic`` ...,
    ``er_avg_adversarial`` ...; :data:`AVERAGE_KINDS`); ``protocol``: every choice.
    """

    fits: dict[str, LinearFit | PiecewiseFit]
    per_shift: Any
    average: Any
    shifts: list[Shift]
    protocol: dict
    skipped: dict[str, str]
    missing: dict[str, list[str]] = field(default_factory=dict)  # shift -> models with the shift but no reference
    alternatives: dict[str, Any] = field(default_factory=dict)  # shift -> the other fit kind (ImageNet-A), not used

    def er(self, model: str, shift: str) -> float:
        df = self.per_shift
        r = df[(df["model"] == model) & (df["shift"] == shift)]
        return float(r.er.iloc[0]) if len(r) else float("nan")

    def to_dict(self) -> dict:
        return {"protocol": self.protocol, "fits": {k: f.to_dict() for k, f in self.fits.items()},
                "alternative_fits": {k: f.to_dict() for k, f in self.alternatives.items()},
                "skipped": self.skipped, "missing_reference": self.missing,
                "per_shift": self.per_shift.to_dict(orient="records"),
                "average": self.average.to_dict(orient="records")}


def compute_effective_robustness(table: AccuracyTable, *, baseline_table: AccuracyTable | None = None,
                                 baseline: BaselineSelector = None, shifts=None, protocol: str = "standard",
                                 models: Sequence[str] | None = None, n_boot: int = DEFAULT_N_BOOT,
                                 seed: int | None = DEFAULT_SEED, level: float = DEFAULT_LEVEL,
                                 min_models: int = 3, fit: Any = "default") -> EffectiveRobustness:
    """Fit every shift on the baseline models and score every model of ``table``.

    ``baseline_table`` (default ``table``) holds the baseline models' accuracies — the same run,
    or an external table such as :func:`roz.metrics.testbed.read_testbed`. ``baseline`` selects
    the baseline models in it (see :func:`select_baseline`; default: role "standard").
    ``protocol='class-restricted'`` uses each shift's class-restricted reference (e.g.
    ``val-on-imagenet-r-classes``) for both the fit and the models; shifts without one keep
    the full reference. A shift is skipped (listed in ``skipped``) when the baseline table lacks
    its columns or fewer than ``min_models`` baseline models have both accuracies; shifts no
    evaluated model has are left out silently; models with a shift accuracy but no reference
    accuracy are listed in ``missing``. ``fit``: the baseline fit per shift (``"default"``,
    ``"linear"``, ``"piecewise-testbed"``, ``{shift: kind}`` or ``["SHIFT=KIND", ...]``; see
    :mod:`roz.metrics.fits`); the fit used for each shift is in ``protocol["fits"]``.
    """
    import pandas as pd

    if protocol not in PROTOCOLS:
        raise RozError(f"unknown protocol {protocol!r}", hint=f"use one of {PROTOCOLS}")
    btab = baseline_table if baseline_table is not None else table
    datasets = {c.split(":")[0] for c in list(table.acc.columns) + list(btab.acc.columns)}
    shifts = make_shifts(shifts, datasets=datasets)
    kinds = fit_kinds(fit)
    base_models, rule = select_baseline(btab, baseline)
    models = list(models) if models is not None else table.models
    counts = _bootstrap_counts(n_boot, len(base_models), seed) if n_boot and base_models else None

    fits: dict[str, LinearFit | PiecewiseFit] = {}
    used: dict[str, str] = {}
    alternatives: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    missing: dict[str, list[str]] = {}
    rows: list[dict] = []
    boot_er: dict[str, dict[str, np.ndarray]] = {}
    for s in shifts:
        xk, yk = s.x_key(protocol), s.y_key
        if not table.has(yk):
            continue  # no evaluated model has this shift: silently absent
        if not btab.has(xk) or not btab.has(yk):
            skipped[s.name] = f"baseline table lacks {xk if not btab.has(xk) else yk}"
            continue
        x = btab.acc[xk].reindex(base_models).to_numpy(dtype=float)
        y = btab.acc[yk].reindex(base_models).to_numpy(dtype=float)
        try:
            fit, note = fit_for_shift(kinds, s.name, x, y, base_models, x_key=xk, y_key=yk, n_boot=n_boot,
                                      seed=seed, level=level, counts=counts, min_models=min_models)
        except RozError as e:
            skipped[s.name] = e.what
            continue
        fits[s.name] = fit
        used[s.name] = fit.kind + (f" (default fell back to {note})" if note else "")
        alt = alternative_fit(fit, s.name, x, y, base_models, x_key=xk, y_key=yk, n_boot=n_boot, seed=seed,
                              level=level, counts=counts, min_models=min_models)
        if alt is not None:
            alternatives[s.name] = alt
        boot_er[s.name], lack = _score_shift(table, s, fit, models, level, rows, members=set(fit.models)
                                             if btab is table else set())
        if lack:
            missing[s.name] = lack
    per_shift = pd.DataFrame(rows, columns=PER_SHIFT_COLUMNS)
    groups = averaged_shifts(shifts, fits)
    average = _averages(table, models, groups, rows, boot_er, n_boot, level)
    proto = _protocol(protocol, kinds, used, rule, base_models, btab, table, n_boot, seed, level, min_models,
                      groups, shifts, fits)
    return EffectiveRobustness(fits=fits, per_shift=per_shift, average=average, shifts=shifts, protocol=proto,
                               skipped=skipped, missing=missing, alternatives=alternatives)


def _protocol(protocol, kinds, used, rule, base_models, btab, table, n_boot, seed, level, min_models, groups,
              shifts, fits) -> dict:
    """Every choice behind an effective-robustness result, recorded with it."""
    return {"definition": "ER = acc_shift - 100*sigmoid(slope*logit(acc_ref/100) + intercept), percentage points",
            "fit": "OLS of logit(acc_shift) on logit(acc_ref), accuracies as fractions",
            "fit_choice": dict(kinds), "fits": used,
            "protocol": protocol, "baseline_rule": rule, "baseline_models": list(base_models),
            "baseline_source": btab.source, "n_boot": int(n_boot), "seed": seed, "level": level,
            "bootstrap": "resample baseline models with replacement (same draw for all shifts), percentile interval",
            "natural_shifts": groups["natural"], "min_models": min_models,
            **({"synthetic_shifts": groups["synthetic"], "adversarial_shifts": groups["adversarial"]}
               if groups["synthetic"] or groups["adversarial"] else {}),
            "shifts": [{"name": s.name, "x": s.x_key(protocol), "y": s.y_key, "natural": s.natural, "kind": s.kind,
                        **({"definition": s.definition} if s.definition else {}),
                        **({"breakdown": True} if s.breakdown else {})} for s in shifts],
            "derived_columns": {k: v for t in (btab, table) for k, v in t.derived.items()
                                if any(k in (f.x_key, f.y_key) for f in fits.values())}}


PER_SHIFT_COLUMNS = ["model", "role", "shift", "label", "natural", "x_key", "y_key", "acc_ref", "acc_shift",
                     "predicted", "er", "er_lo", "er_hi", "baseline_member"]


def _score_shift(table: AccuracyTable, s: Shift, fit: LinearFit | PiecewiseFit, models: Sequence[str], level: float, rows: list,
                 members: set) -> tuple[dict[str, np.ndarray], list[str]]:
    """Append one row per model with both accuracies of shift ``s`` to ``rows``; return each
    model's bootstrap ER replicates and the models with the shift but no reference accuracy."""
    xk, yk = fit.x_key, fit.y_key
    xcol = table.acc[xk].to_dict() if xk in table.acc.columns else {}
    ycol = table.acc[yk].to_dict() if yk in table.acc.columns else {}
    ms = [m for m in models if np.isfinite(xcol.get(m, np.nan)) and np.isfinite(ycol.get(m, np.nan))]
    lack = [m for m in models if np.isfinite(ycol.get(m, np.nan)) and not np.isfinite(xcol.get(m, np.nan))]
    boot: dict[str, np.ndarray] = {}
    if not ms:
        return boot, lack
    xa = np.array([xcol[m] for m in ms], dtype=float)
    ya = np.array([ycol[m] for m in ms], dtype=float)
    pred = fit.predict(xa)
    er = ya - pred
    lo = hi = np.full(len(ms), np.nan)
    if fit.boot_slope is not None:
        b = ya[None, :] - fit.predict_boot(xa)  # [B, M]
        boot = {m: b[:, j] for j, m in enumerate(ms)}
        lo, hi = _interval(b, level)
    for j, m in enumerate(ms):
        rows.append({"model": m, "role": table.role(m), "shift": s.name, "label": s.label,
                     "natural": s.natural, "x_key": xk, "y_key": yk, "acc_ref": float(xa[j]),
                     "acc_shift": float(ya[j]), "predicted": float(pred[j]), "er": float(er[j]),
                     "er_lo": float(lo[j]), "er_hi": float(hi[j]), "baseline_member": m in members})
    return boot, lack


#: The averages of :func:`_averages`, side by side: natural (the headline, columns ``er_avg`` ...),
#: synthetic and adversarial (columns suffixed ``_synthetic`` / ``_adversarial``); never across kinds.
AVERAGE_KINDS = ("natural", "synthetic", "adversarial")
_AVG_FIELDS = ("er_avg", "er_avg_lo", "er_avg_hi", "n_shifts", "shifts", "complete")


def average_columns(kind: str) -> list[str]:
    """The columns of one kind's average in ``EffectiveRobustness.average``: natural ``er_avg,
    er_avg_lo, er_avg_hi, n_shifts, shifts, complete``; e.g. synthetic ``er_avg_synthetic,
    er_avg_synthetic_lo, er_avg_synthetic_hi, n_shifts_synthetic, shifts_synthetic, complete_synthetic``."""
    if kind == "natural":
        return list(_AVG_FIELDS)
    return [f.replace("er_avg", f"er_avg_{kind}") if f.startswith("er_avg") else f"{f}_{kind}" for f in _AVG_FIELDS]


def averaged_shifts(shifts: Sequence[Shift], fitted) -> dict[str, list[str]]:
    """Kind -> the fitted shifts averaged: natural ones flagged ``natural``; synthetic and
    adversarial ones that are not a breakdown of another shift."""
    return {kind: [s.name for s in shifts if s.name in fitted
                   and (s.natural if kind == "natural" else s.kind == kind and not s.breakdown)]
            for kind in AVERAGE_KINDS}


def _one_average(m: str, names: list[str], er_of: dict, boot_er: dict, n_boot: int, level: float) -> list:
    have = [sn for sn in names if (m, sn) in er_of]
    if not have:
        return [float("nan"), float("nan"), float("nan"), 0, "", False]
    lo = hi = float("nan")
    if n_boot and all(m in boot_er[sn] for sn in have):
        b = np.mean(np.stack([boot_er[sn][m] for sn in have]), axis=0)
        lo, hi = (float(v) for v in _interval(b, level))
    return [float(np.mean([er_of[(m, sn)] for sn in have])), lo, hi, len(have), ",".join(have),
            len(have) == len(names)]


def _averages(table: AccuracyTable, models: Sequence[str], groups: dict[str, list[str]], rows: list[dict],
              boot_er: dict[str, dict[str, np.ndarray]], n_boot: int, level: float):
    """Per model with at least one averaged shift: for each kind of ``groups`` (kind -> shift
    names), the mean ER over the shifts of that kind it has, with its bootstrap interval."""
    import pandas as pd

    avg_rows = []
    er_of = {(r["model"], r["shift"]): r["er"] for r in rows}
    for m in models:
        row: dict = {"model": m, "role": table.role(m)}
        for kind in AVERAGE_KINDS:
            row.update(zip(average_columns(kind), _one_average(m, groups.get(kind, []), er_of, boot_er, n_boot, level)))
        if any(row[average_columns(kind)[3]] for kind in AVERAGE_KINDS):
            avg_rows.append(row)
    return pd.DataFrame(avg_rows, columns=["model", "role"] + [c for k in AVERAGE_KINDS for c in average_columns(k)])
