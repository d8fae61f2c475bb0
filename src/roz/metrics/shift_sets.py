"""Effective-robustness shifts: which shifted dataset is compared with which reference.

A :class:`Shift` names the shifted dataset and metric and the reference dataset it is compared
to (and, for masked datasets, the class-restricted reference used when
``protocol='class-restricted'``). Named *shift sets* live in :data:`SHIFT_SETS`: the paper's
ImageNet shifts (:data:`IMAGENET_SHIFTS`) are built in; other worlds register theirs with
:func:`register_shift_set` (ROZ-Mini: :func:`roz.world.register`). :func:`make_shifts` builds a
list from a plain ``{shift_dataset: reference_dataset}`` mapping or picks the default set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from roz.datasets.release_names import CORRUPTIONS, EXTRA_CORRUPTIONS
from roz.errors import RozError
from roz.registry import Registry

#: What a shift is: a natural distribution shift (new photos), a synthetic one (the reference
#: images transformed: corruptions, style transfer, greyscale) or an adversarial attack.
SHIFT_KINDS = ("natural", "synthetic", "adversarial")


def key(dataset: str, metric: str = "top1") -> str:
    """Column key of an accuracy table: ``"dataset:metric"``."""
    return f"{dataset}:{metric}"


@dataclass(frozen=True)
class Shift:
    """One distribution shift: ``dataset``/``metric`` against ``reference``/``reference_metric``.

    ``restricted_reference`` is the class-restricted reference dataset (ImageNet val on the
    shift's classes) used under ``protocol='class-restricted'``. ``natural`` marks the shifts
    averaged into the headline effective robustness (natural-kind shifts only). ``kind`` is one of
    :data:`SHIFT_KINDS`. ``name`` is the display key (defaults to the dataset, with ``:metric``
    appended when the metric is not top1). ``definition`` says how a derived column is made
    (recorded with every result). ``breakdown``: not averaged into its kind's mean (a breakdown
    of another shift, e.g. one corruption of the corruption mean, or a non-accuracy axis such as
    1 - flip rate).
    """

    dataset: str
    reference: str = "imagenet-val"
    metric: str = "top1"
    reference_metric: str = "top1"
    restricted_reference: str | None = None
    natural: bool = True
    label: str = ""
    name: str = ""
    kind: str = "natural"
    definition: str = ""
    breakdown: bool = False

    def __post_init__(self):
        if self.kind not in SHIFT_KINDS:
            raise RozError(f"shift {self.dataset!r}: kind {self.kind!r} is not one of {SHIFT_KINDS}")
        if self.natural and self.kind != "natural":
            raise RozError(f"shift {self.dataset!r}: only natural shifts are averaged into the headline ER",
                           hint="pass natural=False for synthetic and adversarial shifts")
        if not self.name:
            object.__setattr__(self, "name", self.dataset if self.metric == "top1" else f"{self.dataset}:{self.metric}")
        if not self.label:
            object.__setattr__(self, "label", self.name)

    @property
    def y_key(self) -> str:
        return key(self.dataset, self.metric)

    def x_key(self, protocol: str = "standard") -> str:
        if protocol == "class-restricted" and self.restricted_reference:
            return key(self.restricted_reference, self.reference_metric)
        return key(self.reference, self.reference_metric)


def _imagenet_shifts() -> tuple[Shift, ...]:
    ref = "imagenet-val"
    return (
        Shift("imagenetv2-matched-frequency", ref, label="ImageNetV2"),
        Shift("imagenet-sketch", ref, label="ImageNet-Sketch"),
        Shift("imagenet-r", ref, restricted_reference="val-on-imagenet-r-classes", label="ImageNet-R"),
        Shift("objectnet", ref, restricted_reference="val-on-objectnet-classes", label="ObjectNet"),
        Shift("imagenet-a", ref, restricted_reference="val-on-imagenet-a-classes", label="ImageNet-A"),
        Shift("imagenet-vid-robust", ref, metric="pm0", restricted_reference="val-on-imagenet-vid-robust-classes",
              label="ImageNet-Vid-Robust (pm-0)"),
        Shift("ytbb-robust", ref, metric="pm0", restricted_reference="val-on-ytbb-robust-classes",
              label="YTBB-Robust (pm-0)"),
        Shift("imagenetv2-threshold0.7", ref, natural=False, label="ImageNetV2 threshold-0.7"),
        Shift("imagenetv2-top-images", ref, natural=False, label="ImageNetV2 top-images"),
        Shift("imagenet-vid-robust", ref, metric="pm10", restricted_reference="val-on-imagenet-vid-robust-classes",
              natural=False, label="ImageNet-Vid-Robust (pm-10)"),
        Shift("ytbb-robust", ref, metric="pm10", restricted_reference="val-on-ytbb-robust-classes",
              natural=False, label="YTBB-Robust (pm-10)"),
        *_synthetic_shifts(ref),
        *_adversarial_shifts(ref),
    )


#: The ImageNet-C mean of a table: the mean over the 19 corruptions (15 benchmark + 4 extra) of
#: each corruption's mean over severities 1-5 (imported baseline tables say which columns feed it).
#: The shift is named ``imagenet-c``; its column is ``imagenet-c-mean`` because a run's own
#: ``imagenet-c`` column holds one released (corruption, severity) cell, not the mean.
IMAGENET_C_MEAN = "imagenet-c-mean"


def corruption_key(corruption: str) -> str:
    """Dataset key of one ImageNet-C corruption averaged over severities 1-5."""
    return f"imagenet-c-{corruption}"


def _synthetic_shifts(ref: str) -> tuple[Shift, ...]:
    mean = ("mean over the 19 ImageNet-C corruptions (15 benchmark + 4 extra) of each corruption's "
            "mean top-1 over severities 1-5")
    return (
        Shift("stylized-imagenet", ref, natural=False, kind="synthetic", label="Stylized-ImageNet"),
        Shift("greyscale", ref, natural=False, kind="synthetic", label="Greyscale ImageNet val"),
        Shift(IMAGENET_C_MEAN, ref, natural=False, kind="synthetic", label="ImageNet-C (mean)", definition=mean,
              name="imagenet-c"),
        *(Shift(corruption_key(c), ref, natural=False, kind="synthetic", label=f"ImageNet-C {c}",
                definition=f"{c}: mean top-1 over severities 1-5", breakdown=True)
          for c in CORRUPTIONS + EXTRA_CORRUPTIONS),
    )


#: Adversarial shifts as the ImageNet testbed measured them (PGD on ImageNet val): dataset key ->
#: (norm, eps in [0, 1] pixel units). :mod:`roz.metrics.testbed_pgd` holds their full settings.
ADVERSARIAL_SHIFTS: dict[str, tuple[str, float]] = {
    "pgd-linf-0.5/255": ("Linf", 0.5 / 255), "pgd-linf-2/255": ("Linf", 2 / 255),
    "pgd-l2-0.1": ("L2", 0.1), "pgd-l2-0.5": ("L2", 0.5),
}


def _adversarial_shifts(ref: str) -> tuple[Shift, ...]:
    return tuple(Shift(name, ref, natural=False, kind="adversarial", label=f"PGD {norm} eps={name.rsplit('-', 1)[1]}",
                       definition="untargeted PGD, 100 steps (the ImageNet testbed's setting; see docs/metrics.md)")
                 for name, (norm, _eps) in ADVERSARIAL_SHIFTS.items())


#: The paper's shifts, in the paper's order: V2, Sketch, R, ObjectNet, A, then the video
#: datasets (pm-0 vs ImageNet val top-1). Natural = averaged into the headline ER.
IMAGENET_SHIFTS: tuple[Shift, ...] = _imagenet_shifts()

DEFAULT_SHIFT_SET = "imagenet"

#: Shift sets by name. Each set compares its shifts with one reference dataset; ``make_shifts``
#: picks a non-default set when its reference is among the run's datasets and ImageNet val is not.
SHIFT_SETS: Registry[tuple[Shift, ...]] = Registry("shift set", RozError)


def register_shift_set(name: str, shifts: Sequence[Shift]) -> None:
    shifts = tuple(shifts)
    if not shifts or len({s.reference for s in shifts}) != 1:
        raise RozError(f"shift set {name!r} must be non-empty with one reference dataset")
    SHIFT_SETS.register(name, shifts)


SHIFT_SETS.register(DEFAULT_SHIFT_SET, IMAGENET_SHIFTS)


def default_shifts(datasets: Iterable[str]) -> tuple[Shift, ...]:
    """The registered shift set for a run over ``datasets`` (see :data:`SHIFT_SETS`)."""
    ds = set(datasets)
    default = SHIFT_SETS.get(DEFAULT_SHIFT_SET)
    if default[0].reference not in ds:
        for name in SHIFT_SETS:
            shifts = SHIFT_SETS.get(name)
            if name != DEFAULT_SHIFT_SET and shifts[0].reference in ds:
                return shifts
    return default


def make_shifts(spec: Mapping[str, str] | Sequence[Shift] | None = None, *, datasets: Iterable[str] = ()) -> list[Shift]:
    """Shifts from a ``{shift_dataset: reference_dataset}`` mapping, a list of :class:`Shift`,
    or ``None`` (:func:`default_shifts` of ``datasets``: the ImageNet shifts unless another
    registered set's reference is among ``datasets`` and ``imagenet-val`` is not; then the
    :func:`derived_shift` of every derived ``<reference>~<axis>`` dataset among ``datasets``).

    Mapping keys may carry a metric (``"mini-vid:pm0"``); values may carry a reference metric.
    A known shift dataset keeps its default label / restricted reference / natural flag.
    """
    datasets = list(datasets)
    if spec is None:
        shifts = list(default_shifts(datasets))
        names = {s.name for s in shifts}
        return shifts + [d for d in map(derived_shift, sorted(set(datasets))) if d is not None and d.name not in names]
    if isinstance(spec, Mapping):
        known = {(s.dataset, s.metric): s for name in SHIFT_SETS for s in SHIFT_SETS.get(name)}
        out = []
        for k, ref in spec.items():
            ds, _, met = str(k).partition(":")
            rds, _, rmet = str(ref).partition(":")
            derived = derived_shift(ds)
            met, rmet = met or (derived.metric if derived else "top1"), rmet or "top1"
            base = known.get((ds, met)) or derived
            if base is not None:
                out.append(Shift(ds, rds, met, rmet, base.restricted_reference, base.natural, base.label,
                                 kind=base.kind, definition=base.definition, breakdown=base.breakdown,
                                 name=base.name if base is derived and met == base.metric else ""))
            else:
                out.append(Shift(ds, rds, met, rmet))
        return out
    shifts = list(spec)
    for s in shifts:
        if not isinstance(s, Shift):
            raise RozError(f"shift spec entries must be roz.metrics.effective.Shift, got {type(s).__name__}",
                           hint="pass a {shift_dataset: reference_dataset} mapping or a list of Shift")
    return shifts


# -- shift axes a run measures itself (roz.engine.tables.shift_axis_columns) ------------------------

#: Separates a derived dataset key from its reference dataset: ``<reference>~<axis>``. Axes:
#: ``corruption-mean``, ``corruption-<name>``, ``severity-<s>``, ``typographic`` (``typographic#<i>``
#: when the run holds several typographic settings on the reference), ``<attack>@<eps>``,
#: ``flip-mean`` and ``flip-<perturbation>``. No colon (a column key is ``dataset:metric``).
AXIS_SEP = "~"

#: The metric of the ImageNet-P axes ``<ref>~flip-...``: 100 * (1 - flip probability), the percent
#: of compared frame pairs whose prediction does not flip. Flip rate is error-like (lower is
#: better); its complement is plotted and fitted like an accuracy (logit axes against the
#: reference's clean top-1), so ER > 0 means more stable than the baselines predict.
FLIP_METRIC = "1-fr"

_COMPLETE = "; NaN for a model that lacks any cell another model of the run has on the reference"


def derived_shift(dataset: str) -> Shift | None:
    """The :class:`Shift` of a derived dataset ``<reference>~<axis>`` (made by
    :func:`roz.engine.tables.shift_axis_columns`), compared with the reference's clean top-1;
    None for any other dataset. Never natural; corruption and severity parts and the flip-rate
    axes (:data:`FLIP_METRIC`) are breakdowns."""
    ref, sep, axis = dataset.partition(AXIS_SEP)
    if not sep or not ref or not axis:
        return None
    kind, breakdown = "synthetic", False
    if axis == "corruption-mean":
        label, what = f"{ref} corruptions (mean)", "mean top-1 over every (corruption, severity) cell the run has"
    elif axis.startswith("corruption-"):
        c = axis.removeprefix("corruption-")
        label, what, breakdown = f"{ref} {c}", f"corruption {c}: mean top-1 over the run's severities", True
    elif axis.startswith("severity-"):
        sev = axis.removeprefix("severity-")
        label, what, breakdown = f"{ref} severity {sev}", f"severity {sev}: mean top-1 over the run's corruptions", True
    elif axis.startswith("typographic"):
        label, what = f"{ref} {axis}", "top-1 on the reference images with a class name written on them"
    elif axis.startswith("flip-"):
        return _flip_shift(dataset, ref, axis.removeprefix("flip-"))
    elif "@" in axis:
        attack, _, eps = axis.rpartition("@")
        kind, label = "adversarial", f"{ref} {attack} eps={eps}"
        what = (f"robust accuracy (%) under attack {attack} at eps {eps} (on the attack unit's samples; "
                "x axis: the reference's clean top-1 from its eval unit)")
    else:
        return None
    if kind == "synthetic" and not axis.startswith("typographic"):
        what += _COMPLETE
    return Shift(dataset, ref, natural=False, kind=kind, label=label, breakdown=breakdown,
                 definition=f"{what} on {ref}")


def _flip_shift(dataset: str, ref: str, perturbation: str) -> Shift:
    """An ImageNet-P axis (metric :data:`FLIP_METRIC`). Not averaged into the synthetic mean
    (``breakdown``): it measures the stability of predictions, not accuracy, so its ER is in other
    units than the accuracy ERs of that mean."""
    if perturbation == "mean":
        label = f"{ref} perturbations: 1 - mean flip rate"
        what = "every (perturbation, difficulty) cell the run has (1 - the un-normalised mean flip rate)"
    else:
        label = f"{ref} {perturbation}: 1 - flip rate"
        what = f"perturbation {perturbation}, the run's difficulties"
    return Shift(dataset, ref, metric=FLIP_METRIC, natural=False, kind="synthetic", label=label, name=dataset,
                 breakdown=True, definition=f"100 * (1 - ImageNet-P flip probability) over {what}{_COMPLETE}, "
                 f"on {ref}; not averaged with the accuracy axes")
