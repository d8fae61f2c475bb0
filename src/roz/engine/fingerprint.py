"""What a unit was computed on: the content hash of a model's local weights and a fingerprint of a
dataset root, taken at planning time (issue 12).

* Weights: a spec that names a local file (``local:m.pt``, ``timm:NAME@/w.pth``, ``hf:/dir``, ...)
  gets the sha256 of that file (and of its sidecar / config / directory files) into ``ModelRef.weights``,
  so replacing the file gives a new unit id. Hub weights (tags, downloads) are named by the spec.
* Datasets: a root gets a fingerprint of its file list, sizes and mtimes (``DatasetRef.fingerprint``,
  recorded with the unit, not in its id). ``check_same_contents`` refuses to add units computed on
  other contents of "the same" dataset to a run directory unless forced.

Both are cached by (path, size, mtime) on disk in ``$ROZ_HOME/cache/sha256``, so re-planning is
cheap even for large checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from roz.errors import RozError
from roz.files import sha256_file
from roz.paths import cache_dir

_memory: dict[tuple, str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file, cached by (resolved path, size, mtime)."""
    path = Path(path).resolve()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _memory:
        return _memory[key]
    entry = cache_dir("sha256") / (hashlib.sha256(json.dumps(key).encode()).hexdigest()[:32] + ".txt")
    if entry.is_file():
        digest = entry.read_text().strip()
    else:
        digest = sha256_file(path)
        tmp = entry.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(digest)
        os.replace(tmp, entry)
    _memory[key] = digest
    return digest


def _files_under(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        out += [Path(dirpath) / f for f in sorted(filenames) if not f.startswith(".")]
    return out


def weight_files(spec: str) -> list[Path]:
    """The local files behind a model spec (empty for hub weights)."""
    from roz.models.adapters import parse_spec

    source, name, weights = parse_spec(spec)
    paths: list[Path] = []
    if source == "prompted":  # prompted:ARTEFACT.json@BASE_SPEC: the artefact (it hashes its context) + the base's
        return [p for p in [Path(name).expanduser()] if p.is_file()] + (weight_files(weights) if weights else [])
    if source == "local":
        pt = Path(name).expanduser()
        paths += [pt.with_suffix(".pt"), pt.with_suffix(".json")]
    elif source == "hf" and Path(name).expanduser().is_dir():
        paths += _files_under(Path(name).expanduser())
    else:
        if name.endswith(".json"):  # openclip:/path/config.json@PATH
            paths.append(Path(name).expanduser())
        if weights and weights != "none" and (os.sep in weights or Path(weights).expanduser().exists()):
            w = Path(weights).expanduser()
            paths += [w, w.with_suffix(".json")]
    return [p for p in paths if p.is_file()]


def weights_sha256(spec: str) -> str | None:
    """One hash over the local weight files of ``spec``; None when it names hub weights only."""
    files = weight_files(spec)
    if not files:
        return None
    h = hashlib.sha256()
    for p in files:
        h.update(f"{p.name}\0{file_sha256(p)}\n".encode())
    return h.hexdigest()


def dataset_fingerprint(root: str | Path) -> str | None:
    """Hash of every file's relative path, size and mtime under ``root`` (None if it does not exist)."""
    root = Path(root)
    if not root.exists():
        return None
    h = hashlib.sha256()
    for p in ([root] if root.is_file() else _files_under(root)):
        st = p.stat()
        line = f"{p.relative_to(root) if p != root else p.name}\0{st.st_size}\0{st.st_mtime_ns}\n"
        h.update(line.encode("utf-8", "surrogateescape"))  # a non-UTF-8 file name hashes as its bytes
    return h.hexdigest()[:16]


def check_same_contents(units, existing: list, force: bool) -> None:
    """Refuse (unless ``force``) units whose dataset contents differ from finished units of the same
    dataset name in the run directory (``existing``: :class:`~roz.engine.record.UnitRecord` from ``ResultStore.records()``). Changed
    weights need no check: they change the unit id."""
    if force:
        return
    seen_data = {r.dataset.name: r.dataset.fingerprint for r in existing}
    problems = []
    for u in units:
        old = seen_data.get(u.dataset.display)
        if old and u.dataset.fingerprint and old != u.dataset.fingerprint:
            problems.append(f"dataset {u.dataset.display!r} at {u.dataset.root} changed (files added, removed "
                            f"or modified) since this run directory's units were computed")
    if problems:
        raise RozError("; ".join(sorted(set(problems))),
                       hint="results on other contents would be mixed in one table: use a new --out directory, "
                            "or --force to recompute these units")
