"""The result store: everything a run computed, on disk, written atomically.

Layout of a run directory::

    RUN_DIR/run.json                       # {"roz_version", "store_format", "created", "config"}
    RUN_DIR/units/<unit_id>.json           # one finished unit: identity, protocol, metrics, env
    RUN_DIR/samples/<unit_id>.parquet      # per-sample rows of that unit
    RUN_DIR/parts/<unit_id>/part-NNNNN.parquet   # partial progress of an unfinished unit

A unit JSON exists only once the unit finished (it is written last, atomically), so its presence
is the "done" marker that lets a re-run skip it. Parts let an interrupted unit resume mid-way.

Unit JSON keys (all units): ``unit_id``, ``kind`` ("eval" | "attack" | ...), ``model``
(``{"name", "spec", "role", "identity": {...}}``), ``dataset`` (``{"name", "root", "n", "protocol"}``),
``shift`` (``None`` or ``{"name", ...params}``), ``attack`` (``None`` or params), ``metrics``
(flat ``{name: float}``; percent for accuracies), ``protocol`` (every choice: head, templates,
resize/crop/interpolation, seed, ...), ``skipped_files``, ``env`` (library versions, device),
``timing``, ``roz_version``, ``store_format``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from roz import STORE_FORMAT, __version__
from roz.errors import StoreError


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    def w(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True, default=_json_default)
            f.write("\n")

    _atomic_write(Path(path), w)


def atomic_write_table(path: Path, table: pa.Table) -> None:
    _atomic_write(Path(path), lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def _json_default(o):
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (set, tuple)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


class ResultStore:
    """Read/write access to one run directory."""

    def __init__(self, run_dir: str | os.PathLike, create: bool = True, config: dict | None = None):
        self.root = Path(run_dir)
        meta_path = self.root / "run.json"
        if meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
            except json.JSONDecodeError as e:
                raise StoreError(f"{meta_path} is corrupt ({e})", hint="remove the run directory or pick another") from None
            fmt = meta.get("store_format")
            if fmt != STORE_FORMAT:
                raise StoreError(
                    f"run directory {self.root} was written by ROZ {meta.get('roz_version', '?')} "
                    f"(store format {fmt}); this ROZ {__version__} reads format {STORE_FORMAT}",
                    hint="use a new --out directory, or re-run with the ROZ version that wrote it",
                )
            self.meta = meta
        elif create:
            self.meta = {"roz_version": __version__, "store_format": STORE_FORMAT,
                         "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                         "config": config or {}}
            atomic_write_json(meta_path, self.meta)
        else:
            raise StoreError(f"{self.root} is not a ROZ run directory (no run.json)",
                             hint="pass the --out directory of a `roz eval` / `roz run`")

    # -- units --------------------------------------------------------------------------------
    def unit_path(self, unit_id: str) -> Path:
        return self.root / "units" / f"{unit_id}.json"

    def samples_path(self, unit_id: str) -> Path:
        return self.root / "samples" / f"{unit_id}.parquet"

    def parts_dir(self, unit_id: str) -> Path:
        return self.root / "parts" / unit_id

    def is_done(self, unit_id: str) -> bool:
        return self.unit_path(unit_id).is_file()

    def write_unit(self, record: dict, samples: pa.Table | None) -> None:
        uid = record["unit_id"]
        if samples is not None:
            atomic_write_table(self.samples_path(uid), samples)
        record = {**record, "roz_version": __version__, "store_format": STORE_FORMAT}
        atomic_write_json(self.unit_path(uid), record)  # written last: the done marker
        self.clear_parts(uid)

    def clear_unit(self, unit_id: str) -> None:
        self.unit_path(unit_id).unlink(missing_ok=True)
        self.samples_path(unit_id).unlink(missing_ok=True)
        self.clear_parts(unit_id)

    def units(self) -> list[dict]:
        out = []
        for p in sorted((self.root / "units").glob("*.json")):
            try:
                out.append(json.loads(p.read_text()))
            except json.JSONDecodeError as e:
                raise StoreError(f"unit record {p} is corrupt ({e})", hint="delete it; the unit re-runs") from None
        return out

    def unit(self, unit_id: str) -> dict:
        p = self.unit_path(unit_id)
        if not p.is_file():
            raise StoreError(f"no finished unit {unit_id} in {self.root}")
        return json.loads(p.read_text())

    def samples(self, unit_id: str):
        """Per-sample rows of a finished unit as a pandas DataFrame."""
        p = self.samples_path(unit_id)
        if not p.is_file():
            raise StoreError(f"no per-sample results for unit {unit_id} in {self.root}")
        return pq.read_table(p).to_pandas()

    # -- partial progress ---------------------------------------------------------------------
    def write_part(self, unit_id: str, part: int, table: pa.Table) -> None:
        atomic_write_table(self.parts_dir(unit_id) / f"part-{part:05d}.parquet", table)

    def read_parts(self, unit_id: str) -> dict[int, pa.Table]:
        d = self.parts_dir(unit_id)
        out = {}
        for p in sorted(d.glob("part-*.parquet")) if d.is_dir() else []:
            try:
                out[int(p.stem.split("-")[1])] = pq.read_table(p)
            except Exception:  # a torn write cannot happen (atomic), but a foreign file can
                p.unlink(missing_ok=True)
        return out

    def clear_parts(self, unit_id: str) -> None:
        d = self.parts_dir(unit_id)
        if d.is_dir():
            for p in d.iterdir():
                p.unlink(missing_ok=True)
            d.rmdir()

    # -- tables -------------------------------------------------------------------------------
    def metrics_table(self):
        """One row per finished unit: identity columns + one column per metric (pandas)."""
        import pandas as pd

        rows = []
        for u in self.units():
            shift = u.get("shift") or {}
            attack = u.get("attack") or {}
            rows.append({
                "unit_id": u["unit_id"],
                "kind": u.get("kind", "eval"),
                "model": u["model"]["name"],
                "role": u["model"].get("role", "standard"),
                "dataset": u["dataset"]["name"],
                "shift": _label(shift),
                "attack": (attack.get("name", "") + ("" if attack.get("eps_space", "pixel") == "pixel"
                                                      else f"[{attack['eps_space']}]")) if attack else "",
                **{k: v for k, v in u.get("metrics", {}).items() if isinstance(v, (int, float))},
            })
        return pd.DataFrame(rows)


def _label(d: dict) -> str:
    if not d:
        return ""
    name = d.get("name", "")
    rest = ",".join(f"{k}={v}" for k, v in sorted(d.items()) if k not in ("name", "version") and not isinstance(v, (dict, list)))
    return f"{name}({rest})" if rest else name


def rows_to_table(rows: Iterable[dict]) -> pa.Table:
    return pa.Table.from_pylist(list(rows))
