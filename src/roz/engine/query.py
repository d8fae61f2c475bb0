"""SQL over run directories with DuckDB (``roz query RUN [RUN ...] "SQL"``).

Views (documented in docs/results.md):

* ``samples`` — every finished unit's per-sample rows, all units together (columns by name;
  a column a unit lacks is NULL): ``unit_id``, ``kind``, ``model``, ``role``, ``dataset``,
  ``shift``, ``attack`` (:data:`roz.engine.samples.IDENTITY_COLUMNS`), ``run`` (the run
  directory), and the unit's own columns — ``index``, ``path``, ``target``, ``target_name``,
  ``pred``, ``pred_name``, ``correct``, ``correct5``, ``top5``, ``top5_logits``, ``ok`` for eval
  units; ``clean_pred``, ``clean_correct``, ``adv_pred@<eps>``, ``robust@<eps>`` ... for attack
  units (quote names with ``@``: ``"robust@8/255"``).
* ``metrics`` — one row per unit: the metrics table (``unit_id``, ``kind``, ``model``, ``role``,
  ``dataset``, ``shift``, ``attack``, one column per metric), plus ``run``.
* ``wide`` — models × datasets (:func:`roz.engine.export.wide_table`).

Each samples file is checked against its record (size, sha256) before it is read, as
``ResultStore.samples`` does; the rows are read into memory (Arrow) and registered with DuckDB.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from roz.engine.store import ResultStore, sample_identity
from roz.errors import RozError, StoreError

VIEWS = ("samples", "metrics", "wide")


def samples_table(run_dirs: Sequence[str | Path]):
    """Every unit's per-sample rows of the runs as one Arrow table (``run`` and identity columns filled)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from roz.engine.export import merged_records

    parts = []
    stores = {}
    for run, rec in merged_records(run_dirs):
        store = stores.setdefault(run, ResultStore(run, create=False))
        path = store.samples_path(rec.unit_id)
        if rec.samples is None or not path.is_file():
            continue
        why = store.check_unit(rec.unit_id)
        if why:
            raise StoreError(f"unit {rec.unit_id} in {run}: {why}", hint="re-run the same command: the unit is recomputed")
        table = pq.read_table(path)
        for name, value in {**sample_identity(rec), "run": run}.items():
            if name not in table.column_names:  # runs written before the identity columns existed
                table = table.append_column(name, pa.array([value] * table.num_rows, pa.string()))
        parts.append(table)
    if not parts:
        return pa.table({"unit_id": pa.array([], pa.string()), "run": pa.array([], pa.string())})
    return pa.concat_tables(parts, promote_options="permissive")


def connect(run_dirs: Sequence[str | Path]):
    """An in-memory DuckDB connection with the views ``samples``, ``metrics`` and ``wide``."""
    import duckdb

    from roz.engine.export import merged_metrics, wide_table

    con = duckdb.connect()
    con.register("samples", samples_table(run_dirs))
    metrics = merged_metrics(run_dirs)
    if "run" not in metrics.columns and len(metrics):
        metrics.insert(1, "run", str(Path(run_dirs[0])))
    con.register("metrics", metrics)
    con.register("wide", wide_table(run_dirs))
    return con


def query(run_dirs: Sequence[str | Path], sql: str):
    """The result of ``sql`` over the runs' views (pandas); a bad query is a :class:`RozError`."""
    import duckdb

    con = connect(run_dirs)
    try:
        return con.execute(sql).df()
    except duckdb.Error as e:
        raise RozError(f"query failed: {str(e).splitlines()[0]}",
                       hint=f"the views are {', '.join(VIEWS)}; list a view's columns with "
                            "DESCRIBE samples (quote names with @ or /: \"robust@8/255\")") from None
    finally:
        con.close()
