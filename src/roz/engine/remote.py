"""Run directories on a remote filesystem: ``s3://``, ``gs://``, ``file://``, ``memory://``, ...

A run directory given as a URL (``scheme://...``, opened with :func:`fsspec.core.url_to_fs`) is
worked on through a local *working copy* (``$ROZ_HOME/remote-runs/<sha256 of the URL>``): the
store reads and writes the working copy exactly as a plain run directory (atomic local writes,
file locks), and :class:`Remote` mirrors it.

Publishing (after each local atomic commit, object by object): a unit's samples Parquet first,
its record JSON last — the record is the commit marker, so a reader never sees a record whose
samples are not there yet (and a reader checks the samples' sha256/row count against the record
anyway). Failures, checkpoint parts (a shard computed on another node must reach the merge),
``run.json`` and artefacts are published the same way. Each object is written whole:

* object stores whose single-object PUT is atomic (S3, GCS, Azure, fsspec's in-memory store:
  :data:`ATOMIC_PUT`) get one PUT straight to the final key — a reader sees the old object or
  the new one, never a part;
* every other filesystem (``file://``, NFS through ``file://``, SFTP, HDFS, ...) gets a write to
  a temporary name in the same folder, then a move (a rename) onto the final name.

Publishing is idempotent: the same unit published twice gives the same objects (same bytes).
Deleting goes the other way: the record first, then the samples (a unit stops being done before
its rows disappear).

Pulling (on open): the remote's records are mirrored into the working copy — a record is
installed only after its samples were downloaded and match the record's size and sha256 (else
the unit is not done and a re-run recomputes it); working-copy records the remote does not have
(a publish that never finished) are dropped, so the remote is the truth. A resumed run, on this
machine or another, skips the units the remote has and never doubles rows.

Limits: locks are local files (one machine); two drivers on *different* machines must not run on
one remote run directory at the same time. Ray workers on the same or other nodes open the store
from the URL (:class:`~roz.engine.store.ResultStore` with ``sync=False``) and publish their units.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from pathlib import Path

from roz.errors import StoreError
from roz.paths import roz_home

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

# Filesystems (fsspec protocol names) whose single-object PUT is atomic: an object appears whole.
ATOMIC_PUT = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "memory", "oss", "r2"})

_BACKENDS = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs",
             "abfss": "adlfs", "hdfs": "pyarrow", "sftp": "paramiko", "ssh": "paramiko"}


def is_url(run_dir) -> bool:
    """A ``scheme://`` string (a ``Path`` is always local: it would have collapsed the ``//``)."""
    return isinstance(run_dir, str) and bool(_URL.match(run_dir))


def working_copy(url: str) -> Path:
    """The local working copy of the remote run directory ``url``."""
    return roz_home() / "remote-runs" / hashlib.sha256(url.encode()).hexdigest()[:24]


def _protocol(fs) -> str:
    proto = fs.protocol
    return proto[0] if isinstance(proto, (tuple, list)) else str(proto)


class Remote:
    """The remote side of a run directory: keys relative to its root (``units/<id>.json``, ...)."""

    def __init__(self, url: str):
        try:
            from fsspec.core import url_to_fs
        except ImportError:
            raise StoreError(f"run directory {url}: a URL needs fsspec", hint="pip install fsspec") from None
        self.url = url.rstrip("/")
        scheme = self.url.split("://", 1)[0].lower()
        try:
            self.fs, root = url_to_fs(self.url)
        except ValueError as e:
            raise StoreError(f"run directory {url}: unknown filesystem {scheme!r} ({e})",
                             hint="use a local path or a URL fsspec knows: s3://, gs://, file://, memory://, ...") from None
        except ImportError as e:
            pkg = _BACKENDS.get(scheme, f"the fsspec backend for {scheme}://")
            raise StoreError(f"run directory {url}: the {scheme}:// filesystem is not installed ({e})",
                             hint=f"pip install {pkg}") from None
        self.root = root.rstrip("/")
        self.atomic_put = _protocol(self.fs) in ATOMIC_PUT

    def key(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    # -- writing ------------------------------------------------------------------------------
    def put(self, local: Path, rel: str) -> None:
        """Publish the local file as ``rel``, whole (see the module doc)."""
        final = self.key(rel)
        parent = final.rsplit("/", 1)[0]
        if self.atomic_put:
            self.fs.put_file(str(local), final)
            return
        self.fs.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/.{final.rsplit('/', 1)[1]}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            self.fs.put_file(str(local), tmp)
            self.fs.mv(tmp, final)
        except BaseException:
            self.delete(tmp)
            raise

    def delete(self, rel_or_key: str) -> None:
        key = rel_or_key if rel_or_key.startswith(self.root + "/") else self.key(rel_or_key)
        try:
            self.fs.rm_file(key)
        except FileNotFoundError:
            pass

    def delete_dir(self, rel: str) -> None:
        for name in self.names(rel):
            self.delete(f"{rel}/{name}")

    # -- reading ------------------------------------------------------------------------------
    def read(self, rel: str) -> bytes | None:
        """The object's bytes, ``None`` when there is none."""
        try:
            return self.fs.cat_file(self.key(rel))
        except FileNotFoundError:
            return None

    def get(self, rel: str, local: Path) -> bool:
        """Download ``rel`` to ``local`` (a temporary name: the caller checks it, then renames it)."""
        try:
            self.fs.get_file(self.key(rel), str(local))
            return True
        except FileNotFoundError:
            return False

    def names(self, rel: str = "") -> list[str]:
        """Names of the files directly in folder ``rel`` (temporary ``.*.tmp`` names left out)."""
        key = self.key(rel) if rel else self.root
        self.fs.invalidate_cache(key)  # another machine may have written since this process listed
        try:
            entries = self.fs.ls(key, detail=True)
        except FileNotFoundError:
            return []
        return sorted(e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries
                      if e.get("type") == "file" and not e["name"].rsplit("/", 1)[-1].startswith("."))

    def read_json(self, rel: str):
        """``(object, raw bytes)``, ``(None, None)`` when missing or not JSON."""
        raw = self.read(rel)
        if raw is None:
            return None, None
        try:
            return json.loads(raw), raw
        except (ValueError, UnicodeDecodeError):
            return None, None
