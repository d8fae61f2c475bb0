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

from roz.errors import RozError
from roz.registry import Registry


def key(dataset: str, metric: str = "top1") -> str:
    """Column key of an accuracy table: ``"dataset:metric"``."""
    return f"{dataset}:{metric}"


@dataclass(frozen=True)
class Shift:
    """One distribution shift: ``dataset``/``metric`` against ``reference``/``reference_metric``.

    ``restricted_reference`` is the class-restricted reference dataset (ImageNet val on the
    shift's classes) used under ``protocol='class-restricted'``. ``natural`` marks the shifts
    averaged into the headline effective robustness. ``name`` is the display key (defaults to
    the dataset, with ``:metric`` appended when the metric is not top1).
    """

    dataset: str
    reference: str = "imagenet-val"
    metric: str = "top1"
    reference_metric: str = "top1"
    restricted_reference: str | None = None
    natural: bool = True
    label: str = ""
    name: str = ""

    def __post_init__(self):
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
    )


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
    registered set's reference is among ``datasets`` and ``imagenet-val`` is not).

    Mapping keys may carry a metric (``"mini-vid:pm0"``); values may carry a reference metric.
    A known shift dataset keeps its default label / restricted reference / natural flag.
    """
    if spec is None:
        return list(default_shifts(datasets))
    if isinstance(spec, Mapping):
        known = {(s.dataset, s.metric): s for name in SHIFT_SETS for s in SHIFT_SETS.get(name)}
        out = []
        for k, ref in spec.items():
            ds, _, met = str(k).partition(":")
            rds, _, rmet = str(ref).partition(":")
            met, rmet = met or "top1", rmet or "top1"
            base = known.get((ds, met))
            if base is not None:
                out.append(Shift(ds, rds, met, rmet, base.restricted_reference, base.natural, base.label))
            else:
                out.append(Shift(ds, rds, met, rmet))
        return out
    shifts = list(spec)
    for s in shifts:
        if not isinstance(s, Shift):
            raise RozError(f"shift spec entries must be roz.metrics.effective.Shift, got {type(s).__name__}",
                           hint="pass a {shift_dataset: reference_dataset} mapping or a list of Shift")
    return shifts
