"""Tar shards (webdataset) as random-access datasets.

A webdataset shard is a plain tar whose files are grouped into samples by their key (the name
up to the first dot of the basename): ``s0000001.webp`` + ``s0000001.cls`` is one sample. The
``webdataset`` library reads shards as a stream; an evaluation needs random access (workers,
resumable batches, bad-image lists by index), so the shards are indexed once with ``tarfile``
(member offsets), the key/extension split is webdataset's own (``base_plus_ext``), and each image
is read back by offset and decoded by ROZ's decoder (``load_image_bytes``) -- the same pixels as
``webdataset``'s PIL decoder, with ROZ's bad-image handling.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from roz.datasets._util import MetaEvalDataset
from roz.datasets.images import load_image_bytes
from roz.errors import DataError

#: Image extensions in the order webdataset collections are read by CLIP_benchmark.
IMAGE_EXTS = ("webp", "png", "jpg", "jpeg")
SMALL = 4096  # bytes: label files (.cls, .txt, .json) up to this size are read while indexing


@dataclass(frozen=True)
class Member:
    """Where one file of a sample lies: shard path (relative to the dataset root), byte range."""

    shard: str
    offset: int
    size: int


@dataclass
class ShardSample:
    key: str
    shard: str
    files: dict[str, Member] = field(default_factory=dict)
    small: dict[str, bytes] = field(default_factory=dict)  # label-sized files, read while indexing


def index_shard(path: Path, rel: str) -> list[ShardSample]:
    """The samples of one tar shard, in file order (webdataset's grouping of consecutive keys)."""
    from webdataset.tariterators import base_plus_ext

    samples: list[ShardSample] = []
    try:
        with tarfile.open(path, "r:") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                key, ext = base_plus_ext(info.name)
                if key is None or key.startswith("__") or "/." in "/" + key:
                    continue
                if not samples or samples[-1].key != key:
                    samples.append(ShardSample(key, rel))
                samples[-1].files[ext.lower()] = Member(rel, info.offset_data, info.size)
                if info.size <= SMALL and ext.lower() not in IMAGE_EXTS:  # one pass, not a seek per label
                    samples[-1].small[ext.lower()] = tar.extractfile(info).read()
    except (tarfile.TarError, OSError) as e:
        raise DataError(f"cannot read tar shard {path}: {type(e).__name__}: {e}",
                        hint="a truncated download? re-download the shard") from None
    return samples


INDEX_VERSION = 1


def index_shard_cached(path: Path, rel: str) -> list[ShardSample]:
    """:func:`index_shard`, kept in ``ROZ_HOME/cache/shard-index`` keyed by the shard's absolute path,
    size and mtime: Python's tarfile parses ~10k headers per second, and a dataset is opened more
    than once per run (planning, fingerprint, each unit)."""
    import hashlib
    import json

    from roz.paths import cache_dir

    path = Path(path)
    st = path.stat()
    key = hashlib.sha256(f"{INDEX_VERSION}|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{rel}".encode()).hexdigest()
    cached = cache_dir("shard-index") / f"{key}.json"
    if cached.is_file():
        try:
            rows = json.loads(cached.read_text())
            return [ShardSample(k, rel, {e: Member(rel, o, n) for e, (o, n) in files.items()},
                                {e: v.encode("latin-1") for e, v in small.items()}) for k, files, small in rows]
        except (OSError, ValueError, TypeError):
            cached.unlink(missing_ok=True)  # a damaged entry is rebuilt
    samples = index_shard(path, rel)
    rows = [[s.key, {e: [m.offset, m.size] for e, m in s.files.items()},
             {e: v.decode("latin-1") for e, v in s.small.items()}] for s in samples]
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    try:  # write-then-rename: a concurrent reader never sees half a file; a failed write only costs time
        tmp.write_text(json.dumps(rows))
        os.replace(tmp, cached)
    except OSError:
        tmp.unlink(missing_ok=True)
    return samples


def read_member(root: Path, m: Member) -> bytes:
    with open(Path(root) / m.shard, "rb") as f:
        f.seek(m.offset)
        data = f.read(m.size)
    if len(data) != m.size:
        raise DataError(f"tar shard {Path(root) / m.shard} is truncated (member at byte {m.offset})")
    return data


def image_member(s: ShardSample, image_key: str | None = None) -> tuple[str, Member]:
    """``(extension, member)`` of the sample's image: ``image_key`` or the first of IMAGE_EXTS."""
    keys = (image_key,) if image_key else IMAGE_EXTS
    for ext in keys:
        if ext in s.files:
            return ext, s.files[ext]
    raise DataError(f"tar shard {s.shard}: sample {s.key!r} has no image (files: {sorted(s.files)})",
                    hint=f"expected one of .{', .'.join(keys)} next to the label file")


def read_int(root: Path, s: ShardSample, ext: str = "cls") -> int:
    if ext not in s.files:
        raise DataError(f"tar shard {s.shard}: sample {s.key!r} has no .{ext} label file (files: {sorted(s.files)})")
    data = s.small[ext] if ext in s.small else read_member(root, s.files[ext])
    text = data.decode("utf-8", "replace").strip()
    try:
        return int(text)
    except ValueError:
        raise DataError(f"tar shard {s.shard}: sample {s.key!r}: label {text[:40]!r} is not an integer") from None


@dataclass
class ShardEvalDataset(MetaEvalDataset):
    """An EvalDataset whose images are tar members: ``samples`` paths are ``<shard>/<key>.<ext>``
    (what the store records), ``members`` maps each to its byte range."""

    members: dict = field(default_factory=dict)

    def path(self, i: int) -> Path:
        return self.root / self.samples[i][0]

    def load(self, i: int):
        name = self.samples[i][0]
        return load_image_bytes(read_member(self.root, self.members[name]), f"{self.root / name}",
                                self.decode, self.max_image_pixels)


def sample_name(s: ShardSample, ext: str) -> str:
    return f"{s.shard}/{s.key}.{ext}"
