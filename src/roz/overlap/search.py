"""Nearest-neighbour search of test embeddings in a (possibly web-scale) corpus of float16 vectors.

The corpus side is any object with ``n``, ``dim``, ``iter_shards()`` (``(offset, float16[rows, dim])``
in id order) and ``take(ids)`` (float16 rows by global id) — :class:`roz.overlap.corpus.EmbeddingCorpus`
(on-disk shards, memory-mapped) or :class:`ArrayVectors` (in memory).

Two index kinds, chosen by :func:`plan_index` from the corpus size and a memory budget:

* ``flat`` (``faiss.IndexFlatIP``, exact) when ``n <= EXACT_MAX``: brute force costs ``n * d`` per
  query, 0.1 G multiply-adds per query at 200k x 512 — seconds for a test set of thousands.
* ``ivfpq`` (``faiss.IndexIVFPQ``) above that. Parameters (the formula, recorded with every result):
  ``nlist = 2 ** round(log2(sqrt(n)))`` clipped to [64, 65536] k-means cells (faiss' guideline is
  ``~sqrt(n)`` to ``16 sqrt(n)``; the low end keeps training and assignment cheap on a few cores);
  ``m`` = bytes per vector = the largest of ``PQ_M`` that divides ``d``, is at most ``d / 8``
  and fits the budget: ``n * (m + 8) * 1.05 <= memory_budget`` (8: the int64 id stored per vector;
  5 % for the lists' slack); ``nbits = 8``; ``nprobe = clip(nlist / 64, 8, 256)``; training sample
  ``min(n, 64 * nlist)`` vectors. A budget below ``n * (8 + 8) * 1.05`` is refused (RozError).

Every search re-ranks exactly: the top ``rerank`` (default 32) approximate candidates are rescored
by the inner product of the query with the stored float16 corpus vectors, so reported similarities
are true cosines and the order among the candidates is exact; recall is limited only by whether
the true neighbour is among the candidates.

Indexes are saved under ``cache_dir`` as ``<key>.faiss`` + ``<key>.json`` where ``key`` hashes the
corpus fingerprint and the plan, so a second run on the same corpus and parameters reuses it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path

import faiss
import numpy as np

from roz.errors import RozError
from roz.overlap.index import faiss_threads, l2_normalize

EXACT_MAX = 200_000
PQ_M = (128, 96, 64, 48, 32, 16, 8)
DEFAULT_BUDGET = 8 * 2 ** 30  # bytes for the approximate index (codes + ids)
DEFAULT_RERANK = 32
INDEX_FORMAT = "roz-overlap-index/1"


class ArrayVectors:
    """An in-memory corpus of vectors (float16 storage, like the on-disk shards)."""

    def __init__(self, vectors: np.ndarray, shard_rows: int = 262_144, fingerprint: str | None = None):
        self.vectors = np.ascontiguousarray(np.asarray(vectors, dtype=np.float16))
        self.n, self.dim = self.vectors.shape
        self.shard_rows = int(shard_rows)
        self._fp = fingerprint

    def iter_shards(self):
        for s in range(0, self.n, self.shard_rows):
            yield s, self.vectors[s:s + self.shard_rows]

    def take(self, ids: np.ndarray) -> np.ndarray:
        return self.vectors[np.asarray(ids, dtype=np.int64)]

    def fingerprint(self) -> str:
        if self._fp is None:  # content hash: fine in memory (the on-disk corpus hashes file metadata)
            self._fp = hashlib.sha256(self.vectors.tobytes()).hexdigest()[:16]
        return self._fp


def plan_index(n: int, dim: int, memory_budget: int = DEFAULT_BUDGET, kind: str = "auto") -> dict:
    """The index parameters for ``n`` vectors of ``dim`` dimensions (see the module docstring)."""
    if kind not in ("auto", "flat", "ivfpq"):
        raise RozError(f"unknown index kind {kind!r}", hint="use auto, flat or ivfpq")
    if kind == "flat" or (kind == "auto" and n <= EXACT_MAX):
        return {"kind": "flat", "exact": True, "n": int(n), "dim": int(dim), "bytes": int(n) * int(dim) * 4}
    nlist = int(min(65536, max(64, 2 ** round(math.log2(max(1.0, math.sqrt(n)))))))
    fits = [m for m in PQ_M if dim % m == 0 and m <= dim // 8 and n * (m + 8) * 1.05 <= memory_budget]
    if not fits:
        need = n * (8 + 8) * 1.05
        raise RozError(f"an approximate index of {n:,} vectors needs at least {need / 2 ** 30:.2f} GiB; "
                       f"the memory budget is {memory_budget / 2 ** 30:.2f} GiB",
                       hint="raise --memory-budget, or split the corpus and search each part")
    m = fits[0]
    return {"kind": "ivfpq", "exact": False, "n": int(n), "dim": int(dim), "nlist": nlist, "m": m, "nbits": 8,
            "nprobe": int(min(256, max(8, nlist // 64))), "train_size": int(min(n, 64 * nlist)),
            "bytes": int(n * (m + 8) * 1.05), "memory_budget": int(memory_budget),
            "formula": "nlist=2**round(log2(sqrt(n))) in [64,65536]; m=largest of 128..8 dividing d, <= d/8, "
                       "with n*(m+8)*1.05 <= budget; nprobe=clip(nlist/64, 8, 256); train on min(n, 64*nlist)"}


def _f32(x: np.ndarray) -> np.ndarray:
    return l2_normalize(np.asarray(x, dtype=np.float32))


def _train_sample(corpus, size: int, seed: int) -> np.ndarray:
    """``size`` corpus vectors drawn uniformly without replacement (sorted ids, read with ``take``)."""
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(corpus.n, size=size, replace=False)) if size < corpus.n else np.arange(corpus.n)
    return _f32(corpus.take(ids))


class VectorIndex:
    """A faiss index over a corpus, plus the exact float16 re-ranking step."""

    def __init__(self, corpus, plan: dict, index, timing: dict | None = None, key: str = "", reused: bool = False):
        self.corpus, self.plan, self.index = corpus, dict(plan), index
        self.timing, self.key, self.reused = dict(timing or {}), key, reused

    @classmethod
    def build(cls, corpus, plan: dict | None = None, *, memory_budget: int = DEFAULT_BUDGET, seed: int = 0,
              threads: int | None = None) -> "VectorIndex":
        plan = plan or plan_index(corpus.n, corpus.dim, memory_budget)
        t0 = time.perf_counter()
        with faiss_threads(threads):
            if plan["kind"] == "flat":
                index = faiss.IndexFlatIP(corpus.dim)
            else:
                # index_factory: the IVF index owns its quantizer (no dangling Python reference);
                # "np": no polysemous training (index_factory's default for IVF-PQ), which only
                # serves Hamming pre-filtering we do not use and made training minutes long here
                index = faiss.index_factory(corpus.dim, f"IVF{plan['nlist']},PQ{plan['m']}x{plan['nbits']}np",
                                            faiss.METRIC_INNER_PRODUCT)
                index.cp.seed = seed
                index.train(_train_sample(corpus, plan["train_size"], seed))
                index.nprobe = plan["nprobe"]
            t1 = time.perf_counter()
            for _, block in corpus.iter_shards():
                for s in range(0, len(block), 65536):
                    index.add(_f32(block[s:s + 65536]))
        t2 = time.perf_counter()
        return cls(corpus, plan, index, {"train_s": t1 - t0, "add_s": t2 - t1, "build_s": t2 - t0},
                   key=index_key(corpus, plan, seed))

    @classmethod
    def load_or_build(cls, corpus, cache_dir: str | os.PathLike | None, *, memory_budget: int = DEFAULT_BUDGET,
                      kind: str = "auto", seed: int = 0, threads: int | None = None) -> "VectorIndex":
        """Reuse the saved index of this corpus + plan from ``cache_dir`` if there is one, else build
        (and save it there). Exact (flat) indexes are never saved: rebuilding costs one pass."""
        plan = plan_index(corpus.n, corpus.dim, memory_budget, kind)
        key = index_key(corpus, plan, seed)
        if cache_dir is not None and plan["kind"] != "flat":
            path = Path(cache_dir) / f"{key}.faiss"
            if path.is_file() and path.with_suffix(".json").is_file():
                t0 = time.perf_counter()
                index = faiss.read_index(str(path))
                index.nprobe = plan["nprobe"]
                return cls(corpus, plan, index, {"load_s": time.perf_counter() - t0}, key=key, reused=True)
        built = cls.build(corpus, plan, seed=seed, threads=threads)
        if cache_dir is not None and plan["kind"] != "flat":
            built.save(cache_dir)
        return built

    def save(self, cache_dir: str | os.PathLike) -> Path:
        d = Path(cache_dir)
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{self.key}.faiss"
        tmp = d / f".{self.key}.{os.getpid()}.tmp"
        faiss.write_index(self.index, str(tmp))
        os.replace(tmp, path)  # atomic: a killed save leaves no half index under the final name
        from roz.engine.store import atomic_write_json

        atomic_write_json(path.with_suffix(".json"), {"format": INDEX_FORMAT, "key": self.key, "plan": self.plan,
                                                      "timing": self.timing})
        return path

    def search(self, queries: np.ndarray, k: int = 1, *, rerank: int = DEFAULT_RERANK, batch: int = 1024,
               threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(cosine float32[M, k], ids int64[M, k])`` best first; the cosines are exact (float16 corpus
        vectors); id -1 / cosine -inf where the corpus has fewer than ``k`` candidates."""
        q = _f32(queries)
        if q.ndim != 2 or (len(q) and q.shape[1] != self.corpus.dim):
            raise RozError(f"queries have shape {q.shape}, the corpus has {self.corpus.dim}-d vectors",
                           hint="embed the test images with the corpus's encoder")
        kk = max(k, rerank if not self.plan["exact"] else k)
        sims = np.full((len(q), k), -np.inf, np.float32)
        ids = np.full((len(q), k), -1, np.int64)
        with faiss_threads(threads):
            for s in range(0, len(q), batch):
                _, cand = self.index.search(q[s:s + batch], min(kk, max(1, self.corpus.n)))
                sims[s:s + batch], ids[s:s + batch] = self._rerank(q[s:s + batch], cand, k)
        return sims, ids

    def _rerank(self, q: np.ndarray, cand: np.ndarray, k: int):
        valid = cand >= 0
        flat = np.unique(cand[valid])
        vecs = _f32(self.corpus.take(flat)) if len(flat) else np.zeros((0, q.shape[1]), np.float32)
        pos = np.searchsorted(flat, np.where(valid, cand, flat[0] if len(flat) else 0))
        exact = np.einsum("qd,qcd->qc", q, vecs[pos]) if len(flat) else np.zeros(cand.shape, np.float32)
        exact = np.where(valid, exact, -np.inf)
        order = np.argsort(-exact, axis=1, kind="stable")[:, :k]
        s = np.take_along_axis(exact, order, 1).astype(np.float32)
        i = np.where(np.isfinite(s), np.take_along_axis(cand, order, 1), -1)
        if s.shape[1] < k:
            s = np.pad(s, ((0, 0), (0, k - s.shape[1])), constant_values=-np.inf)
            i = np.pad(i, ((0, 0), (0, k - i.shape[1])), constant_values=-1)
        return s, i.astype(np.int64)

    def describe(self) -> dict:
        return {**self.plan, "index": "faiss.IndexFlatIP" if self.plan["exact"] else "faiss.IndexIVFPQ",
                "metric": "cosine (L2-normalised inner product)", "rerank": "exact, float16 corpus vectors",
                "key": self.key, "reused": self.reused, "timing_s": self.timing}


def index_key(corpus, plan: dict, seed: int) -> str:
    blob = json.dumps({"corpus": corpus.fingerprint(), "plan": {k: v for k, v in plan.items() if k != "formula"},
                       "seed": seed, "faiss": faiss.__version__}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]
