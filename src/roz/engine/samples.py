"""Self-describing per-sample rows: identity and class-name columns added to a unit's rows.

Every unit's per-sample Parquet file (``RUN_DIR/samples/<unit_id>.parquet``) carries, besides
the columns its kind writes (``index``, ``path``, ``target``, ``pred``, ``correct``, ...):

* identity columns (:data:`IDENTITY_COLUMNS`, strings, the same value on every row):
  ``unit_id``, ``kind``, ``model``, ``role``, ``dataset``, ``shift`` and ``attack`` — the same
  labels as the metrics table (``shift``: ``name(k=v,...)``, ``attack``: the attack's name; ""
  for none). Added by the store when it writes the unit (:func:`with_identity` with
  :func:`roz.engine.store.sample_identity`).
* class-name columns (:data:`NAME_COLUMNS`): ``target_name``, ``pred_name`` (eval and
  perturbation units), ``clean_pred_name`` and ``adv_pred_name@<eps>`` (attack units),
  ``written_name`` (typographic units): the dataset's label names of those label indices. Added
  when the unit finishes (:func:`with_class_names`, called by the unit kinds' dispatcher).

So a file can be queried on its own (DuckDB, pandas) without joining the unit JSON. The columns
are additive: a column a kind already writes is never replaced. Runs written before these
columns existed still read: :func:`fill_identity` adds the identity columns from the unit's
record when rows are read through the store (class names cannot be recovered there: the dataset
is not at hand).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

#: Identity columns of every per-sample row (strings).
IDENTITY_COLUMNS = ("unit_id", "kind", "model", "role", "dataset", "shift", "attack")
#: label-index column -> its class-name column (``adv_pred@<eps>`` -> ``adv_pred_name@<eps>`` too).
NAME_COLUMNS = {"target": "target_name", "pred": "pred_name", "clean_pred": "clean_pred_name",
                "written_label": "written_name"}


def with_identity(table: pa.Table, values: dict[str, str]) -> pa.Table:
    """``table`` with the identity columns it lacks appended (constant strings; ``values``: the
    unit's, :func:`roz.engine.store.sample_identity`)."""
    if table is None or table.num_rows == 0:
        return table
    for name, value in values.items():
        if name not in table.column_names:
            table = table.append_column(name, pa.array([value] * table.num_rows, pa.string()))
    return table


def _name_column(name: str) -> str | None:
    if name in NAME_COLUMNS:
        return NAME_COLUMNS[name]
    if name.startswith("adv_pred@"):
        return "adv_pred_name@" + name.removeprefix("adv_pred@")
    return None


def with_class_names(table: pa.Table, names: Sequence[str]) -> pa.Table:
    """``table`` with a class-name column after each label-index column it has (``None`` where
    the index is missing or outside ``names``)."""
    if table is None or table.num_rows == 0 or not names:
        return table
    names = [str(n) for n in names]
    for col in list(table.column_names):
        out = _name_column(col)
        if out is None or out in table.column_names or not pa.types.is_integer(table.schema.field(col).type):
            continue
        idx = table.column(col).to_pylist()
        vals = [names[i] if i is not None and 0 <= i < len(names) else None for i in idx]
        table = table.append_column(out, pa.array(vals, pa.string()))
    return table


def fill_identity(frame, values: dict[str, str]):
    """A pandas frame of a unit's rows with the identity columns it lacks (older runs) filled in."""
    for name, value in values.items():
        if name not in frame.columns:
            frame[name] = value
    return frame
