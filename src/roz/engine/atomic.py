"""Atomic file writes (a temporary file in the same folder, fsync, rename) and tolerant JSON reads:
what the result store and every other writer of run files use, so a killed process never leaves a
truncated file behind."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_CREAT with mode 0666 lets the OS apply the umask (tempfile.mkstemp would force 0600).
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
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


def _read_json(path: Path) -> tuple[Any, str | None]:
    """``(object, None)``, or ``(None, why)`` for a missing, empty, truncated or non-JSON file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None, "missing"
    except OSError as e:
        return None, f"unreadable ({e})"
    if not text.strip():
        return None, "empty (zero bytes)"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as e:
        return None, f"not valid JSON, truncated or corrupt ({e})"
