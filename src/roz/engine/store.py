"""The result store: everything a run computed, on disk, written atomically.

Layout of a run directory::

    RUN_DIR/run.json                       # {"roz_version", "store_format", "created", "config", "invocations"}
    RUN_DIR/units/<unit_id>.json           # one finished unit: identity, protocol, metrics, env, samples check
    RUN_DIR/samples/<unit_id>.parquet      # per-sample rows of that unit
    RUN_DIR/parts/<unit_id>/part-<start>-<end>.parquet   # partial progress of an unfinished unit
    RUN_DIR/failed/<unit_id>.json          # the last failure of a unit not finished (error, traceback)
    RUN_DIR/locks/<unit_id>.lock           # held while a process computes the unit
    RUN_DIR/<name>.json                    # named run-level artefacts (``write_artifact``), e.g. overlap.json

A unit JSON exists only once the unit finished (it is written last, atomically), so its presence
is the "done" marker that lets a re-run skip it — provided it parses, names its unit, and its
samples file still has the recorded sha256 and row count (``check_unit``). A unit that fails any
of these checks is not done: the re-run recomputes it. Parts let an interrupted unit resume
mid-way (:mod:`roz.engine.parts`).

``run.json``: ``config`` is the configuration the directory was created with; ``invocations`` lists
every run on it (``{"time", "roz_version", "config"}``), oldest first.

Unit JSON keys (all units): ``unit_id``, ``kind`` ("eval" | "perturbation" | "attack" | ...), ``model``
(``{"name", "spec", "role", "identity": {...}}``), ``dataset`` (``{"name", "root", "n", "protocol"}``),
``shift`` (``None`` or ``{"name", ...params}``), ``attack`` (``None`` or params), ``metrics``
(flat ``{name: float}``; percent for accuracies), ``protocol`` (every choice: head, templates,
resize/crop/interpolation, seed, covered positions, ...), ``skipped_files``, ``env`` (library
versions, device), ``timing``, ``samples`` (``{"file", "rows", "bytes", "sha256"}``),
``roz_version``, ``store_format``. The store is the only reader and writer of these files: it
takes and gives :class:`~roz.engine.record.UnitRecord` (``write_unit``, ``records``, ``record``).

Files are created with the user's umask (like any other file the user writes), never 0600.

A run directory may also be a URL (``s3://bucket/run``, ``gs://...``, ``file:///...``: any fsspec
filesystem): the store then works in a local working copy and publishes every commit to the
remote, samples before records (:mod:`roz.engine.remote`, :mod:`roz.engine.mirror`).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import traceback as _traceback
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq

from roz import STORE_FORMAT, __version__
from roz.engine import tables
from roz.engine.atomic import _atomic_write, _json_default, _read_json, atomic_write_json, atomic_write_table  # noqa: F401 (re-exported)
from roz.engine.record import UnitRecord
from roz.engine.samples import fill_identity, with_identity
from roz.engine.remote import Remote, is_url, working_copy
from roz.errors import RozError, StoreError
from roz.files import sha256_file


_ARTIFACT = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_PART = re.compile(r"^part-(\d+)-(\d+)$")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def sample_identity(record: UnitRecord) -> dict[str, str]:
    """The identity columns of a unit's per-sample rows (:data:`roz.engine.samples.IDENTITY_COLUMNS`):
    the same labels as the metrics table."""
    return {"unit_id": record.unit_id, "kind": record.kind, "model": record.model.name,
            "role": record.model.role or "", "dataset": record.dataset.name,
            "shift": tables.shift_label(record.shift), "attack": tables.attack_label(record.attack)}


class ResultStore:
    """Read/write access to one run directory."""

    def __init__(self, run_dir: str | os.PathLike, create: bool = True, config: dict | None = None,
                 sync: bool = True):
        """``run_dir``: a path, or a URL (see the module doc); ``sync`` (URL only): mirror the remote's
        finished units into the working copy now (a Ray worker, which computes given units, skips it)."""
        self.remote = Remote(run_dir) if is_url(run_dir) else None
        self.location = self.remote.url if self.remote else str(run_dir)  # what to give another process
        self.root = working_copy(self.remote.url) if self.remote else Path(run_dir)
        meta_path = self.root / "run.json"
        if self.remote:
            from roz.engine import mirror

            with self.lock("run.json"):
                mirror.pull_meta(self)
        if not meta_path.exists() and not create:
            raise StoreError(f"{self.location} is not a ROZ run directory (no run.json)",
                             hint="pass the --out directory of a `roz eval` / `roz run`")
        if not meta_path.exists():
            with self.lock("run.json"):
                if not meta_path.exists():
                    atomic_write_json(meta_path, {"roz_version": __version__, "store_format": STORE_FORMAT,
                                                  "created": _now(), "config": config or {}, "invocations": []})
                    self._publish("run.json")
        self.meta = self._read_meta()
        self._verified: dict[str, tuple] = {}  # unit_id -> (size, mtime_ns, sha256) hashed by this process
        self._synced = False
        if sync:
            self.sync()

    def sync(self) -> None:
        """URL only: mirror the remote's finished units, failures and artefacts into the working copy
        (e.g. after Ray workers on other nodes published theirs). A store opened with ``sync=False``
        checks each unit against the remote instead (its working copy may be stale)."""
        if self.remote:
            from roz.engine import mirror

            mirror.pull(self)
            self._synced = True

    def _publish(self, rel: str) -> None:
        if self.remote:
            self.remote.put(self.root / rel, rel)

    def _read_meta(self) -> dict:
        meta_path = self.root / "run.json"
        meta, why = _read_json(meta_path)
        if why or not isinstance(meta, dict):
            raise StoreError(f"{meta_path} is corrupt ({why or 'not a JSON object'})",
                             hint="remove the run directory or pick another")
        fmt = meta.get("store_format")
        if fmt != STORE_FORMAT:
            raise StoreError(
                f"run directory {self.root} was written by ROZ {meta.get('roz_version', '?')} "
                f"(store format {fmt}); this ROZ {__version__} reads format {STORE_FORMAT}",
                hint="use a new --out directory, or re-run with the ROZ version that wrote it",
            )
        return meta

    def add_invocation(self, config: dict | None) -> None:
        """Record one run on this directory (its configuration) in ``run.json``'s history."""
        with self.lock("run.json"):
            if self.remote:  # another machine may have added one since
                from roz.engine import mirror

                mirror.pull_meta(self)
            meta = self._read_meta()
            meta.setdefault("invocations", []).append({"time": _now(), "roz_version": __version__,
                                                       "config": config or {}})
            atomic_write_json(self.root / "run.json", meta)
            self._publish("run.json")
            self.meta = meta

    def lock(self, name: str):
        """An inter-process lock on ``name`` in this run directory (``with store.lock(uid): ...``).
        ``filelock`` (fcntl.flock on POSIX): the OS releases it when its holder dies, so a killed
        run never leaves a unit locked."""
        from filelock import FileLock

        path = self.root / "locks" / f"{name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(path))

    # -- units --------------------------------------------------------------------------------
    def unit_path(self, unit_id: str) -> Path:
        return self.root / "units" / f"{unit_id}.json"

    def samples_path(self, unit_id: str) -> Path:
        return self.root / "samples" / f"{unit_id}.parquet"

    def parts_dir(self, unit_id: str) -> Path:
        return self.root / "parts" / unit_id

    def check_unit(self, unit_id: str) -> str | None:
        """``None`` if the unit is finished and intact, else why it is not done."""
        if self.remote and not self._synced:
            from roz.engine import mirror

            mirror.pull_unit(self, unit_id)
        return self.check_local(unit_id)

    def check_local(self, unit_id: str) -> str | None:
        """``check_unit`` on this directory (the working copy of a URL) only."""
        rec, why = _read_json(self.unit_path(unit_id))
        if why == "missing":
            return "not computed"
        if why or not isinstance(rec, dict):
            return f"its record {self.unit_path(unit_id)} is {why or 'not a JSON object'}"
        if rec.get("unit_id") != unit_id:
            return f"its record {self.unit_path(unit_id)} names another unit ({rec.get('unit_id')!r})"
        if "samples" in rec and rec["samples"] is None:  # a unit written without per-sample rows
            return None
        return self._check_samples(unit_id, rec.get("samples"))

    def _check_samples(self, unit_id: str, want: dict | None) -> str | None:
        p = self.samples_path(unit_id)
        if want is None:  # written before samples were checksummed: the Parquet footer must read
            if not p.exists():
                return None  # nothing was recorded about per-sample rows
            try:
                pq.read_metadata(p)
            except Exception as e:  # noqa: BLE001 -- any unreadable file means "not done"
                return f"its samples file {p} is unreadable ({e})"
            return None
        if not p.is_file():
            return f"its samples file {p} is missing"
        st = p.stat()
        if st.st_size != want.get("bytes"):
            return f"its samples file {p} has {st.st_size} bytes, the record says {want.get('bytes')} (truncated or replaced)"
        key = (st.st_size, st.st_mtime_ns, want.get("sha256"))
        if self._verified.get(unit_id) == key:  # hashed by this process and untouched since
            return None
        if sha256_file(p) != want.get("sha256"):
            return f"its samples file {p} does not match the sha256 in its record (corrupt or replaced)"
        self._verified[unit_id] = key
        return None

    def is_done(self, unit_id: str) -> bool:
        return self.check_unit(unit_id) is None

    def write_unit(self, record: UnitRecord, samples: pa.Table | None) -> UnitRecord:
        """Write a finished unit: its rows (``None``: a unit without per-sample rows), then its record;
        returns the record as stored (with the samples check, version and format)."""
        uid = record.unit_id
        p = self.samples_path(uid)
        check = None
        if samples is not None:
            samples = with_identity(samples, sample_identity(record))  # self-describing rows (roz.engine.samples)
            atomic_write_table(p, samples)
            st = p.stat()
            check = {"file": str(p.relative_to(self.root)), "rows": samples.num_rows, "bytes": st.st_size,
                     "sha256": sha256_file(p)}
            self._verified[uid] = (st.st_size, st.st_mtime_ns, check["sha256"])
        else:
            p.unlink(missing_ok=True)
        record = record.replace(samples=check, roz_version=__version__, store_format=STORE_FORMAT)
        atomic_write_json(self.unit_path(uid), record.to_json())  # written last: the done marker
        if self.remote:
            from roz.engine import mirror

            try:
                mirror.publish_unit(self, uid, check is not None)
            except BaseException:
                self.unit_path(uid).unlink(missing_ok=True)  # not on the remote: not done here either
                raise
        self.clear_parts(uid)
        self.clear_failure(uid)
        return record

    def clear_unit(self, unit_id: str) -> None:
        if self.remote:
            from roz.engine import mirror

            mirror.unpublish_unit(self, unit_id)
        self.unit_path(unit_id).unlink(missing_ok=True)
        self.samples_path(unit_id).unlink(missing_ok=True)
        self.clear_parts(unit_id)

    def records(self, skip_broken: bool = False) -> list[UnitRecord]:
        """Every finished unit's record, in unit-id order; a corrupt record raises, or is left out
        with ``skip_broken`` (a re-run recomputes such a unit)."""
        out = []
        for p in sorted((self.root / "units").glob("*.json")):
            try:
                out.append(self._load_record(p))
            except StoreError:
                if not skip_broken:
                    raise
        return out

    def record(self, unit_id: str) -> UnitRecord:
        """The record of one finished unit (``StoreError`` when there is none or it is corrupt)."""
        p = self.unit_path(unit_id)
        if not p.exists():
            raise StoreError(f"no finished unit {unit_id} in {self.root}")
        return self._load_record(p)

    def _load_record(self, p: Path) -> UnitRecord:
        rec, why = _read_json(p)
        if why or not isinstance(rec, dict):
            raise StoreError(f"unit record {p} is {why or 'not a JSON object'}",
                             hint="re-run the same command: the unit is recomputed (or delete the file)")
        try:
            return UnitRecord.from_json(rec)
        except StoreError as e:
            raise StoreError(f"{p}: {e.what}", hint=e.hint) from None

    def samples(self, unit_id: str):
        """Per-sample rows of a finished unit as a pandas DataFrame (checked against its record)."""
        p = self.samples_path(unit_id)
        if not p.is_file():
            raise StoreError(f"no per-sample results for unit {unit_id} in {self.root}")
        rec, _ = _read_json(self.unit_path(unit_id))
        why = self._check_samples(unit_id, rec.get("samples") if isinstance(rec, dict) else None)
        if why:
            raise StoreError(f"unit {unit_id}: {why}", hint="re-run the same command: the unit is recomputed")
        frame = pq.read_table(p).to_pandas()
        # runs written before the identity columns existed: fill them from the record
        return fill_identity(frame, sample_identity(UnitRecord.from_json(rec))) if isinstance(rec, dict) else frame

    # -- failures -----------------------------------------------------------------------------
    def failure_path(self, unit_id: str) -> Path:
        return self.root / "failed" / f"{unit_id}.json"

    def write_failure(self, unit_id: str, error: BaseException, extra: dict | None = None) -> dict:
        """Record why a unit failed (its type, message, hint and traceback, and ``extra``: attempts,
        shard); it is retried next run."""
        rec = {**(extra or {}), "unit_id": unit_id, "error": type(error).__name__, "message": getattr(error, "what", str(error)),
               "hint": getattr(error, "hint", None), "user_error": isinstance(error, RozError),
               "traceback": "".join(_traceback.format_exception(error)), "time": _now(), "roz_version": __version__}
        atomic_write_json(self.failure_path(unit_id), rec)
        try:
            self._publish(f"failed/{unit_id}.json")
        except Exception:  # noqa: BLE001 -- recorded here; the run goes on (the unit is retried next run)
            pass
        return rec

    def clear_failure(self, unit_id: str) -> None:
        if self.remote:
            self.remote.delete(f"failed/{unit_id}.json")
        self.failure_path(unit_id).unlink(missing_ok=True)

    def failures(self) -> list[dict]:
        """The recorded failures of units not finished since."""
        out = []
        for p in sorted((self.root / "failed").glob("*.json")):
            rec, why = _read_json(p)
            out.append(rec if isinstance(rec, dict) else {"unit_id": p.stem, "error": "unknown", "message": why})
        return out

    # -- partial progress ---------------------------------------------------------------------
    def _part_path(self, unit_id: str, start: int, end: int) -> Path:
        return self.parts_dir(unit_id) / f"part-{start:08d}-{end:08d}.parquet"

    def write_part(self, unit_id: str, start: int, end: int, table: pa.Table) -> None:
        """Rows of positions ``start:end`` of the unit (offsets into its position list)."""
        atomic_write_table(self._part_path(unit_id, start, end), table)
        self._publish(self._part_path(unit_id, start, end).relative_to(self.root).as_posix())

    def read_parts(self, unit_id: str, on_bad: Callable[[str], None] | None = None) -> dict[tuple[int, int], pa.Table]:
        """``{(start, end): rows}``; unreadable or misnamed part files are deleted (and reported)."""
        self._pull_parts(unit_id)
        d = self.parts_dir(unit_id)
        out = {}
        for p in sorted(d.glob("*.parquet")) if d.is_dir() else []:
            m = _PART.match(p.stem)
            try:
                if not m:
                    raise ValueError("not named part-<start>-<end>")
                out[(int(m.group(1)), int(m.group(2)))] = pq.read_table(p)
            except Exception as e:  # noqa: BLE001 -- a torn write cannot happen (atomic), a foreign file can
                if on_bad:
                    on_bad(f"{p.name}: {e}")
                p.unlink(missing_ok=True)
        return out

    def part_ranges(self, unit_id: str) -> list[tuple[int, int]]:
        """The ``(start, end)`` ranges of the unit's stored parts, from their names (not read)."""
        self._pull_parts(unit_id)
        d = self.parts_dir(unit_id)
        found = [_PART.match(p.name[:-len(".parquet")]) for p in d.glob("part-*.parquet")] if d.is_dir() else []
        return sorted((int(m.group(1)), int(m.group(2))) for m in found if m)

    def _pull_parts(self, unit_id: str) -> None:
        if self.remote:  # parts other nodes' shards published
            from roz.engine import mirror

            mirror.pull_parts(self, unit_id)

    def drop_part(self, unit_id: str, start: int, end: int) -> None:
        if self.remote:
            self.remote.delete(self._part_path(unit_id, start, end).relative_to(self.root).as_posix())
        self._part_path(unit_id, start, end).unlink(missing_ok=True)

    def clear_parts(self, unit_id: str) -> None:
        if self.remote:
            self.remote.delete_dir(f"parts/{unit_id}")
        d = self.parts_dir(unit_id)
        if d.is_dir():
            for p in d.iterdir():
                p.unlink(missing_ok=True)
            d.rmdir()

    # -- run-level artefacts ------------------------------------------------------------------
    def artifact_path(self, name: str) -> Path:
        if not _ARTIFACT.match(name) or name == "run":
            raise StoreError(f"bad artefact name {name!r}", hint="lower-case letters, digits, - and _; not 'run'")
        return self.root / f"{name}.json"

    def write_artifact(self, name: str, obj: Any) -> None:
        """A named run-level result (JSON), e.g. the overlap analysis: ``RUN_DIR/<name>.json``."""
        atomic_write_json(self.artifact_path(name), obj)
        self._publish(f"{name}.json")

    def read_artifact(self, name: str) -> Any | None:
        """The artefact, ``None`` when absent; ``StoreError`` when it cannot be read."""
        obj, why = _read_json(self.artifact_path(name))
        if why == "missing":
            return None
        if why:
            raise StoreError(f"{self.artifact_path(name)} is {why}", hint="re-run the step that writes it")
        return obj

    def write_overlap(self, summary: dict) -> None:
        """The overlap analysis ``{split: {"detection", "accuracy", "n_duplicates", "protocol"}}``."""
        self.write_artifact("overlap", summary)

    def read_overlap(self) -> dict | None:
        return self.read_artifact("overlap")

    # -- tables (roz.engine.tables over this run's records) ----------------------------------
    def metrics_table(self, paper_order: bool = False):
        """One row per finished unit: identity columns + one column per metric (pandas);
        ``paper_order``: datasets in the paper's order (then dataset, shift, attack, model)."""
        return tables.metrics_table(self.records(), paper_order)

    def natural_table(self):
        """Natural-shift accuracies, one row per eval unit without a shift (:func:`roz.engine.tables.natural_table`)."""
        return tables.natural_table(self.records())

    def perturbation_table(self):
        """ImageNet-P results (:func:`roz.engine.tables.perturbation_table`)."""
        return tables.perturbation_table(self.records())

    def accuracy_table(self):
        """The run's natural-shift accuracies and derived shift axes (corruptions, typographic,
        attacks) as a :class:`~roz.metrics.effective.AccuracyTable` (:func:`roz.engine.tables.accuracy_table`)."""
        return tables.accuracy_table(self.records(), source=str(self.root))

    # -- overlap detection tables (``roz overlap detect``) -------------------------------------
    def overlap_file(self, split: str, what: str) -> Path:
        """``RUN_DIR/overlap/<split>.duplicates.parquet`` / ``<split>.manifest.json``."""
        if not _ARTIFACT.match(str(split)) or what not in ("duplicates", "manifest"):
            raise StoreError(f"bad overlap split name {split!r}", hint="lower-case letters, digits, - and _")
        return self.root / "overlap" / f"{split}.{what}.{'parquet' if what == 'duplicates' else 'json'}"

    def write_overlap_duplicates(self, split: str, df) -> Path:
        """The duplicates table of one test set (one row per test sample), atomically."""
        path = self.overlap_file(split, "duplicates")
        plain = df.reset_index(drop=True)
        plain.attrs = {}  # the protocol is recorded in overlap.json, not in the Parquet schema
        atomic_write_table(path, pa.Table.from_pandas(plain, preserve_index=False))
        return path

    def read_overlap_duplicates(self, split: str):
        path = self.overlap_file(split, "duplicates")
        if not path.is_file():
            return None
        try:
            return pq.read_table(path).to_pandas()
        except (OSError, pa.ArrowException) as e:
            raise StoreError(f"{path} cannot be read: {e}", hint="re-run `roz overlap detect`") from None

    def write_overlap_manifest(self, split: str, manifest: dict) -> Path:
        path = self.overlap_file(split, "manifest")
        atomic_write_json(path, manifest)
        return path

    def read_overlap_manifest(self, split: str) -> dict | None:
        obj, why = _read_json(self.overlap_file(split, "manifest"))
        if why == "missing":
            return None
        if why:
            raise StoreError(f"{self.overlap_file(split, 'manifest')} is {why}", hint="re-run `roz overlap detect`")
        return obj
