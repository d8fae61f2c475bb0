"""Shards: one large unit computed as several tasks that run in parallel, merged into one result.

A shard is a range ``[start, end)`` of the unit's position list (its dataset positions after the
shard/limit draw). A shard task writes its rows as the unit's checkpoint parts
(:class:`roz.engine.parts.PartLedger`), so the store already holds the merge: once every shard's
parts are in, the unit runs once more, finds every row in its parts, computes nothing, and writes
exactly the record and rows an unsharded run writes (metrics are computed once, over every row).

Shard edges are multiples of ``lcm(batch_size, part_size)``: every batch and every checkpoint part
of a sharded unit is the same as in the unsharded run (attacks start a loader per part; evals one
loader per run of positions), so the per-sample numbers are bit-for-bit the same.

A shard is done when stored parts cover its range (file names only; the merge checks the rows),
so a resumed run computes only the missing shards. Only ``eval`` and ``attack`` units are sharded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyarrow as pa

from roz.engine.kinds import UnitContext
from roz.engine.parts import PartLedger
from roz.errors import DataError

SHARDED_KINDS = ("eval", "attack")


def shard_step(batch_size: int, part_size: int) -> int:
    """Shard edges fall on multiples of this (so batches and parts match an unsharded run)."""
    return math.lcm(max(1, int(batch_size)), max(1, int(part_size)))


def shard_spans(n: int, shard_size: int | None, batch_size: int, part_size: int) -> list[tuple[int, int]]:
    """The shards of a unit of ``n`` positions: ``[(0, n)]`` when it is not larger than ``shard_size``."""
    if not shard_size or n <= shard_size:
        return [(0, n)]
    step = shard_step(batch_size, part_size)
    size = max(step, math.ceil(shard_size / step) * step)
    return [(a, min(a + size, n)) for a in range(0, n, size)]


def covered(ranges: list[tuple[int, int]], span: tuple[int, int]) -> bool:
    """Do the stored part ranges cover ``span`` entirely?"""
    a, b = span
    cur = a
    for s, e in sorted(ranges):
        if s <= cur < e:
            cur = e
        if cur >= b:
            return True
    return cur >= b


class ShardLedger(PartLedger):
    """The unit's ledger, restricted to computing the positions of one shard."""

    def __init__(self, *args, span: tuple[int, int], **kwargs):
        super().__init__(*args, **kwargs)
        a, b = span
        self.span = span
        self.todo = [(max(s, a), min(e, b)) for s, e in self.todo if max(s, a) < min(e, b)]

    def finish(self) -> pa.Table:
        """The shard's rows (position order), checked against its positions."""
        if self._buf or self._next != len(self.todo):
            raise RuntimeError(f"{self.unit_id}: shard {self.span} not complete")
        a, b = self.span
        tables = [t for s, (e, t) in sorted(self.tables.items()) if a <= s and e <= b]
        table = pa.concat_tables(tables, promote_options="default") if tables else pa.table({})
        got = table.column("index").to_pylist() if table.num_rows else []
        if got != self.positions[a:b]:
            raise DataError(f"{self.unit_id}: shard {a}-{b} holds other sample indices than its positions",
                            hint="re-run with --force-unit to recompute this unit")
        return table


@dataclass
class ShardContext(UnitContext):
    """A unit's context whose ledger computes only the shard ``span``."""

    span: tuple[int, int] = (0, 0)

    def ledger(self, part_size: int):
        return ShardLedger(self.store, self.unit.unit_id, self.positions, part_size,
                           paths=[self.ds.stored_path(i) for i in range(len(self.ds))], log=self.log,
                           span=self.span)
