"""Which dataset positions a unit covers: its shard, and with ``limit`` a seeded draw.

``limit=N`` draws N positions of the shard at random, **stratified by class** and seeded by the
unit's seed, so the draw is deterministic given (seed, dataset) and every class keeps its share.
Evenly spaced positions (the old rule) alias with any structure that repeats along the sample
order — e.g. a folder whose rendering styles cycle every 3 files gave one style only.

Allocation: each class gets ``floor(N * n_c / n)`` positions, the remaining ones go to the
classes with the largest fractional parts (ties: lower class id first) — the largest-remainder
method. Within a class the positions are a uniform draw without replacement. The result is
sorted, so rows keep the dataset's order.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

LIMIT_DRAW = "seeded class-stratified random draw (largest-remainder allocation), sorted"
_SALT = 0x6C696D6974  # "limit": keeps this stream apart from other seeded draws of the same seed


def shard_positions(n: int, shard: tuple[int, int]) -> list[int]:
    """The contiguous positions of shard ``k`` of ``count``."""
    k, count = shard
    if not (0 <= k < count):
        raise ValueError(f"bad shard {k}/{count}")
    return list(range(k * n // count, (k + 1) * n // count))


def stratified_draw(positions: list[int], classes: list[int], limit: int, seed: int) -> list[int]:
    """``limit`` of ``positions`` (class of each in ``classes``), class-stratified, seeded, sorted."""
    limit = int(limit)
    if limit >= len(positions):
        return list(positions)
    if limit <= 0:
        return []
    by_class: dict[int, list[int]] = {}
    for p, c in zip(positions, classes):
        by_class.setdefault(int(c), []).append(p)
    order = sorted(by_class)
    quota = {c: limit * len(by_class[c]) / len(positions) for c in order}
    take = {c: int(np.floor(q)) for c, q in quota.items()}
    rest = limit - sum(take.values())
    for c in sorted(order, key=lambda c: (-(quota[c] - take[c]), c))[:rest]:
        take[c] += 1
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _SALT])
    out: list[int] = []
    for c in order:
        pool = by_class[c]
        pick = rng.choice(len(pool), size=take[c], replace=False) if take[c] else []
        out.extend(pool[int(i)] for i in pick)
    return sorted(out)


def positions_for(ds, shard: tuple[int, int], limit: int | None, seed: int = 0) -> list[int]:
    """Dataset positions a unit covers: its shard; with ``limit``, a stratified seeded draw of it."""
    pos = shard_positions(len(ds), shard)
    if limit is None or int(limit) >= len(pos):
        return pos
    return stratified_draw(pos, [ds.samples[p][1] for p in pos], int(limit), seed)


def positions_digest(positions: list[int]) -> dict:
    """Count and sha256 of the covered positions, recorded with the unit."""
    h = hashlib.sha256(json.dumps([int(p) for p in positions]).encode()).hexdigest()
    return {"n": len(positions), "sha256": h}
