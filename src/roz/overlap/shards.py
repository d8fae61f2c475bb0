"""Embedding an image corpus: batched, sharded, resumable, in LAION's released-embeddings layout.

``embed_corpus(corpus, encoder, out_dir)`` walks the corpus's records in order and cuts them into
shards of ``shard_size`` records. Shard ``k`` is written as ``img_emb/img_emb_{k:04d}.npy`` (float16,
L2-normalised rows) then ``metadata/metadata_{k:04d}.parquet`` (``key``, ``caption``,
``image_path``), each to a temporary name and renamed (atomic), the metadata last: a shard is
complete iff its metadata file exists and has as many rows as its ``.npy``. A killed job re-run
with the same arguments keeps the complete shards (their records are skipped undecoded) and
continues from the first incomplete one. ``roz_embeddings.json`` records the encoder, dim, shard
size, the corpus's fingerprint and, when done, ``complete: true``; re-running into a folder made
with another encoder, shard size or corpus is refused. The result is read back with
:class:`roz.overlap.corpus.EmbeddingCorpus` (and by any LAION-layout tool).

Undecodable images are skipped (listed in the sidecar's ``skipped``), so a shard can hold fewer
rows than records.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from pathlib import Path

import numpy as np

from roz.errors import DataError, RozError
from roz.overlap.corpus import EmbeddingCorpus, shard_paths, write_sidecar

DEFAULT_SHARD_SIZE = 100_000


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def shard_complete(out_dir, k: int) -> bool:
    import pyarrow.parquet as pq

    emb, meta = shard_paths(out_dir, k)
    if not (emb.is_file() and meta.is_file()):
        return False
    try:
        return len(np.load(emb, mmap_mode="r")) == pq.read_metadata(meta).num_rows
    except (OSError, ValueError):
        return False


def _check_sidecar(out_dir: Path, want: dict) -> None:
    import json

    side = out_dir / "roz_embeddings.json"
    if not side.is_file():
        return
    have = json.loads(side.read_text())
    diff = {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}
    if diff:
        raise RozError(f"{out_dir} holds embeddings made differently: " +
                       ", ".join(f"{k} {a!r} there, {b!r} now" for k, (a, b) in diff.items()),
                       hint="use another output folder, or delete this one to start over")


def _write_shard(out_dir: Path, k: int, feats: np.ndarray, keys: list, captions: list, paths: list) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    emb, meta = shard_paths(out_dir, k)
    def save_npy(t):
        with open(t, "wb") as f:  # a file object: np.save would append .npy to a path
            np.save(f, feats.astype(np.float16))

    _atomic(emb, save_npy)
    table = pa.table({"key": keys, "caption": captions, "image_path": paths})
    _atomic(meta, lambda t: pq.write_table(table, t))  # last: the shard's completion marker


def _embed_shard(corpus, encoder, records, batch_size: int, skipped: list) -> tuple[np.ndarray, list, list, list]:
    feats, keys, caps, paths = [], [], [], []
    for s in range(0, len(records), batch_size):
        imgs, ok = [], []
        for key, src, cap in records[s:s + batch_size]:
            try:
                imgs.append(corpus.load(src))
                ok.append((key, cap, src if not isinstance(src, (bytes, bytearray)) else key))
            except DataError:
                skipped.append(key)
        if imgs:
            feats.append(encoder.embed(imgs))
            keys += [o[0] for o in ok]
            caps += [o[1] for o in ok]
            paths += [str(o[2]) for o in ok]
    f = np.concatenate(feats) if feats else np.zeros((0, encoder.dim), np.float32)
    return f, keys, caps, paths


def embed_corpus(corpus, encoder, out_dir, *, shard_size: int = DEFAULT_SHARD_SIZE, batch_size: int = 256,
                 log=None) -> EmbeddingCorpus:
    """Embed every image of ``corpus`` (a ``corpus.py`` image reader) with ``encoder``
    (:class:`roz.overlap.encoders.ImageEncoder`) into ``out_dir``; resumes an interrupted job."""
    out_dir = Path(out_dir)
    if shard_size < 1 or batch_size < 1:
        raise RozError(f"shard_size and batch_size must be >= 1, got {shard_size}, {batch_size}")
    want = {"encoder": encoder.name, "weights_sha256": getattr(encoder, "weights_sha256", None), "dim": encoder.dim,
            "shard_size": int(shard_size), "corpus_fingerprint": corpus.fingerprint()}
    _check_sidecar(out_dir, want)
    write_sidecar(out_dir, {**want, "corpus": corpus.describe(), "preprocess": encoder.info()["preprocess"],
                            "complete": False})
    t0 = time.perf_counter()
    skipped: list[str] = []
    done = embedded = 0
    records = iter(corpus.records())
    for k in itertools.count():
        chunk = list(itertools.islice(records, shard_size))
        if not chunk:
            break
        if shard_complete(out_dir, k):
            done += 1
            continue
        feats, keys, caps, paths = _embed_shard(corpus, encoder, chunk, batch_size, skipped)
        _write_shard(out_dir, k, feats, keys, caps, paths)
        embedded += len(chunk)
        if log:
            log(f"embedded shard {k} ({len(keys)} images, {time.perf_counter() - t0:.1f} s)")
    write_sidecar(out_dir, {**want, "corpus": corpus.describe(), "preprocess": encoder.info()["preprocess"],
                            "complete": True, "n_shards": k, "skipped": skipped, "shards_reused": done,
                            "records_embedded": embedded, "seconds": time.perf_counter() - t0})
    return EmbeddingCorpus(out_dir)
