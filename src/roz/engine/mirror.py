"""Mirror a remote run directory into its local working copy and publish to it (see
:mod:`roz.engine.remote` for the protocol). Used by :class:`~roz.engine.store.ResultStore`
only when its run directory is a URL; a plain path never reaches this module."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pyarrow.parquet as pq

from roz.files import sha256_file


def _tmp(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"


def _install_bytes(path: Path, raw: bytes) -> None:
    tmp = _tmp(path)
    try:
        tmp.write_bytes(raw)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _try_lock(store, name: str):
    """The unit's lock if free now, else ``None`` (another process here is computing/publishing it)."""
    from filelock import Timeout

    lock = store.lock(name)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return None
    return lock


# -- pulling -------------------------------------------------------------------------------------
def pull_meta(store) -> None:
    """``run.json`` from the remote into the working copy (removed there when the remote has none)."""
    raw = store.remote.read("run.json")
    local = store.root / "run.json"
    if raw is None:
        local.unlink(missing_ok=True)
    elif not local.is_file() or local.read_bytes() != raw:
        _install_bytes(local, raw)


def pull(store) -> None:
    """Mirror the remote's unit records (samples checked), failures and artefacts locally."""
    remote = store.remote
    remote_ids = {n[:-len(".json")] for n in remote.names("units") if n.endswith(".json")}
    local_ids = {p.stem for p in (store.root / "units").glob("*.json")}
    for uid in sorted(remote_ids | local_ids):
        lock = _try_lock(store, uid)
        if lock is None:
            continue
        try:
            if uid in remote_ids:
                pull_unit(store, uid)
            else:  # committed here but never published: not done (the remote is the truth)
                store.unit_path(uid).unlink(missing_ok=True)
                store.samples_path(uid).unlink(missing_ok=True)
        finally:
            lock.release()
    _mirror_folder(store, "failed")
    for name in remote.names(""):
        if name.endswith(".json") and name != "run.json":
            raw = remote.read(name)
            if raw is not None:
                _install_bytes(store.root / name, raw)


def _mirror_folder(store, folder: str) -> None:
    names = {n for n in store.remote.names(folder) if n.endswith(".json")}
    for name in names:
        raw = store.remote.read(f"{folder}/{name}")
        if raw is not None:
            _install_bytes(store.root / folder / name, raw)
    for p in (store.root / folder).glob("*.json"):
        if p.name not in names:
            p.unlink(missing_ok=True)


def pull_unit(store, uid: str) -> bool:
    """Install the remote unit in the working copy if its samples match its record; ``True`` if done."""
    rec, raw = store.remote.read_json(f"units/{uid}.json")
    local = store.unit_path(uid)
    if not isinstance(rec, dict):  # vanished or corrupt remotely: not done
        local.unlink(missing_ok=True)
        return False
    if local.is_file() and local.read_bytes() == raw and store.check_local(uid) is None:
        return True
    local.unlink(missing_ok=True)  # never an old record next to new samples
    want = rec.get("samples")
    sp = store.samples_path(uid)
    if isinstance(want, dict):
        if not _same_file(sp, want) and not _download_checked(store, f"samples/{uid}.parquet", sp, want):
            return False
    elif "samples" in rec:  # a unit without per-sample rows
        sp.unlink(missing_ok=True)
    elif store.remote.read(f"samples/{uid}.parquet") is not None:  # an old record without a samples check
        _download_checked(store, f"samples/{uid}.parquet", sp, None)
    _install_bytes(local, raw)
    return True


def _same_file(path: Path, want: dict) -> bool:
    return path.is_file() and path.stat().st_size == want.get("bytes") and sha256_file(path) == want.get("sha256")


def _download_checked(store, rel: str, dest: Path, want: dict | None) -> bool:
    """Download ``rel``; keep it only if its size, sha256 and row count are the record's."""
    tmp = _tmp(dest)
    try:
        if not store.remote.get(rel, tmp):
            return False
        if want is not None:
            if not _same_file(tmp, want) or pq.read_metadata(tmp).num_rows != want.get("rows"):
                return False
        os.replace(tmp, dest)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def pull_parts(store, uid: str) -> None:
    """The unit's checkpoint parts other processes (other nodes) published, into the working copy."""
    d = store.parts_dir(uid)
    for name in store.remote.names(f"parts/{uid}"):
        if name.endswith(".parquet") and not (d / name).is_file():
            _download_checked(store, f"parts/{uid}/{name}", d / name, None)


# -- publishing ----------------------------------------------------------------------------------
def publish_unit(store, uid: str, has_samples: bool) -> None:
    """Samples first, the record (the commit marker) last."""
    rel = f"samples/{uid}.parquet"
    if has_samples:
        store.remote.put(store.samples_path(uid), rel)
    else:
        store.remote.delete(rel)
    store.remote.put(store.unit_path(uid), f"units/{uid}.json")


def unpublish_unit(store, uid: str) -> None:
    """The record first (the unit stops being done), then its rows and parts."""
    store.remote.delete(f"units/{uid}.json")
    store.remote.delete(f"samples/{uid}.parquet")
    store.remote.delete_dir(f"parts/{uid}")
