"""Results out: one or several run directories as the tables the field already uses.

* :func:`merged_metrics` — the metrics table of several runs (one row per unit, a ``run`` column
  when there is more than one run). The same unit id in two runs is kept once when its record
  has the same metrics, and is an error when they differ (a conflicting duplicate).
* :func:`wide_table` — models × datasets, like the ImageNet testbed's ``robustness_top1s.csv``:
  column ``model``, then one column per dataset (top-1, percent; ``<dataset>:pm0`` /
  ``<dataset>:pm10`` for the video metrics) and per derived shift axis of the run
  (``<dataset>~corruption-fog``, ``<dataset>~fgsm@1/255``, ...: :mod:`roz.engine.tables`).
  Read it back with ``read_testbed(path, columns={c: c for c in columns})``.
* :func:`testbed_table` — the run's measurements under the testbed's own column names
  (``val``, ``imagenetv2-matched-frequency-format-val``, ``imagenet-r``, ...: the inverse of
  :data:`roz.metrics.testbed.TESTBED_COLUMNS`; corruption units on ImageNet val as
  ``imagenet-c.<c>.<s>_in-memory``, units of the released ImageNet-C as ``..._on-disk``), so
  the rows join the testbed's published ones in any tool that reads that file, and
  ``read_testbed`` reads them with its default mapping. Only units evaluated on the whole
  dataset are exported (no ``limit``, one shard) unless ``include_subsets``: the testbed's
  numbers are full-dataset accuracies. Datasets the testbed does not have are left out.

Several runs: a cell (model, column) measured in two runs with different values is an error
(:class:`~roz.errors.StoreError` naming both runs); within one run the last unit wins (unit-id
order), as in the run's own tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from roz.engine import tables
from roz.engine.record import UnitRecord
from roz.engine.store import ResultStore
from roz.errors import StoreError
from roz.metrics.effective import key

#: metrics that make a column of the wide and testbed tables (the testbed's table has top-1 and pm-k)
WIDE_METRICS = ("top1", "pm0", "pm10")
FORMATS = ("table", "csv", "json", "wide", "testbed")


def _stores(run_dirs: Sequence[str | Path]) -> list[ResultStore]:
    if not run_dirs:
        raise StoreError("no run directory given", hint="pass one or more --out directories of roz eval / roz run")
    return [ResultStore(d, create=False) for d in run_dirs]


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def merged_records(run_dirs: Sequence[str | Path]) -> list[tuple[str, UnitRecord]]:
    """``(run directory, record)`` of every finished unit of every run; a unit id in several runs
    is kept once (first run) when its metrics agree, else :class:`StoreError`."""
    seen: dict[str, tuple[str, UnitRecord]] = {}
    out = []
    for store in _stores(run_dirs):
        for rec in store.records():
            prev = seen.get(rec.unit_id)
            if prev is None:
                seen[rec.unit_id] = (str(store.root), rec)
                out.append((str(store.root), rec))
                continue
            a, b = dict(prev[1].metrics), dict(rec.metrics)
            if a.keys() != b.keys() or not all(_same(a[k], b[k]) for k in a):
                raise StoreError(f"unit {rec.unit_id} is in {prev[0]} and {store.root} with different metrics",
                                 hint="merge runs that measured each unit once, or pass only one of them")
    return out


def merged_metrics(run_dirs: Sequence[str | Path], paper_order: bool = True):
    """The metrics table of every run (:func:`roz.engine.tables.metrics_table`), with a ``run``
    column (the run directory) when there are several runs."""
    pairs = merged_records(run_dirs)
    df = tables.metrics_table([r for _, r in pairs], paper_order)
    if len(run_dirs) > 1 and len(df):
        runs = {r.unit_id: run for run, r in pairs}
        df.insert(1, "run", df["unit_id"].map(runs))
    return df


def _merge_cells(frames: Sequence[tuple[str, "object"]]):
    """Model × column frames of several runs -> one; a cell two runs give differently is an error."""
    import pandas as pd

    merged, origin = pd.DataFrame(), {}
    for run, df in frames:
        for model in df.index:
            for col in df.columns:
                v = df.at[model, col]
                if pd.isna(v):
                    continue
                have = merged.at[model, col] if model in merged.index and col in merged.columns else math.nan
                if not pd.isna(have) and abs(float(have) - float(v)) > 1e-9:
                    raise StoreError(f"{model!r} / {col!r}: {have} in {origin[(model, col)]} but {v} in {run}",
                                     hint="conflicting duplicate across runs: pass only one of them")
                merged.loc[model, col] = float(v)
                origin[(model, col)] = run
    merged.index.name = "model"
    return merged


def _wide_one(records: Sequence[UnitRecord]):
    table = tables.accuracy_table(records)
    acc = table.acc
    keep = [k for k in acc.columns if k.rpartition(":")[2] in WIDE_METRICS]
    order = {u.dataset.name: u.dataset.paper_order for u in records}
    keep.sort(key=lambda k: (tables.AXIS_SEP in k, order.get(k.rpartition(":")[0], 1000), k))
    return acc[keep].rename(columns=lambda k: k.removesuffix(":top1"))


def wide_table(run_dirs: Sequence[str | Path]):
    """Models × datasets (module docstring): a ``model`` column, then one column per dataset/axis."""
    by_run: dict[str, list[UnitRecord]] = {}
    for run, rec in merged_records(run_dirs):
        by_run.setdefault(run, []).append(rec)
    merged = _merge_cells([(run, _wide_one(recs)) for run, recs in by_run.items()])
    return merged.reset_index()


def _testbed_column(rec: UnitRecord, metric: str) -> str | None:
    from roz.metrics.testbed import TESTBED_COLUMNS

    inverse = {v: k for k, v in TESTBED_COLUMNS.items()}
    ds = rec.dataset.registry_name or rec.dataset.name
    sh = rec.shift or {}
    if rec.kind != "eval" or metric != "top1" and sh:
        return None
    if sh.get("name") == "corruption" and ds == "imagenet-val":
        return f"imagenet-c.{sh.get('corruption')}.{sh.get('severity')}_in-memory"
    prot = rec.dataset.protocol or {}
    if not sh and ds == "imagenet-c" and prot.get("corruption") and metric == "top1":
        return f"imagenet-c.{prot['corruption']}.{prot.get('severity')}_on-disk"
    return None if sh else inverse.get(key(ds, metric))


def _whole_dataset(rec: UnitRecord) -> bool:
    prot = rec.protocol or {}
    return prot.get("limit") is None and list(prot.get("shard") or [0, 1]) == [0, 1]


def testbed_table(run_dirs: Sequence[str | Path], include_subsets: bool = False):
    """The runs' measurements in the testbed's CSV format (module docstring)."""
    import pandas as pd

    frames: dict[str, dict[str, dict[str, float]]] = {}
    for run, rec in merged_records(run_dirs):
        if not include_subsets and not _whole_dataset(rec):
            continue
        for metric in WIDE_METRICS:
            v = rec.metrics.get(metric)
            col = _testbed_column(rec, metric) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
            if col is not None:
                frames.setdefault(run, {}).setdefault(rec.model.name, {})[col] = float(v)
    merged = _merge_cells([(run, pd.DataFrame.from_dict(cells, orient="index")) for run, cells in frames.items()])
    merged = merged.reindex(columns=sorted(merged.columns))  # the testbed's file has its columns sorted
    merged.index.name = "model"
    return merged.reset_index()


def render(df, fmt: str) -> str:
    """``df`` as text: ``csv`` (and ``wide`` / ``testbed``, which are CSV files) or ``json`` (records)."""
    if fmt == "json":
        return df.to_json(orient="records", indent=1) + "\n"
    return df.to_csv(index=False)
