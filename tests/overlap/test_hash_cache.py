"""The pHash detector hashes a corpus (and a test set) once per state of its files and reads the codes back after."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from roz.overlap import pipeline
from roz.overlap.corpus import open_corpus


def _images(root, n, seed):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / f"{i:03d}.png")
    return sorted(root.glob("*.png"))


def test_corpus_hashes_are_cached_and_follow_the_corpus(tmp_path, monkeypatch):
    monkeypatch.setenv("ROZ_HOME", str(tmp_path / "home"))
    corpus_dir = tmp_path / "corpus"
    paths = _images(corpus_dir, 12, 0)
    _images(tmp_path / "test", 12, 0)  # the same 12 images: every test image is in the corpus
    test = pipeline.ImageSet(tmp_path / "test")
    from roz.overlap.detect import OverlapDetector

    calls = []

    real, real_test = OverlapDetector.corpus_features, OverlapDetector.test_features
    monkeypatch.setattr(OverlapDetector, "corpus_features", lambda self, p: calls.append(len(p)) or real(self, p))
    monkeypatch.setattr(OverlapDetector, "test_features", lambda self, p: calls.append(-len(p)) or real_test(self, p))

    first, _ = pipeline.phash_detect({"t": test}, open_corpus(corpus_dir), threshold=None, log=lambda m: None)
    again, _ = pipeline.phash_detect({"t": test}, open_corpus(corpus_dir), threshold=None, log=lambda m: None)
    assert calls == [12, -12]  # corpus and test side hashed once, read from the cache the second time
    assert first["t"].equals(again["t"]) and int(first["t"]["is_duplicate"].sum()) == 12

    # a changed corpus file is a new corpus state: hashed again, and the result follows it
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(paths[0])
    os.utime(paths[0], ns=(1, 1))
    changed, _ = pipeline.phash_detect({"t": test}, open_corpus(corpus_dir), threshold=None, log=lambda m: None)
    assert calls == [12, -12, 12]  # only the changed corpus is hashed again
    assert not changed["t"]["is_duplicate"][0] and int(changed["t"]["is_duplicate"].sum()) == 11
