"""The driver's plan of jobs: which units run whole, which in shards, and when a unit is merged.

``Scheduler(todo, ...)`` turns the units to run into jobs (:class:`roz.engine.jobs.Job`); its
``ready`` queue holds the jobs that can run now. An executor pops jobs, runs them anywhere, and
reports each outcome with :meth:`Scheduler.finished`, which queues a unit's merge once all its
shards are in. Shards already covered by stored parts (a resumed run) are not queued again.

Forced units are cleared here, once, under their lock, before any of their shards runs.
"""

from __future__ import annotations

from collections import deque

from roz.engine.jobs import Job, unit_size
from roz.engine.options import RunOptions
from roz.engine.shards import SHARDED_KINDS, covered, shard_spans
from roz.engine.store import ResultStore
from roz.engine.units import Unit


class Scheduler:
    def __init__(self, todo: list[Unit], store: ResultStore, opts: RunOptions, forced: set, log=None):
        self.store, self.opts, self.log = store, opts, log
        self.ready: deque[Job] = deque()
        self._merges: dict[str, Job] = {}  # unit_id -> its merge job, queued when its shards are in
        self._pending: dict[str, int] = {}  # unit_id -> shards not finished yet
        self._failed: set[str] = set()
        # units of one model next to each other: a worker's model cache serves consecutive jobs
        for unit in sorted(todo, key=lambda u: (u.model.spec, u.model.label)):
            self._plan(unit, unit.unit_id in forced)

    def _plan(self, unit: Unit, force: bool) -> None:
        uid = unit.unit_id
        if force:
            with self.store.lock(uid):
                self.store.clear_unit(uid)
        spans = self._spans(unit)
        if len(spans) == 1:
            self.ready.append(Job(unit))
            return
        stored = self.store.part_ranges(uid)
        todo = [s for s in spans if not covered(stored, s)]
        if self.log:
            self.log(f"{uid}: {len(spans)} shards of up to {spans[0][1] - spans[0][0]} samples, "
                     f"{len(spans) - len(todo)} already stored")
        merge = Job(unit, n=0)
        if not todo:
            self.ready.append(merge)
            return
        self._merges[uid], self._pending[uid] = merge, len(todo)
        self.ready.extend(Job(unit, span=s, n=s[1] - s[0]) for s in todo)

    def _spans(self, unit: Unit) -> list[tuple[int, int]]:
        if not self.opts.shard_size or unit.kind not in SHARDED_KINDS:
            return [(0, 0)]
        try:
            n = unit_size(unit)
        except Exception:  # noqa: BLE001 -- the unit's own job raises it again and records it
            return [(0, 0)]
        return shard_spans(n, self.opts.shard_size, self.opts.batch_size, self.opts.part_size)

    def finished(self, job: Job, outcome: dict) -> None:
        """Record a job's outcome; a unit's last shard queues its merge (a failed shard: no merge)."""
        uid = job.unit.unit_id
        if job.span is None or uid not in self._pending:
            return
        if outcome.get("state") not in ("done", "skipped"):
            self._failed.add(uid)
        self._pending[uid] -= 1
        if self._pending[uid] == 0:
            del self._pending[uid]
            merge = self._merges.pop(uid)
            if uid not in self._failed:
                self.ready.append(merge)
