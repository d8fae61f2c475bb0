"""``roz overlap detect``: test sets x a pretraining corpus -> duplicates tables, clean manifests and
``overlap.json`` in a run directory, all written through the result store.

Detectors: ``embedding`` (the paper's method: cosine similarity of a named CLIP image encoder's
embeddings, ``--encoder openclip:RN50x16@openai`` by default, any corpus format; the corpus is
embedded once into resumable shards, or read precomputed) and ``phash`` (perceptual hash + pixel
check, image-file corpora). The threshold is given, or calibrated (``calibrate_embedding``; pHash:
its default). ``overlap.json`` (format :data:`FORMAT`, see docs/overlap.md) holds one entry per test
set plus the reserved keys :data:`RESERVED`.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pandas as pd

from roz.errors import DataError, RozError
from roz.overlap.calibrate import alter_image, evaluate_detection, load_ground_truth, pick_threshold
from roz.overlap.clean import build_manifest
from roz.overlap.corpus import EmbeddingCorpus, decode, open_corpus

FORMAT = "roz-overlap/2"
RESERVED = ("format", "protocol", "er", "gallery", "comparisons")
DETECTORS = ("embedding", "phash")


class ImageSet:
    """A test set given as an image folder without labels (``path(i)``, ``samples``, ``name``, ``root``):
    what detection needs. Sample ``i`` is the ``i``-th image in sorted path order, as an
    ImageNet-style folder's samples are (``<wnid>/<file>`` sorted)."""

    def __init__(self, root, name: str | None = None):
        from roz.overlap.detect import list_images

        self.root = Path(root)
        self.name = name or self.root.name
        self.paths = list_images(self.root)
        self.samples = [(str(p.relative_to(self.root)), -1) for p in self.paths]

    def __len__(self):
        return len(self.paths)

    def path(self, i: int) -> Path:
        return self.paths[i]


def cache_root(corpus, encoder_key: str, cache_dir=None) -> Path:
    """The cache folder of ``corpus`` embedded by an encoder (``encoder_key``: its
    :attr:`~roz.overlap.encoders.ImageEncoder.cache_key`, which names its weights)."""
    from roz.paths import roz_home

    key = hashlib.sha256(f"{corpus.fingerprint()}\0{encoder_key}".encode()).hexdigest()[:16]
    return Path(cache_dir) if cache_dir else roz_home() / "overlap" / key


def _embed_images(encoder, paths, batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
    feats = np.zeros((len(paths), encoder.dim), np.float32)
    ok = np.zeros(len(paths), bool)
    for s in range(0, len(paths), batch):
        imgs, idx = [], []
        for i in range(s, min(len(paths), s + batch)):
            try:
                imgs.append(decode(paths[i]))
                idx.append(i)
            except DataError:
                pass
        if imgs:
            feats[idx] = encoder.embed(imgs)
            ok[idx] = True
    return feats, ok


def calibrate_embedding(encoder, index, corpus, images, *, n_neg: int = 1000, target_precision: float = 0.99,
                        seed: int = 0) -> dict:
    """Threshold from synthetic positives and corpus negatives (``calibrate.calibrate_synthetic``'s
    protocol on embeddings): positives = cosine between an image and its altered copy
    (``alter_image``); negatives = a sampled corpus vector's cosine to its nearest *other* corpus
    vector (as if its own image were removed). Corpus images that are near-copies of each other
    count as negatives, so the threshold errs high (fewer false duplicates)."""
    rng = np.random.default_rng(seed)
    orig = encoder.embed(images)
    alt = encoder.embed([alter_image(im, rng) for im in images])
    pos = (orig * alt).sum(1)
    ids = np.sort(rng.choice(corpus.n, size=min(n_neg, corpus.n), replace=False))
    sims, nn = index.search(corpus.take(ids).astype(np.float32), 2)
    neg = np.where(nn[:, 0] == ids, sims[:, 1], sims[:, 0])
    neg = neg[np.isfinite(neg)]
    out = pick_threshold(np.r_[pos, neg], np.r_[np.ones(len(pos), bool), np.zeros(len(neg), bool)], target_precision)
    out = {k: v for k, v in out.items() if k != "curve"}  # the precision/recall curve: a DataFrame, not recorded
    out.update(source="synthetic (altered copies vs corpus nearest-other neighbours)", n_pos=len(pos),
               n_neg=len(neg), seed=seed, target_precision=target_precision)
    return out


def _corpus_embeddings(corpus, encoder, cache: Path, log) -> EmbeddingCorpus:
    from roz.overlap.encoders import check_compatible
    from roz.overlap.shards import embed_corpus

    if isinstance(corpus, EmbeddingCorpus):
        if not corpus.encoder:
            raise RozError(f"the precomputed embeddings under {corpus.root} do not say which encoder made them",
                           hint="pass --corpus-encoder SPEC (LAION-400M's: openclip:ViT-B-32@openai)")
        check_compatible(encoder.info(), corpus.info(), " between the test side and the corpus")
        return corpus
    log(f"embedding the corpus into {cache / 'embeddings'} (resumable)")
    return embed_corpus(corpus, encoder, cache / "embeddings", log=log)


def _calibration_images(corpus, test_sets, n: int = 100) -> list:
    if hasattr(corpus, "records"):
        out = []
        for _, src, _ in corpus.records():
            try:
                out.append(corpus.load(src))
            except DataError:
                continue
            if len(out) >= n:
                break
        return out
    paths = [p for ds in test_sets.values() for p in (ds.path(i) for i in range(len(ds)))][:n]
    return [decode(p) for p in paths]


def embedding_detect(test_sets: dict, corpus, encoder, *, threshold: float | None, cache_dir=None,
                     memory_budget: int | None = None, index_kind: str = "auto", target_precision: float = 0.99,
                     seed: int = 0, log=print) -> tuple[dict, dict]:
    """-> ({split: duplicates DataFrame}, protocol)."""
    from roz.overlap.search import DEFAULT_BUDGET, VectorIndex

    t0 = time.perf_counter()
    cache = cache_root(corpus, encoder.cache_key, cache_dir)
    emb = _corpus_embeddings(corpus, encoder, cache, log)
    index = VectorIndex.load_or_build(emb, cache / "index", memory_budget=memory_budget or DEFAULT_BUDGET,
                                      kind=index_kind, seed=seed)
    calibration = None
    if threshold is None:
        calibration = calibrate_embedding(encoder, index, emb, _calibration_images(corpus, test_sets), seed=seed,
                                          target_precision=target_precision)
        threshold = calibration["threshold"]
    out = {}
    for split, ds in test_sets.items():
        paths = [ds.path(i) for i in range(len(ds))]
        feats, ok = _embed_images(encoder, paths)
        sims, ids = index.search(feats[ok], 1)
        sim = np.full(len(paths), np.nan)
        best = np.full(len(paths), -1, np.int64)
        sim[ok], best[ok] = sims[:, 0], ids[:, 0]
        meta = emb.metadata(best[best >= 0]) if (best >= 0).any() else []
        it = iter(meta)
        rows = [next(it) if b >= 0 else {"key": "", "caption": "", "image_path": ""} for b in best]
        out[split] = pd.DataFrame({
            "test_index": np.arange(len(paths), dtype=np.int64), "test_file": [str(p) for p in paths],
            "corpus_index": best, "corpus_file": [r["image_path"] or r["key"] for r in rows],
            "corpus_key": [r["key"] for r in rows], "corpus_caption": [r["caption"] for r in rows],
            "similarity": sim, "hamming": np.full(len(paths), -1, np.int32),
            "is_duplicate": np.nan_to_num(sim, nan=-np.inf) >= threshold, "ok": ok})
    protocol = {"method": "embedding", "encoder": encoder.info(), "threshold": float(threshold),
                "threshold_source": "given" if calibration is None else "calibrated",
                "decision": "cosine(test, nearest corpus embedding) >= threshold", "index": index.describe(),
                "corpus": {**(corpus.describe()), "n_embedded": emb.n, "embeddings": str(emb.root)},
                "similarity": "cosine of L2-normalised embeddings (exact, float16 corpus vectors)",
                "seconds": time.perf_counter() - t0}
    if calibration is not None:
        protocol["calibration"] = calibration
    return out, protocol


def phash_detect(test_sets: dict, corpus, *, threshold: float | None, log=print) -> tuple[dict, dict]:
    from roz.overlap.detect import OverlapDetector

    if not hasattr(corpus, "paths"):
        raise RozError(f"the phash detector needs image files; the corpus is {corpus.kind}",
                       hint="use --detector embedding for webdataset shards and precomputed embeddings")
    t0 = time.perf_counter()
    det = OverlapDetector("phash")
    det.fit_features(corpus.paths, *_cached_hash_features(det, corpus.paths, "corpus", log))
    out = {}
    for split, ds in test_sets.items():
        paths = [ds.path(i) for i in range(len(ds))]
        out[split] = det.query(paths, threshold, features=_cached_hash_features(det, paths, "test", log))
    first = next(iter(out.values()), None)
    protocol = dict(first.attrs.get("protocol", {})) if first is not None else det.describe()
    protocol.update(corpus=corpus.describe(), seconds=time.perf_counter() - t0)
    return out, protocol


def _cached_hash_features(det, paths, side: str, log) -> tuple[dict, np.ndarray]:
    """Hash codes and thumbnails of ``paths`` (``side``: ``corpus`` or ``test``, which crop
    differently), computed once per state of the files (names, sizes, mtimes) and hash protocol,
    then read from ``$ROZ_HOME/overlap/<key>/hash-features.npz`` (written atomically). A cache,
    not a result: deleting it only costs the hashing again."""
    import json
    import os

    from roz.overlap.corpus import _fingerprint
    from roz.overlap.hashing import hash_protocol
    from roz.paths import roz_home

    crops = list(det.crops) if side == "test" else []
    proto = json.dumps({**hash_protocol(det.method), "side": side, "crops": crops}, sort_keys=True)
    key = hashlib.sha256(f"{_fingerprint(paths)}\0{proto}".encode()).hexdigest()[:16]
    path = roz_home() / "overlap" / f"hash-{key}" / "hash-features.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return {"codes": z["codes"], "thumbs": z["thumbs"]}, z["ok"]
    if side == "corpus":
        log(f"hashing the corpus ({len(paths)} images; cached in {path.parent})")
    feats, ok = det.corpus_features(paths) if side == "corpus" else det.test_features(paths)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, codes=feats["codes"], thumbs=feats["thumbs"], ok=np.asarray(ok, bool))
    os.replace(tmp, path)
    return feats, ok


def _truth_for(ground_truth):
    if ground_truth is None or isinstance(ground_truth, pd.DataFrame):
        return ground_truth
    return load_ground_truth(ground_truth)


def detect(test_sets: dict, corpus_path, *, detector: str = "embedding", encoder="openclip:RN50x16@openai",
           threshold: float | None = None, corpus_kind: str = "auto", corpus_encoder: str | None = None,
           cache_dir=None, memory_budget: int | None = None, index_kind: str = "auto", ground_truth=None,
           seed: int = 0, log=print) -> dict:
    """Run one detector on every test set (``{label: EvalDataset}``); returns ``{"duplicates": {split:
    DataFrame}, "manifests": {split: dict}, "detection": {split: dict or None}, "protocol": dict}``."""
    if detector not in DETECTORS:
        raise RozError(f"unknown overlap detector {detector!r}", hint=f"use one of {', '.join(DETECTORS)}")
    bad = [s for s in test_sets if s in RESERVED]
    if bad:
        raise RozError(f"test set label(s) {bad} are reserved keys of overlap.json", hint="rename the test set")
    from roz.overlap.encoders import load_encoder

    corpus = open_corpus(corpus_path, kind=corpus_kind, encoder=corpus_encoder)
    if detector == "embedding":
        dups, prot = embedding_detect(test_sets, corpus, load_encoder(encoder), threshold=threshold,
                                      cache_dir=cache_dir, memory_budget=memory_budget, index_kind=index_kind,
                                      seed=seed, log=log)
    else:
        dups, prot = phash_detect(test_sets, corpus, threshold=threshold, log=log)
    truth = _truth_for(ground_truth)
    detection, manifests = {}, {}
    for split, df in dups.items():
        df.attrs["protocol"] = prot
        manifests[split] = build_manifest(df, test_sets[split], name=split)
        # no ground-truth record names this test set: precision/recall are not measured (not 0)
        has_truth = truth is not None and (split in set(truth["split"]) or not set(truth["split"]) - {""})
        detection[split] = {**evaluate_detection(df, truth, split if split in set(truth["split"]) else None),
                            "split": split} if has_truth else None
    return {"duplicates": dups, "manifests": manifests, "detection": detection, "protocol": prot}
