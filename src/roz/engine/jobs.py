"""Jobs: what an executor runs — a whole unit, or one shard of it — in any process.

``run_job`` computes one job under its lock in the run directory, with bounded retries, and
records a failure in the store; it returns a small outcome dict (state, models loaded or reused,
seconds, images) that the driver's progress view and the scaling bench read.

Models and zero-shot (subset) heads come from a :class:`ModelCache`; in a Ray worker process the
cache is module-level (``WORKER_MODELS``), so every task that worker runs reuses the models it
already built — a unit of a model already loaded in that worker skips the load.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from dataclasses import dataclass

from roz.datasets.base import LabelSpace
from roz.datasets.classes import ClassSet
from roz.datasets.registry import create_dataset, dataset_info
from roz.engine.kinds import UnitContext, get_kind
from roz.engine.labelspace import LabelMap
from roz.engine.options import RunOptions
from roz.engine.positions import positions_for
from roz.engine.record import UnitRecord, build_record
from roz.engine.shards import ShardContext
from roz.engine.store import ResultStore
from roz.engine.units import Unit
from roz.errors import RozError
from roz.models.adapters import create_model
from roz.models.base import RozModel


@dataclass(frozen=True)
class Job:
    """A unit (``span=None``: computed whole, or merged from its shards' parts) or one shard of it."""

    unit: Unit
    span: tuple[int, int] | None = None
    force: bool = False
    n: int | None = None  # images it covers, when the driver knows (progress)

    @property
    def name(self) -> str:
        uid = self.unit.unit_id
        return uid if self.span is None else f"{uid}[{self.span[0]}:{self.span[1]}]"

    @property
    def lock_name(self) -> str:
        uid = self.unit.unit_id
        return uid if self.span is None else f"{uid}.shard-{self.span[0]}-{self.span[1]}"


class ModelCache:
    """Built models and subset heads, the ``capacity`` most recently used kept (``None``: all)."""

    def __init__(self, capacity: int | None = None):
        self._m: OrderedDict = OrderedDict()
        self.capacity = capacity
        self.loads = 0
        self.hits = 0

    def _cached(self, key, build):
        if key in self._m:
            self.hits += 1
            self._m.move_to_end(key)
            return self._m[key]
        self.loads += 1
        self._m[key] = build()
        while self.capacity is not None and len(self._m) > self.capacity:
            self._m.popitem(last=False)
        return self._m[key]

    def get(self, ref, device) -> RozModel:
        key = (ref.spec, ref.classes, ref.templates, ref.name, ref.role, ref.weights, str(device))
        return self._cached(key, lambda: create_model(ref.spec, classes=ref.classes, templates=ref.templates,
                                                      name=ref.label, role=ref.role, device=device))

    def subset(self, ref, device, labels: LabelSpace, ds_name: str):
        """The zero-shot head over only the dataset's label names, and its identity label map."""
        model = self.get(ref, device)
        key = ("subset", ref.spec, ref.classes, ref.templates, ref.name, ref.weights, str(device), ds_name,
               tuple(labels.names))
        return self._cached(key, lambda: _subset_head(model, labels, ds_name))


# one per process: a Ray worker keeps its models between the tasks it runs (two models at most)
WORKER_MODELS = ModelCache(capacity=2)


def _subset_head(model: RozModel, labels: LabelSpace, ds_name: str):
    if not hasattr(model, "with_classes"):
        raise RozError(f"head=subset needs a zero-shot model; {model.name} is a {model.role} classifier",
                       hint="use head=full for standard models (the class mask)")
    ids = tuple(f"{ds_name}:{i}" for i in range(len(labels)))
    sub = model.with_classes(ClassSet(f"{ds_name}-labels", ids, tuple(labels.names)))
    return sub, LabelMap(ids, LabelSpace.singletons(ids, labels.names))


def unit_dataset(unit: Unit):
    return create_dataset(unit.dataset.name, unit.dataset.root, on_bad_image=unit.on_bad_image,
                          **dict(unit.dataset.options))


def unit_size(unit: Unit) -> int:
    """How many positions (images, or sequences) the unit covers."""
    return len(positions_for(unit_dataset(unit), unit.shard, unit.limit, seed=unit.seed))


def prepare(unit: Unit, store: ResultStore | None, opts: RunOptions, models: ModelCache, log=None,
            span: tuple[int, int] | None = None) -> UnitContext:
    """Build the unit's dataset, model and label map, and the positions it covers."""
    ds = unit_dataset(unit)
    label_map = None
    if unit.head == "subset":
        model, label_map = models.subset(unit.model, opts.device, ds.labels, unit.dataset.display)
    else:
        model = models.get(unit.model, opts.device)
    label_map = label_map or LabelMap(model.wnids, ds.labels, what=ds.name)
    positions = positions_for(ds, unit.shard, unit.limit, seed=unit.seed)
    if span is not None:
        return ShardContext(unit, model, ds, label_map, positions, opts, store=store, log=log, span=span)
    return UnitContext(unit, model, ds, label_map, positions, opts, store=store, log=log)


def execute_unit(unit: Unit, store: ResultStore, opts: RunOptions, models: ModelCache | None = None,
                 log=None) -> UnitRecord:
    """Compute one unit with its kind's strategy and write its record and rows to the store."""
    ctx = prepare(unit, store, opts, models or ModelCache(), log)
    kind = unit.kind
    t0 = time.perf_counter()
    result = get_kind(kind).run(ctx)
    record = build_record(ctx, result, kind, time.perf_counter() - t0, dataset_info(unit.dataset.name).paper_order)
    return store.write_unit(record, result.table)


def execute_shard(job: Job, store: ResultStore, opts: RunOptions, models: ModelCache, log=None) -> None:
    """Compute one shard's rows into the unit's parts (the merge writes the unit)."""
    ctx = prepare(job.unit, store, opts, models, log, span=job.span)
    get_kind(job.unit.kind).run(ctx)


def run_job(job: Job, store: ResultStore, opts: RunOptions, models: ModelCache, blocking: bool,
            errors: dict | None = None, log=None) -> dict:
    """Compute ``job`` under its lock. ``state``: done | skipped (finished meanwhile) | busy | failed."""
    from filelock import Timeout

    out = {"job": job.name, "unit_id": job.unit.unit_id, "pid": os.getpid(), "loads": models.loads,
           "hits": models.hits, "seconds": 0.0, "n": job.n}
    lock = store.lock(job.lock_name)
    try:
        lock.acquire(timeout=-1 if blocking else 0)
    except Timeout:  # another process holds the job
        return {**out, "state": "busy"}
    t0 = time.perf_counter()
    try:
        if job.force and job.span is None:
            store.clear_unit(job.unit.unit_id)
        if store.is_done(job.unit.unit_id):
            return {**out, "state": "skipped"}
        out["state"] = _with_retries(job, store, opts, models, errors, log)
        if out["state"] == "done" and job.n is None:
            out["n"] = store.record(job.unit.unit_id).dataset.n
    finally:
        lock.release()
    out.update(seconds=time.perf_counter() - t0, loads=models.loads - out["loads"], hits=models.hits - out["hits"])
    return out


def _with_retries(job: Job, store: ResultStore, opts: RunOptions, models: ModelCache, errors, log) -> str:
    """Run the job; an exception other than a ``RozError`` (bad input: retrying cannot help) is
    retried ``opts.retries`` times; the last one is recorded in the store with its traceback."""
    attempts = max(0, int(opts.retries)) + 1
    for attempt in range(1, attempts + 1):
        if log:
            log(f"computing {job.name}" + (f" (attempt {attempt} of {attempts})" if attempt > 1 else ""))
        try:
            if job.span is None:
                execute_unit(job.unit, store, opts, models, log=log)
            else:
                execute_shard(job, store, opts, models, log=log)
            return "done"
        except Exception as e:  # noqa: BLE001 -- recorded with its traceback; the run goes on
            if attempt < attempts and not isinstance(e, RozError):
                if log:
                    log(f"{job.name} raised {type(e).__name__}: {e}; retrying")
                continue
            store.write_failure(job.unit.unit_id, e, extra={"attempts": attempt, "shard": job.span})
            if log:
                log(f"FAILED {job.name}: {type(e).__name__}: {getattr(e, 'what', e)}")
            if errors is not None:
                errors[job.unit.unit_id] = e
            return "failed"
    raise AssertionError("unreachable")
