"""Exact and approximate (IVF-PQ) search with exact float16 re-ranking; the index plan; reuse."""

from __future__ import annotations

import numpy as np
import pytest

from roz.errors import RozError
from roz.overlap.search import EXACT_MAX, ArrayVectors, VectorIndex, plan_index


def _clustered(n, d, rng):
    centres = rng.standard_normal((n // 20, d)).astype(np.float32)
    x = centres[np.arange(n) % len(centres)] + 0.6 * rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_plan_follows_the_documented_formula():
    assert plan_index(EXACT_MAX, 512)["kind"] == "flat"
    p = plan_index(1_000_000, 512, memory_budget=8 * 2 ** 30)
    assert (p["kind"], p["nlist"], p["m"], p["nprobe"], p["train_size"]) == ("ivfpq", 1024, 64, 16, 65536)
    assert plan_index(1_000_000, 512, memory_budget=30 * 2 ** 20)["m"] == 16  # 1e6 * (16 + 8) * 1.05 = 25.2 MB
    assert plan_index(400_000_000, 768, memory_budget=64 * 2 ** 30)["nlist"] == 16384
    with pytest.raises(RozError, match="needs at least"):
        plan_index(1_000_000, 512, memory_budget=2 ** 20)


def test_ivfpq_finds_planted_near_duplicates_with_exact_cosines_and_is_reused(tmp_path):
    rng = np.random.default_rng(0)
    corpus = _clustered(6000, 64, rng)
    src = rng.choice(len(corpus), 50, replace=False)
    noise = rng.standard_normal((50, 64)).astype(np.float32)
    q = corpus[src] + 0.15 * noise / np.linalg.norm(noise, axis=1, keepdims=True)
    vecs = ArrayVectors(corpus, shard_rows=1000)
    exact = VectorIndex.build(vecs, plan_index(vecs.n, vecs.dim, kind="flat"))
    s_ex, i_ex = exact.search(q, 3)
    assert (i_ex[:, 0] == src).all()
    approx = VectorIndex.load_or_build(vecs, tmp_path / "idx", kind="ivfpq", memory_budget=2 ** 24)
    assert approx.plan["kind"] == "ivfpq" and not approx.reused
    s, i = approx.search(q, 3)
    assert (i[:, 0] == src).mean() >= 0.98
    ql = q / np.linalg.norm(q, axis=1, keepdims=True)
    c16 = corpus[i].astype(np.float16).astype(np.float32)
    true = np.einsum("qd,qkd->qk", ql, c16 / np.linalg.norm(c16, axis=2, keepdims=True))
    np.testing.assert_allclose(s, true, atol=1e-5)  # re-ranked: exact cosines, best first
    assert (np.diff(s, axis=1) <= 1e-7).all()
    again = VectorIndex.load_or_build(vecs, tmp_path / "idx", kind="ivfpq", memory_budget=2 ** 24)
    assert again.reused and again.key == approx.key
    np.testing.assert_array_equal(again.search(q, 3)[1], i)
    other = VectorIndex.load_or_build(ArrayVectors(corpus[::-1].copy()), tmp_path / "idx", kind="ivfpq",
                                      memory_budget=2 ** 24)
    assert not other.reused  # another corpus: another key


def test_search_refuses_queries_of_another_dimension():
    idx = VectorIndex.build(ArrayVectors(np.eye(8, dtype=np.float32)))
    with pytest.raises(RozError, match="8-d"):
        idx.search(np.ones((2, 4), np.float32))
    s, i = idx.search(np.eye(8, dtype=np.float32)[:2], 10)
    assert (i[:, 8:] == -1).all() and np.isinf(s[:, 8:]).all()
