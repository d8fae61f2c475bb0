"""Two-stage near-duplicate detection between a test set and a pretraining corpus.

Stage 1, retrieval (as in the CLIP paper's overlap analysis, Radford et al. 2021, Sec. 5): every
test image's ``k`` nearest corpus images under a cheap, exhaustive kNN.
Stage 2, decision: a test image is a duplicate iff its best candidate's ``similarity`` is at
least ``threshold``. The best candidate is reported as ``corpus_file`` in any case.

Methods (``method=``):

* ``"phash"`` (default) / ``"dhash"``: 64-bit perceptual hashes, exact Hamming kNN
  (``faiss.IndexBinaryFlat``). The test image is hashed at ``A`` alignment variants (identity plus
  crops of ``crops`` fractions at 9 positions each, ``hashing.alignment_boxes``) because a 64-bit
  hash alone moves 10-20 bits under a 4 % crop+rescale; the candidates are the union of the
  variants' ``k`` nearest. ``verify="ncc"`` (default) then decides on pixels: ``similarity`` =
  the best normalised cross-correlation (Pearson r over pixels and channels jointly) between a
  test variant's RGB thumbnail and a candidate's (the 32x32 thumbnails 2x2-averaged to 16x16,
  ``ncc_pool``, which tolerates JPEG noise and blur), maximised over variants and candidates —
  invariant to a global brightness/contrast change and far more discriminative than 64 bits
  (colour included: luma alone matched same-layout, different-colour images). ``verify=None`` decides on the hash
  alone: ``similarity = 1 - hamming / 64`` (min over variants).
* ``"embedding"``: features from an image encoder (``embed.py``; default the training-free
  ``TinyImageEncoder``), cosine kNN (``index.CosineIndex``), ``similarity`` = cosine of the
  nearest corpus image. No alignment variants (trained encoders are largely crop-invariant).

Default thresholds (``DEFAULT_THRESHOLDS``) were set on the planted-duplicate fixture of
``tests/overlap`` (64x64 random shapes/textures, ROZ-Mini's ``near_duplicate`` alterations; 20k
corpus images: planted r >= 0.985, clean r <= 0.962) and checked on ROZ-Mini's planted
duplicates (mini-r: planted r >= 0.963, others <= 0.921); for
``embedding`` there is no model-free default, so ``threshold=None`` calibrates on synthetic
alterations of corpus images (``calibrate.calibrate_synthetic``) at precision 0.99.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from roz.errors import DataError
from roz.overlap import hashing
from roz.overlap.index import CosineIndex, HammingIndex

METHODS = ("phash", "dhash", "embedding")
DEFAULT_CROPS = (0.03, 0.06)
DEFAULT_K = 8  # Hamming neighbours per alignment variant
DEFAULT_NCC_POOL = 2  # the pixel check runs on 2x2-averaged thumbnails (16x16x3)
DEFAULT_N_VERIFY = 16  # distinct candidates per test image checked on pixels (closest by Hamming first)
# hash + ncc: Pearson r of 32x32 luma thumbnails; hash only: 1 - hamming/64 (>= 0.875 <=> <= 8 bits)
DEFAULT_THRESHOLDS = {("phash", "ncc"): 0.94, ("dhash", "ncc"): 0.94, ("phash", None): 1 - 8 / 64,
                      ("dhash", None): 1 - 8 / 64}
COLUMNS = ["test_index", "test_file", "corpus_index", "corpus_file", "similarity", "hamming", "is_duplicate", "ok"]


def _standardize(thumbs: np.ndarray, pool: int = 1) -> np.ndarray:
    """uint8[..., 32, 32, 3] -> float32[..., 3072], zero mean, unit L2 norm over all pixels *and*
    channels jointly (invariant to a global brightness gain/offset, but colour casts still
    count; flat images: zeros)."""
    x = thumbs.astype(np.float32)
    if pool > 1:  # box-average pool x pool pixel blocks (less sensitive to JPEG noise and blur)
        h, w = x.shape[-3] // pool, x.shape[-2] // pool
        x = x.reshape(*x.shape[:-3], h, pool, w, pool, 3).mean(axis=(-4, -2))
    x = x.reshape(*x.shape[:-3], -1)
    x -= x.mean(-1, keepdims=True)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(n < 1e-3, np.inf, n)


def _bmm_max(t: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``max_a <t[b, a], c[b, j]>`` for all b, j. torch.bmm on one thread: on a shared machine a
    multi-threaded BLAS call here was measured 20x slower than a single-threaded one."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        r = torch.bmm(torch.from_numpy(t), torch.from_numpy(c).transpose(1, 2))
        return r.amax(1).numpy()
    finally:
        torch.set_num_threads(old)


def _unique_candidates(d: np.ndarray, i: np.ndarray, n: int) -> np.ndarray:
    """Per row: the first ``n`` distinct ids in order of increasing distance (-1 padded)."""
    order = np.argsort(d, axis=1, kind="stable")
    ids = np.take_along_axis(i, order, axis=1)
    out = np.full((len(ids), n), -1, np.int64)
    for r, row in enumerate(ids):
        u = list(dict.fromkeys(int(x) for x in row if x >= 0))[:n]
        out[r, :len(u)] = u
    return out


class OverlapDetector:
    """Index a corpus once (``fit``), then query any number of test sets (``query``)."""

    def __init__(self, method: str = "phash", *, verify: str | None = "auto", encoder=None, k: int = DEFAULT_K,
                 crops: Sequence[float] = DEFAULT_CROPS, workers: int | None = None, on_bad_image: str = "skip",
                 embed_kwargs: dict | None = None, index_kind: str = "auto", n_verify: int = DEFAULT_N_VERIFY,
                 ncc_pool: int = DEFAULT_NCC_POOL):
        if method not in METHODS:
            raise DataError(f"unknown overlap method {method!r}; expected one of {METHODS}")
        if verify == "auto":
            verify = "ncc" if method in hashing.HASH_METHODS else None
        if verify not in (None, "ncc") or (verify and method not in hashing.HASH_METHODS):
            raise DataError(f"verify={verify!r} is not available for method {method!r} (ncc: hash methods only)")
        self.method, self.verify, self.encoder, self.k = method, verify, encoder, int(k)
        self.n_verify = int(n_verify)
        self.ncc_pool = int(ncc_pool)
        self.crops = tuple(crops) if method in hashing.HASH_METHODS else ()
        self.workers, self.on_bad_image = workers, on_bad_image
        self.embed_kwargs, self.index_kind = dict(embed_kwargs or {}), index_kind
        self.corpus_paths: list[Path] = []
        self.timing: dict[str, float] = {}

    # -- features ---------------------------------------------------------------------------
    def _features(self, paths, crops):
        """-> (feature dict, ok). Hash: codes [N, A, 8] + thumbs [N, A, 32, 32, 3]; embedding: feats [N, D]."""
        if self.method in hashing.HASH_METHODS:
            thumbs, ok = hashing.load_thumbnails(paths, crops=crops, workers=self.workers, on_bad_image=self.on_bad_image)
            return {"thumbs": thumbs, "codes": hashing.hash_thumbnails(thumbs, self.method)}, ok
        from roz.overlap.embed import embed_files

        feats, ok = embed_files(paths, self.encoder, workers=self.workers, on_bad_image=self.on_bad_image,
                                **self.embed_kwargs)
        return {"feats": feats}, ok

    def features_pil(self, images, *, test_side: bool):
        """Features of in-memory PIL images (for calibration), same layout as ``_features``."""
        if self.method in hashing.HASH_METHODS:
            boxes = hashing.alignment_boxes(self.crops if test_side else ())
            thumbs = np.stack([hashing.thumbnails_pil(im, boxes) for im in images])
            return {"thumbs": thumbs, "codes": hashing.hash_thumbnails(thumbs, self.method)}
        import torch

        from roz.overlap.embed import TinyImageEncoder, _to_tensor, embed_tensor, encoder_input_size

        enc = self.encoder if self.encoder is not None else TinyImageEncoder()
        kw = self.embed_kwargs
        size = int(kw.get("input_size") or encoder_input_size(enc))
        x = torch.stack([_to_tensor(im.convert("RGB"), size) for im in images]).float().div_(255.0)
        return {"feats": embed_tensor(x, enc, mean=kw.get("mean"), std=kw.get("std"))}

    # -- corpus -----------------------------------------------------------------------------
    def fit(self, corpus_paths: Sequence[str | os.PathLike]) -> "OverlapDetector":
        t0 = time.perf_counter()
        self.calibration = None
        self.corpus_paths = [Path(p) for p in corpus_paths]
        feats, ok = self._features(self.corpus_paths, ())
        self.timing["corpus_features_s"] = time.perf_counter() - t0
        self._set_corpus(feats, ok)
        self.timing["corpus_index_s"] = time.perf_counter() - t0 - self.timing["corpus_features_s"]
        return self

    def corpus_features(self, corpus_paths: Sequence[str | os.PathLike]) -> tuple[dict, np.ndarray]:
        """The corpus side's features and ok mask, as :meth:`fit` computes them (for a cache)."""
        return self._features([Path(p) for p in corpus_paths], ())

    def fit_features(self, corpus_paths: Sequence[str | os.PathLike], feats: dict, ok) -> "OverlapDetector":
        """:meth:`fit` with corpus features computed earlier by :meth:`corpus_features`."""
        self.calibration = None
        self.corpus_paths = [Path(p) for p in corpus_paths]
        self._set_corpus(feats, ok)
        return self

    def _set_corpus(self, feats: dict, ok: np.ndarray):
        self.corpus_ok = np.asarray(ok, dtype=bool)
        self.corpus_ids = np.flatnonzero(self.corpus_ok)  # index row -> corpus position
        self.corpus_feats = feats
        if self.method in hashing.HASH_METHODS:
            self.index = HammingIndex(feats["codes"][self.corpus_ids, 0])
            if self.verify == "ncc":  # standardised (pooled) corpus thumbnails, float32 [N, 3 * (32 / pool)^2]
                self._cvec = np.concatenate([_standardize(feats["thumbs"][s:s + 4096, 0], self.ncc_pool)
                                             for s in range(0, len(feats["thumbs"]), 4096)]) \
                    if len(feats["thumbs"]) else np.zeros((0, 3 * (hashing.PHASH_SIZE // self.ncc_pool) ** 2), np.float32)
        else:
            self.index = CosineIndex(feats["feats"][self.corpus_ids], kind=self.index_kind)

    # -- queries ----------------------------------------------------------------------------
    def score(self, feats: dict, ok: np.ndarray, batch: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Best candidate per query: ``(corpus position int64 (-1: none), similarity float64, hamming int32 (-1: n/a))``."""
        n = len(ok)
        best = np.full(n, -1, np.int64)
        sim = np.full(n, -np.inf)
        ham = np.full(n, -1, np.int32)
        q = np.flatnonzero(ok)
        if len(q) == 0 or len(self.corpus_ids) == 0:
            return best, sim, ham
        if self.method == "embedding":
            s, i = self.index.search(feats["feats"][q], 1)
            good = i[:, 0] >= 0
            best[q[good]] = self.corpus_ids[i[good, 0]]
            sim[q[good]] = s[good, 0]
            return best, sim, ham
        codes = feats["codes"][q]  # [M, A, 8]
        m, a = codes.shape[:2]
        d, i = self.index.search(codes.reshape(m * a, -1), self.k)
        d, i = d.reshape(m, a * self.k), i.reshape(m, a * self.k)
        ham[q] = d.min(1)
        if self.verify is None:
            j = d.argmin(1)
            best[q] = self.corpus_ids[i[np.arange(m), j]]
            sim[q] = 1.0 - ham[q] / hashing.HASH_BITS
            return best, sim, ham
        i = _unique_candidates(d, i, self.n_verify)  # [M, n_verify] index rows, -1 padded
        for s0 in range(0, m, batch):
            ii = i[s0:s0 + batch]  # [B, C] index rows (-1: none)
            valid = ii >= 0
            cpos = self.corpus_ids[np.where(valid, ii, 0)]
            t = _standardize(feats["thumbs"][q[s0:s0 + batch]], self.ncc_pool)  # [B, A, D]
            c = self._cvec[cpos]  # [B, C, D]
            r = _bmm_max(t, c)  # [B, C]: best over variants
            r = np.where(valid, r, -np.inf)
            j = r.argmax(1)
            rows = np.arange(len(ii))
            best[q[s0:s0 + batch]] = cpos[rows, j]
            sim[q[s0:s0 + batch]] = r[rows, j]
        return best, sim, ham

    def default_threshold(self) -> float | None:
        return DEFAULT_THRESHOLDS.get((self.method, self.verify))

    def test_features(self, test_paths: Sequence[str | os.PathLike]) -> tuple[dict, np.ndarray]:
        """The test side's features and ok mask, as :meth:`query` computes them (for a cache)."""
        return self._features([Path(p) for p in test_paths], self.crops)

    def query(self, test_paths: Sequence[str | os.PathLike], threshold: float | None = None,
              features: tuple[dict, np.ndarray] | None = None) -> pd.DataFrame:
        """The duplicates table (one row per test image, ``COLUMNS``); protocol in ``df.attrs``.
        ``features``: the test side's ``(features, ok)`` from :meth:`test_features`, if computed before."""
        if not hasattr(self, "index"):
            raise DataError("OverlapDetector.query before fit(corpus_paths)")
        threshold_source = "given"
        if threshold is None:
            threshold = self.default_threshold()
            threshold_source = "default"
            if threshold is None:  # calibrated once per fitted corpus, then reused
                from roz.overlap.calibrate import calibrate_synthetic

                if getattr(self, "calibration", None) is None:
                    self.calibration = calibrate_synthetic(self)
                threshold, threshold_source = self.calibration["threshold"], "calibrated (synthetic, precision>=0.99)"
        test_paths = [Path(p) for p in test_paths]
        t0 = time.perf_counter()
        feats, ok = features if features is not None else self._features(test_paths, self.crops)
        t1 = time.perf_counter()
        best, sim, ham = self.score(feats, ok)
        t2 = time.perf_counter()
        self.timing.update(test_features_s=t1 - t0, query_s=t2 - t1)
        df = pd.DataFrame({
            "test_index": np.arange(len(test_paths), dtype=np.int64),
            "test_file": [str(p) for p in test_paths],
            "corpus_index": best,
            "corpus_file": [str(self.corpus_paths[b]) if b >= 0 else "" for b in best],
            "similarity": np.where(np.isfinite(sim), sim, np.nan),
            "hamming": ham,
            "is_duplicate": np.isfinite(sim) & (sim >= threshold),
            "ok": ok,
        })
        df.attrs["protocol"] = self.describe(threshold, threshold_source)
        df.attrs["skipped_test_files"] = [str(test_paths[i]) for i in np.flatnonzero(~ok)]
        df.attrs["skipped_corpus_files"] = [str(self.corpus_paths[i]) for i in np.flatnonzero(~self.corpus_ok)]
        return df

    def describe(self, threshold=None, threshold_source=None) -> dict:
        d = {"method": self.method, "verify": self.verify, "threshold": threshold, "threshold_source": threshold_source,
             "decision": "similarity >= threshold", "k": self.k, "n_verify": self.n_verify if self.verify else None,
             "ncc_pool": self.ncc_pool if self.verify else None, "alignment_crops": list(self.crops),
             "n_alignment_variants": len(hashing.alignment_boxes(self.crops)), "n_corpus": len(self.corpus_paths),
             "n_corpus_indexed": int(len(getattr(self, "corpus_ids", []))), "timing_s": dict(self.timing)}
        if hasattr(self, "index"):
            d["index"] = self.index.describe()
        if self.method in hashing.HASH_METHODS:
            d["hash"] = hashing.hash_protocol(self.method)
            d["similarity"] = (f"max Pearson r of {hashing.PHASH_SIZE // self.ncc_pool}x{hashing.PHASH_SIZE // self.ncc_pool} RGB thumbnails "
                               "(joint over channels) over alignment variants x candidates"
                               if self.verify == "ncc" else "1 - hamming/64 (min over alignment variants)")
        else:
            from roz.overlap.embed import TinyImageEncoder, describe_encoder

            d["embedding"] = describe_encoder(self.encoder if self.encoder is not None else TinyImageEncoder())
            d["similarity"] = "cosine of L2-normalised embeddings"
        return d


def find_overlap(test_paths: Sequence[str | os.PathLike], corpus_paths: Sequence[str | os.PathLike],
                 method: str = "phash", threshold: float | None = None, **kwargs) -> pd.DataFrame:
    """Near-duplicates of ``test_paths`` in ``corpus_paths``: one row per test image with columns
    ``test_index, test_file, corpus_index, corpus_file, similarity, hamming, is_duplicate, ok``.

    ``threshold`` is on ``similarity`` (higher = more similar; ``None``: the method's default).
    ``kwargs`` go to ``OverlapDetector`` (``verify``, ``encoder``, ``k``, ``crops``, ``workers``,
    ``on_bad_image``, ``embed_kwargs``, ``index_kind``). Undecodable files (``on_bad_image='skip'``)
    get ``ok=False``, no match and ``is_duplicate=False``; they are listed in ``df.attrs``.
    """
    return OverlapDetector(method, **kwargs).fit(corpus_paths).query(test_paths, threshold)


def list_images(root: str | os.PathLike) -> list[Path]:
    """Every image file under ``root`` (recursive, sorted, hidden files skipped)."""
    from roz.datasets.images import is_image_file

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"overlap: corpus directory {root} does not exist")
    out = sorted(p for p in root.rglob("*") if p.is_file() and is_image_file(p.name)
                 and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not out:
        raise DataError(f"overlap: no image files under {root}")
    return out
