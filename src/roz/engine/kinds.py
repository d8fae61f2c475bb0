"""Unit kinds: one strategy per kind of work unit, in one registry.

A kind turns a prepared unit (model, dataset, label map, positions, store) into one
:class:`UnitResult`; the runner does everything around it (building the model and dataset,
timing, the record, the store, failures, locks). Every kind checkpoints through the same
:class:`roz.engine.parts.PartLedger`, so every kind resumes after an interruption.

Built-in kinds: ``eval`` (batched evaluation, optionally under an image shift), ``perturbation``
(ImageNet-P flip probability over frame sequences) and ``attack``. Further kinds (prompt search,
overlap) register with :func:`register_kind`.

A unit's kind: ``attack`` if it has an attack; else the kind claiming its shift's name
(``UnitKind.shifts``); else its dataset's ``DatasetInfo.unit_kind`` (``eval`` by default).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

import pyarrow as pa

from roz.errors import RozError
from roz.registry import Registry


@dataclass
class UnitContext:
    """What a kind gets: everything built, nothing computed yet."""

    unit: Any  # roz.engine.units.Unit
    model: Any  # RozModel (a subset head when head=subset)
    ds: Any  # EvalDataset
    label_map: Any  # LabelMap from the model's classes to the dataset's labels
    positions: list[int]  # dataset positions the unit covers (shard, limit draw)
    opts: Any  # RunOptions
    store: Any = None  # ResultStore for checkpoints (None: no checkpoints)
    log: Callable[[str], None] | None = None

    def ledger(self, part_size: int):
        from roz.engine.parts import PartLedger

        return PartLedger(self.store, self.unit.unit_id, self.positions, part_size,
                          paths=[self.ds.stored_path(i) for i in range(len(self.ds))], log=self.log)


@dataclass
class UnitResult:
    """What a kind returns: per-sample rows, metrics, and the protocol entries it chose."""

    table: pa.Table
    metrics: dict
    protocol: dict = field(default_factory=dict)  # merged into the record's "protocol"
    skipped: list[str] = field(default_factory=list)  # files left out (on_bad_image=skip)
    shift_params: dict | None = None  # the shift's resolved parameters, merged into the record's "shift"
    attack: dict | None = None  # the record's "attack" (attack protocol)


@dataclass(frozen=True)
class UnitKind:
    name: str
    module: str  # imported on first use; defines ``run(ctx: UnitContext) -> UnitResult``
    shifts: tuple[str, ...] = ()  # shift names whose units are of this kind
    description: str = ""

    def run(self, ctx: UnitContext) -> UnitResult:
        from roz.engine.samples import with_class_names

        result = importlib.import_module(self.module).run(ctx)
        # class names beside label indices, so the stored rows need no join (roz.engine.samples)
        names = getattr(getattr(ctx.ds, "labels", None), "names", None)
        result.table = with_class_names(result.table, names or ())
        return result


KINDS: Registry[UnitKind] = Registry("unit kind", RozError)


def register_kind(kind: UnitKind) -> None:
    KINDS.register(kind.name, kind)


def get_kind(name: str) -> UnitKind:
    return KINDS.get(name)


def dataset_kind(name: str) -> str:
    """The kind of a dataset's units (``DatasetInfo.unit_kind``); ``eval`` for unknown names (the
    dataset error is raised when the unit runs)."""
    from roz.datasets.registry import dataset_info

    try:
        return getattr(dataset_info(name), "unit_kind", "eval")
    except RozError:
        return "eval"


def kind_of(unit) -> str:
    if unit.attack:
        return "attack"
    shift = dict(unit.shift).get("name") if unit.shift else None
    for kind in KINDS.values():
        if shift is not None and shift in kind.shifts:
            return kind.name
    return dataset_kind(unit.dataset.name)


def skipped_paths(table: pa.Table) -> list[str]:
    """Paths of the rows with ``ok=False`` (unreadable files under on_bad_image=skip)."""
    if not table.num_rows or "ok" not in table.column_names:
        return []
    return [p for p, ok in zip(table.column("path").to_pylist(), table.column("ok").to_pylist()) if not ok]


register_kind(UnitKind("eval", "roz.engine.evaluate", description="batched evaluation, optionally under a shift"))
register_kind(UnitKind("perturbation", "roz.engine.sequence_unit", shifts=("perturbation",),
                       description="ImageNet-P frame sequences scored by flip probability"))
register_kind(UnitKind("attack", "roz.engine.attack_unit", description="white-box, transfer or score-based attack"))
