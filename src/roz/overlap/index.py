"""k-nearest-neighbour search for overlap detection (faiss).

* ``HammingIndex``: exact search over packed binary codes (``faiss.IndexBinaryFlat``). 10k
  queries x 50k 64-bit codes is 5e8 XOR+popcounts: well under a second on one core, so there
  is no approximate binary index here.
* ``CosineIndex``: inner product over L2-normalised float32 embeddings, i.e. cosine similarity.
  ``kind='flat'`` (exact, ``IndexFlatIP``) is the default up to ``IVF_MIN`` corpus vectors; above
  that ``kind='auto'`` switches to ``IndexIVFFlat`` (``nlist ~ 4 sqrt(N)`` k-means cells, trained
  on up to 64 cells' worth of points per cell, searched with ``nprobe`` cells). IVF can miss a
  neighbour that falls in an unprobed cell; the chosen kind and its parameters are in
  ``describe()`` for the run record.
"""

from __future__ import annotations

import contextlib
import math
import os

import faiss
import numpy as np

IVF_MIN = 200_000
# faiss parallelises one search with OpenMP. On a shared, oversubscribed machine OpenMP's
# spin-waiting makes that *slower* than one thread (measured: 6.7 s vs 0.03 s for a 3800 x 750
# binary search at load 15 on 2 cores), so searches run with FAISS_THREADS threads (default 1;
# set ROZ_FAISS_THREADS to change it).
FAISS_THREADS = int(os.environ.get("ROZ_FAISS_THREADS", "1"))


@contextlib.contextmanager
def faiss_threads(n: int | None = None):
    old = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(max(1, int(n or FAISS_THREADS)))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(old)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


class HammingIndex:
    """Exact Hamming kNN over packed codes ``uint8[N, nbytes]``."""

    def __init__(self, codes: np.ndarray):
        codes = np.ascontiguousarray(np.asarray(codes, dtype=np.uint8))
        if codes.ndim != 2:
            raise ValueError(f"codes must be [N, nbytes], got {codes.shape}")
        self.nbits = codes.shape[1] * 8
        self.index = faiss.IndexBinaryFlat(self.nbits)
        if len(codes):
            self.index.add(codes)
        self.ntotal = len(codes)

    def search(self, queries: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """``(distances int32[M, k], ids int64[M, k])``; ids are -1 (distance nbits+1) past ntotal."""
        q = np.ascontiguousarray(np.asarray(queries, dtype=np.uint8))
        m = len(q)
        if m == 0 or self.ntotal == 0:
            return np.full((m, k), self.nbits + 1, np.int32), np.full((m, k), -1, np.int64)
        kk = min(k, self.ntotal)
        with faiss_threads():
            d, i = self.index.search(q, kk)
        if kk < k:
            d = np.pad(d, ((0, 0), (0, k - kk)), constant_values=self.nbits + 1)
            i = np.pad(i, ((0, 0), (0, k - kk)), constant_values=-1)
        return d.astype(np.int32), i.astype(np.int64)

    def describe(self) -> dict:
        return {"index": "faiss.IndexBinaryFlat", "bits": self.nbits, "n": self.ntotal, "exact": True}


class CosineIndex:
    """Cosine kNN over embeddings (normalised here; pass raw features)."""

    def __init__(self, feats: np.ndarray, kind: str = "auto", nlist: int | None = None, nprobe: int = 32,
                 seed: int = 0):
        x = l2_normalize(feats)
        if x.ndim != 2:
            raise ValueError(f"features must be [N, D], got {x.shape}")
        n, d = x.shape
        if kind == "auto":
            kind = "ivf" if n >= IVF_MIN else "flat"
        if kind not in ("flat", "ivf"):
            raise ValueError(f"index kind must be 'auto', 'flat' or 'ivf', got {kind!r}")
        self.kind, self.dim, self.ntotal = kind, d, n
        self.nlist, self.nprobe = None, None
        if kind == "flat":
            self.index = faiss.IndexFlatIP(d)
        else:
            self.nlist = int(nlist or max(1, min(4 * int(math.sqrt(n)), n // 39)))
            self.nprobe = int(min(nprobe, self.nlist))
            quant = faiss.IndexFlatIP(d)
            self.index = faiss.IndexIVFFlat(quant, d, self.nlist, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(seed)
            train = x[rng.choice(n, size=min(n, 64 * self.nlist), replace=False)] if n > 64 * self.nlist else x
            self.index.cp.seed = seed
            with faiss_threads():
                self.index.train(train)
            self.index.nprobe = self.nprobe
            self._quant = quant  # keep alive
        if n:
            with faiss_threads():
                self.index.add(x)

    def search(self, queries: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """``(cosine float32[M, k], ids int64[M, k])``; missing neighbours: id -1, cosine -inf."""
        q = l2_normalize(queries)
        m = len(q)
        if m == 0 or self.ntotal == 0:
            return np.full((m, k), -np.inf, np.float32), np.full((m, k), -1, np.int64)
        with faiss_threads():
            s, i = self.index.search(q, min(k, self.ntotal))
        if s.shape[1] < k:
            s = np.pad(s, ((0, 0), (0, k - s.shape[1])), constant_values=-np.inf)
            i = np.pad(i, ((0, 0), (0, k - i.shape[1])), constant_values=-1)
        s = np.where(i < 0, -np.inf, s).astype(np.float32)
        return s, i.astype(np.int64)

    def describe(self) -> dict:
        if self.kind == "flat":
            return {"index": "faiss.IndexFlatIP", "metric": "cosine (L2-normalised inner product)",
                    "dim": self.dim, "n": self.ntotal, "exact": True}
        return {"index": "faiss.IndexIVFFlat", "metric": "cosine (L2-normalised inner product)", "dim": self.dim,
                "n": self.ntotal, "nlist": self.nlist, "nprobe": self.nprobe, "exact": False}
