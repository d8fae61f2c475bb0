"""Resumable progress of one unit, shared by every unit kind.

A unit's positions are split into parts; each finished part is written to the store atomically,
named by the range of positions it covers (``part-<start>-<end>``, offsets into the unit's
position list). On a re-run, a stored part is reused only if it fits: inside the position list,
not overlapping another kept part, and holding exactly the expected sample indices (and paths,
when the rows carry them) in order. Anything else — a part of another part size that overlaps, a
part copied from elsewhere, an unreadable file — is discarded and recomputed. The gaps between
kept parts are cut into new parts of ``part_size``, so resuming with another part size works.

Rows are fed in the order of :attr:`PartLedger.remaining`; each part is written as soon as its
rows are in, and :meth:`PartLedger.finish` returns every row of the unit in position order,
checked against the positions (0 lost, 0 duplicated).
"""

from __future__ import annotations

import os
import signal
from typing import Callable

import pyarrow as pa

from roz.errors import DataError

_parts_written = 0


def fault_injection() -> None:
    """Crash-test hook: ``ROZ_FAULT_KILL_AFTER_PARTS=N`` SIGKILLs this process right after the N-th
    part is written, so tests can interrupt a run at a deterministic point (as a crash or power loss
    would) and check that it resumes exactly."""
    global _parts_written
    limit = os.environ.get("ROZ_FAULT_KILL_AFTER_PARTS")
    _parts_written += 1
    if limit and _parts_written >= int(limit):
        os.kill(os.getpid(), signal.SIGKILL)


class PartLedger:
    def __init__(self, store, unit_id: str, positions: list[int], part_size: int, paths: list | None = None,
                 log: Callable[[str], None] | None = None):
        """``store``: a ``ResultStore`` or None (no checkpoints); ``paths``: the dataset's sample
        paths by index (checked against a stored part's ``path`` column)."""
        self.store, self.unit_id, self.positions = store, unit_id, list(positions)
        self.part_size = max(1, int(part_size))
        self.tables: dict[int, tuple[int, pa.Table]] = {}  # start -> (end, rows)
        dropped = []
        stored = store.read_parts(unit_id, on_bad=dropped.append) if store is not None else {}
        end = 0
        for (a, b), table in sorted(stored.items()):
            why = self._misfit(a, b, table, end, paths)
            if why:
                dropped.append(f"part {a}-{b}: {why}")
                store.drop_part(unit_id, a, b)
                continue
            self.tables[a] = (b, table)
            end = b
        if dropped and log:
            log(f"{unit_id}: discarded {len(dropped)} stored part(s) that do not fit ({'; '.join(dropped[:3])})")
        self.n_reused = sum(b - a for a, (b, _) in self.tables.items())
        self.todo = self._gaps()
        self._next = 0
        self._buf: list[dict] = []

    def _misfit(self, a: int, b: int, table: pa.Table, kept_end: int, paths) -> str | None:
        if not (0 <= a < b <= len(self.positions)):
            return f"outside the unit's {len(self.positions)} positions"
        if a < kept_end:
            return "overlaps another stored part"
        if "index" not in table.column_names or table.column("index").to_pylist() != self.positions[a:b]:
            return "its sample indices are not the expected ones"
        if paths is not None and "path" in table.column_names and \
                table.column("path").to_pylist() != [paths[i] for i in self.positions[a:b]]:
            return "its sample paths are not the dataset's"
        return None

    def _gaps(self) -> list[tuple[int, int]]:
        out, cur = [], 0
        for a in sorted(self.tables) + [len(self.positions)]:
            out += [(s, min(s + self.part_size, a)) for s in range(cur, a, self.part_size)]
            cur = self.tables[a][0] if a in self.tables else a
        return out

    @property
    def remaining(self) -> list[int]:
        """Positions still to compute, in the order rows must be fed to :meth:`add`."""
        return [p for a, b in self.todo for p in self.positions[a:b]]

    def remaining_parts(self) -> list[list[int]]:
        return [self.positions[a:b] for a, b in self.todo]

    def add(self, rows: list[dict]) -> None:
        """Rows of the next remaining positions; every part completed by them is written."""
        self._buf.extend(rows)
        while self._next < len(self.todo):
            a, b = self.todo[self._next]
            if len(self._buf) < b - a:
                break
            part, self._buf = self._buf[:b - a], self._buf[b - a:]
            table = pa.Table.from_pylist(part)
            if self.store is not None:
                self.store.write_part(self.unit_id, a, b, table)
            self.tables[a] = (b, table)
            self._next += 1
            fault_injection()

    def finish(self) -> pa.Table:
        """Every row of the unit, in position order; checked: 0 lost, 0 duplicated."""
        if self._buf or self._next != len(self.todo):
            raise RuntimeError(f"{self.unit_id}: {len(self._buf)} rows left over, "
                               f"{len(self.todo) - self._next} parts not computed")
        tables = [t for _, (_, t) in sorted(self.tables.items())]
        table = pa.concat_tables(tables, promote_options="default") if tables else pa.table({})
        got = table.column("index").to_pylist() if table.num_rows else []
        if got != self.positions:
            raise DataError(f"{self.unit_id}: expected {len(self.positions)} rows (the unit's positions), "
                            f"the parts hold {table.num_rows} with other sample indices",
                            hint="re-run with --force to recompute this unit")
        return table
