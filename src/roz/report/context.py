"""The report's shared context: everything read from the result store, built once per report.

All reading of unit records happens here: the store's records are read once
(:meth:`~roz.engine.store.ResultStore.records`); :func:`unit_row` turns one
:class:`~roz.engine.record.UnitRecord` into a :class:`UnitRow` with plain fields, and the
sections use only those fields and the tidy tables built here by :mod:`roz.engine.tables`
(the inputs of the metric functions: natural-shift accuracies, ImageNet-P results).

:class:`ReportContext` also holds the options of :func:`roz.report.build.build_report` and the
effective-robustness result several sections share (headline, figures, fits, protocol),
computed lazily and once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from roz.engine import tables
from roz.engine.record import UnitRecord, thaw
from roz.errors import RozError
from roz.metrics.corruption import load_normalizer
from roz.metrics.effective import (
    DEFAULT_LEVEL,
    DEFAULT_N_BOOT,
    DEFAULT_SEED,
    AccuracyTable,
    compute_effective_robustness,
)


def numeric(d: Mapping | None) -> dict[str, float]:
    """The numeric entries of a metrics mapping, as floats (booleans and strings dropped)."""
    return {k: float(v) for k, v in (d or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


@dataclass(frozen=True)
class UnitRow:
    """One finished unit, as the report reads it."""

    unit_id: str
    kind: str  # "eval" when the record has none
    model: str
    role: str  # "standard" when the record has none
    dataset: str
    shift: Mapping[str, Any]  # {} for no shift
    attack: Mapping[str, Any]  # {} for no attack
    metrics: Mapping[str, float]  # numeric metrics only
    env: Mapping[str, Any]
    protocol: Mapping[str, Any]
    root: str | None = None  # the dataset's root as recorded (its side files, e.g. cueconflict.json)

    @property
    def shift_name(self) -> str:
        return str(self.shift.get("name", ""))


def unit_row(u: UnitRecord) -> UnitRow:
    # plain dicts (copies): sections may serialise or reshape them
    return UnitRow(unit_id=u.unit_id, kind=u.kind, model=u.model.name, role=u.model.role, dataset=u.dataset.name,
                   shift=thaw(u.shift) or {}, attack=thaw(u.attack) or {}, metrics=u.numeric_metrics(),
                   env=thaw(u.env), protocol=thaw(u.protocol), root=u.dataset.root)


@dataclass(frozen=True)
class ReportOptions:
    """The options of :func:`roz.report.build.build_report` (documented there)."""

    baseline: Any = "run"
    baseline_models: Any = None
    shifts: Any = None
    protocol: str = "standard"
    testbed_columns: Any = None
    n_boot: int = DEFAULT_N_BOOT
    seed: int | None = DEFAULT_SEED
    level: float = DEFAULT_LEVEL
    pairs: Sequence[tuple[str, str]] | None = None
    ce_normalizer: Any = None
    ce_baseline: str | None = None
    formats: Sequence[str] = ("png", "svg")
    title: str | None = None
    fit: Any = "default"  # baseline fit per shift (roz.metrics.fits.fit_kinds)
    label_points: str = "run"  # which points the shift figures name: run | all | none (roz.report.figures)


def resolve_baseline(baseline, columns=None) -> AccuracyTable | None:
    """``"run"``/``None`` -> None (use the run); an AccuracyTable as is; else a testbed path/URL."""
    if baseline is None or (isinstance(baseline, str) and baseline == "run"):
        return None
    if isinstance(baseline, AccuracyTable):
        return baseline
    from roz.metrics.testbed import read_testbed

    return read_testbed(baseline, columns)


class ReportContext:
    """What every section reads: the store, its units (:class:`UnitRow`), the accuracy table,
    the baseline table, the metrics table, the natural-shift and ImageNet-P tables, model roles
    and the effective-robustness result."""

    def __init__(self, store, options: ReportOptions):
        self.store = store
        self.options = options
        self.root: Path = store.root
        self.meta: Mapping = store.meta
        records = store.records()
        self.units = [unit_row(u) for u in records]
        if not self.units:
            raise RozError(f"{store.root} holds no finished unit", hint="run `roz eval` / `roz run` first")
        # cheap, and may reject a bad option before any work
        self.ce_normalizer = load_normalizer(options.ce_normalizer)
        self.natural = tables.natural_table(records)  # natural-shift eval units (relative robustness)
        # natural accuracies + derived synthetic/adversarial shift axes (roz.engine.tables.accuracy_table)
        self.table = tables.accuracy_table(records, source=str(store.root))
        self.baseline_table = resolve_baseline(options.baseline, options.testbed_columns)
        self.metrics_table = tables.metrics_table(records)
        self.perturbations = tables.perturbation_table(records)  # ImageNet-P units
        roles = dict(self.table.roles)
        for u in self.units:
            roles.setdefault(u.model, u.role)
        self.roles: dict[str, str] = roles

    @cached_property
    def _effective(self):
        if not len(self.table.acc):
            return None, None
        o = self.options
        try:
            return compute_effective_robustness(self.table, baseline_table=self.baseline_table,
                                                baseline=o.baseline_models, shifts=o.shifts, protocol=o.protocol,
                                                n_boot=o.n_boot, seed=o.seed, level=o.level, fit=o.fit), None
        except RozError as e:
            return None, e.what + (f" ({e.hint})" if e.hint else "")

    @property
    def er(self):
        """The :class:`~roz.metrics.effective.EffectiveRobustness` result, or None."""
        return self._effective[0]

    @property
    def er_error(self) -> str | None:
        """Why there is no effective-robustness result (None when there is one, or no accuracy)."""
        return self._effective[1]

    @cached_property
    def headline(self):
        """The headline table (:func:`roz.report.tables.headline_table`), None without a fit."""
        from roz.report.tables import headline_table

        er = self.er
        return headline_table(er, self.table) if er is not None and er.fits else None

    def units_of(self, kind: str) -> list[UnitRow]:
        return [u for u in self.units if u.kind == kind]

    def intro_counts(self) -> tuple[Counter, int, int]:
        """(units per kind, number of models, number of datasets)."""
        return (Counter(u.kind for u in self.units), len({u.model for u in self.units}),
                len({u.dataset for u in self.units}))
