"""Benchmark: approximate near-duplicate search at the scale of a pretraining-corpus shard.

    PYTHONPATH=src python bench/overlap_search.py [--n 1000000] [--queries 50000] [--threads 2]

Synthetic corpus, clustered like real image embeddings (not uniform noise): unit vectors in two
levels — ``n / 500`` topic centres, 50 sub-centres per topic (cosine ~0.5 between sub-centres of a
topic), 10 corpus vectors per sub-centre (cosine ~0.8 between mates, the typical nearest
*distinct* neighbour of a CLIP embedding), stored float16. 1,000 planted near-duplicates: a corpus
vector rotated to cosine U(0.95, 0.99); the other queries are fresh draws from random sub-centres.

Prints the plan (``roz.overlap.search.plan_index``), build time, search time for all queries (with
the exact float16 re-ranking), memory (index bytes and the process's peak RSS), ``recall=`` — the
fraction of planted pairs found as top-1 among those exact search finds as top-1 — and recall@1
against exact search on a sample of the ordinary queries.
"""

from __future__ import annotations

import argparse
import resource
import time

import faiss
import numpy as np

from roz.overlap.index import faiss_threads, l2_normalize
from roz.overlap.search import DEFAULT_BUDGET, ArrayVectors, VectorIndex, plan_index


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _around(centres: np.ndarray, spread: float, rng) -> np.ndarray:
    """normalise(c + spread * g), g ~ N(0, I/d): cosine to c ~ 1/sqrt(1 + spread^2)."""
    g = rng.standard_normal(centres.shape, dtype=np.float32) / np.sqrt(centres.shape[1])
    return _unit(centres + spread * g)


def make_corpus(n: int, dim: int, rng) -> tuple[np.ndarray, np.ndarray]:
    n_sub = max(1, n // 10)
    topics = _unit(rng.standard_normal((max(1, n_sub // 50), dim), dtype=np.float32))
    subs = _around(topics[rng.integers(0, len(topics), n_sub)], 1.0, rng)
    out = np.empty((n, dim), np.float16)
    sub_of = np.arange(n) % n_sub
    for s in range(0, n, 100_000):
        out[s:s + 100_000] = _around(subs[sub_of[s:s + 100_000]], 0.5, rng)
    return out, subs


def plant(corpus: np.ndarray, n_plant: int, rng) -> tuple[np.ndarray, np.ndarray]:
    src = rng.choice(len(corpus), n_plant, replace=False)
    x = l2_normalize(corpus[src].astype(np.float32))
    u = rng.standard_normal(x.shape, dtype=np.float32)
    u = _unit(u - (u * x).sum(1, keepdims=True) * x)  # orthogonal to x
    cos = rng.uniform(0.95, 0.99, (n_plant, 1)).astype(np.float32)
    return _unit(cos * x + np.sqrt(1 - cos ** 2) * u), src


def exact_top1(corpus: np.ndarray, q: np.ndarray) -> np.ndarray:
    best_s = np.full(len(q), -np.inf, np.float32)
    best_i = np.full(len(q), -1, np.int64)
    for s in range(0, len(corpus), 200_000):
        index = faiss.IndexFlatIP(corpus.shape[1])
        index.add(l2_normalize(corpus[s:s + 200_000].astype(np.float32)))
        d, i = index.search(q, 1)
        better = d[:, 0] > best_s
        best_s[better], best_i[better] = d[better, 0], i[better, 0] + s
    return best_i


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=50_000)
    ap.add_argument("--planted", type=int, default=1_000)
    ap.add_argument("--exact-sample", type=int, default=300, help="ordinary queries checked against exact search")
    ap.add_argument("--threads", type=int, default=1, help="faiss/OpenMP threads (on a shared, loaded machine 1 beats 2)")
    ap.add_argument("--memory-budget-gib", type=float, default=DEFAULT_BUDGET / 2 ** 30)
    ap.add_argument("--kind", default="auto", choices=["auto", "flat", "ivfpq"])
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    t0 = time.perf_counter()
    corpus, subs = make_corpus(a.n, a.dim, rng)
    planted_q, planted_src = plant(corpus, a.planted, rng)
    other = _around(subs[rng.integers(0, len(subs), a.queries - a.planted)], 0.5, rng)
    queries = np.concatenate([planted_q, other]).astype(np.float32)
    print(f"data: corpus {a.n:,} x {a.dim} float16, {a.queries:,} queries ({a.planted:,} planted) "
          f"in {time.perf_counter() - t0:.1f} s", flush=True)
    vecs = ArrayVectors(corpus)
    plan = plan_index(a.n, a.dim, int(a.memory_budget_gib * 2 ** 30), a.kind)
    print("plan:", {k: v for k, v in plan.items() if k != "formula"}, flush=True)
    index = VectorIndex.build(vecs, plan, seed=a.seed, threads=a.threads)
    print(f"build: {index.timing['build_s']:.1f} s (train {index.timing['train_s']:.1f} s, "
          f"add {index.timing['add_s']:.1f} s)", flush=True)
    index_bytes = len(faiss.serialize_index(index.index))
    t1 = time.perf_counter()
    sims, ids = index.search(queries, 1, threads=a.threads)
    search_s = time.perf_counter() - t1
    print(f"search: {len(queries):,} queries in {search_s:.1f} s ({len(queries) / search_s:,.0f} queries/s, "
          f"top-{32 if not plan['exact'] else 1} candidates re-ranked exactly)", flush=True)
    with faiss_threads(a.threads):
        t2 = time.perf_counter()
        ex_planted = exact_top1(corpus, queries[:a.planted])
        sample = a.planted + rng.choice(a.queries - a.planted, min(a.exact_sample, a.queries - a.planted), replace=False)
        ex_other = exact_top1(corpus, queries[sample])
        exact_s = time.perf_counter() - t2
    found_exact = ex_planted == planted_src
    recall = float((ids[:a.planted, 0] == planted_src)[found_exact].mean())
    other_recall = float((ids[sample, 0] == ex_other).mean())
    n_exact = a.planted + len(sample)
    print(f"exact search: {n_exact:,} queries in {exact_s:.1f} s (all {len(queries):,} would take "
          f"~{exact_s * len(queries) / n_exact:.0f} s); exact top-1 is the planted source for "
          f"{int(found_exact.sum())}/{a.planted}", flush=True)
    print(f"memory: index {index_bytes / 2 ** 20:.1f} MiB; corpus vectors (float16) {corpus.nbytes / 2 ** 20:.0f} MiB; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20:.2f} GiB")
    print(f"recall@1 vs exact on {len(sample):,} ordinary queries: {other_recall:.4f}")
    print(f"recall={recall:.4f}  (planted near-duplicates found as top-1; target >= 0.99)")


if __name__ == "__main__":
    main()
