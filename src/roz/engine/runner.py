"""Executors: units -> store. ``run_units`` skips finished units (``force`` recomputes).

The local executor runs units in order in this process, reusing built models; the Ray executor
(``executor='ray'``, needs ``pip install roz[ray]``) runs one task per unit, each writing its own
result to the shared run directory — the store's atomic writes make that safe.

A unit that raises is recorded in the store (``RUN_DIR/failed/<unit_id>.json``: error, hint,
traceback) and the run goes on with the other units; the unit is retried on the next run. At the
end ``run_units`` raises: the unit's own error when one unit failed, :class:`UnitsFailed` (a
``RozError`` listing them) when several did — or, with ``raise_failures=False``, returns the
records with the failures in ``.failures``.

Each unit is computed under a per-unit lock in the run directory, so two processes on one
directory never compute the same unit: a unit locked by another process is deferred, then waited
for and re-checked (skipped if the other process finished it, computed if it did not).
"""

from __future__ import annotations

import time

import torch

from roz.datasets.base import LabelSpace
from roz.datasets.classes import ClassSet
from roz.datasets.registry import create_dataset, dataset_info
from roz.engine.kinds import UnitContext, get_kind
from roz.engine.labelspace import LabelMap
from roz.engine.options import RunOptions  # noqa: F401  (re-exported: defined in engine.options)
from roz.engine.positions import positions_for
from roz.engine.record import UnitRecord, build_record
from roz.engine.store import ResultStore
from roz.engine.units import Unit
from roz.errors import RozError
from roz.models.adapters import create_model
from roz.models.base import RozModel


class UnitsFailed(RozError):
    """Several units of a run failed (each recorded in the store; finished units are kept)."""

    def __init__(self, failures: list[dict], run_dir, n_units: int):
        self.failures = failures
        lines = "\n".join(f"  {f['unit_id']}: {f['error']}: {f['message']}" for f in failures)
        super().__init__(f"{len(failures)} of {n_units} units failed:\n{lines}",
                         hint=f"tracebacks in {run_dir}/failed/; fix the cause and re-run the same command "
                              "(finished units are kept, failed ones are retried)")


class RunRecords(list):
    """The records of the finished units; ``failures``: the failure records of the others."""

    failures: list[dict]


class ModelCache:
    def __init__(self):
        self._m: dict = {}

    def get(self, ref, device) -> RozModel:
        key = (ref.spec, ref.classes, ref.templates, ref.name, ref.role, str(device))
        if key not in self._m:
            self._m[key] = create_model(ref.spec, classes=ref.classes, templates=ref.templates, name=ref.label,
                                        role=ref.role, device=device)
        return self._m[key]


def _subset_head(model: RozModel, labels: LabelSpace, ds_name: str):
    """A zero-shot head over only the dataset's label names (identity label map)."""
    if not hasattr(model, "with_classes"):
        raise RozError(f"head=subset needs a zero-shot model; {model.name} is a {model.role} classifier",
                       hint="use head=full for standard models (the class mask)")
    ids = tuple(f"{ds_name}:{i}" for i in range(len(labels)))
    sub = model.with_classes(ClassSet(f"{ds_name}-labels", ids, tuple(labels.names)))
    return sub, LabelMap(ids, LabelSpace.singletons(ids, labels.names))


def prepare(unit: Unit, store: ResultStore | None, opts: RunOptions, models: ModelCache, log=None) -> UnitContext:
    """Build the unit's dataset, model and label map, and the positions it covers."""
    ds = create_dataset(unit.dataset.name, unit.dataset.root, on_bad_image=unit.on_bad_image,
                        **dict(unit.dataset.options))
    model = models.get(unit.model, opts.device)
    label_map = None
    if unit.head == "subset":
        model, label_map = _subset_head(model, ds.labels, unit.dataset.display)
    label_map = label_map or LabelMap(model.wnids, ds.labels, what=ds.name)
    positions = positions_for(ds, unit.shard, unit.limit, seed=unit.seed)
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


def _attempt(unit: Unit, store: ResultStore, opts: RunOptions, models, forced: bool, blocking: bool,
             errors: dict | None = None, log=None) -> str:
    """Compute ``unit`` under its lock: "done" | "skipped" (finished meanwhile) | "busy" | "failed"."""
    from filelock import Timeout

    lock = store.lock(unit.unit_id)
    try:
        lock.acquire(timeout=-1 if blocking else 0)
    except Timeout:  # another process holds the unit
        return "busy"
    try:
        if forced:
            store.clear_unit(unit.unit_id)
        elif store.is_done(unit.unit_id):
            return "skipped"
        if log:
            log(f"computing {unit.unit_id}")
        try:
            execute_unit(unit, store, opts, models, log=log)
        except Exception as e:  # noqa: BLE001 -- recorded with its traceback; the run goes on
            store.write_failure(unit.unit_id, e)
            if log:
                log(f"FAILED {unit.unit_id}: {type(e).__name__}: {getattr(e, 'what', e)}")
            if errors is not None:
                errors[unit.unit_id] = e
            return "failed"
        return "done"
    finally:
        lock.release()


def _run_local(todo: list[Unit], store: ResultStore, opts: RunOptions, forced: set, log) -> dict:
    """Run the units in order; returns ``{unit_id: exception}`` of the units that failed."""
    models, errors, busy = ModelCache(), {}, []
    for i, u in enumerate(todo):
        if log:
            log(f"[{i + 1}/{len(todo)}] {u.unit_id}")
        if _attempt(u, store, opts, models, u.unit_id in forced, False, errors, log) == "busy":
            busy.append(u)
            if log:
                log(f"{u.unit_id} is being computed by another process: deferred")
    for u in busy:  # wait for the other process, then re-check: computed only if it did not finish it
        state = _attempt(u, store, opts, models, u.unit_id in forced, True, errors, log)
        if log and state == "skipped":
            log(f"{u.unit_id} finished by another process")
    return errors


def run_units(units: list[Unit], run_dir, opts: RunOptions | None = None, force: bool = False,
              executor: str = "local", config: dict | None = None, log=None, *,
              force_unit: set[str] | frozenset[str] | None = None, raise_failures: bool = True,
              worker_setup: tuple = ()) -> RunRecords:
    """Run every unit not yet (intact) in the store; return all units' records (finished ones included).

    ``force`` recomputes every unit, ``force_unit`` the units with these ids. Failed units are
    recorded and the others still run; then the failure is raised (see the module doc), or with
    ``raise_failures=False`` the returned list's ``.failures`` holds them. ``worker_setup``:
    module-level functions each Ray worker calls before its unit (the layers above register their
    names this way, e.g. ``roz.world.register`` for ROZ-Mini's class set).
    """
    opts = opts or RunOptions()
    store = ResultStore(run_dir, config=config)
    store.add_invocation(config)
    ids = [u.unit_id for u in units]
    forced = set(ids) if force else set(force_unit or ())
    unknown = forced - set(ids)
    if unknown:
        raise RozError(f"force_unit: no unit {sorted(unknown)[0]!r} in this run",
                       hint=f"unit ids of this run: {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}")
    todo = []
    for u in units:
        why = None if u.unit_id in forced else store.check_unit(u.unit_id)
        if u.unit_id in forced or why is not None:
            todo.append(u)
            if log and why not in (None, "not computed"):
                log(f"{u.unit_id} is not done: {why}; recomputing")
    if log:
        log(f"{len(units)} units, {len(units) - len(todo)} already done, {len(todo)} to run")
    errors: dict = {}
    if executor == "ray" and todo:
        _run_ray(todo, str(run_dir), opts, forced, tuple(worker_setup))
    elif executor == "local":
        errors = _run_local(todo, store, opts, forced, log)
    elif executor != "ray":
        raise RozError(f"unknown executor {executor!r}; use local or ray")
    return _collect(units, store, raise_failures, errors)


def _collect(units: list[Unit], store: ResultStore, raise_failures: bool, errors: dict) -> RunRecords:
    done = {u.unit_id: store.is_done(u.unit_id) for u in units}
    out = RunRecords(store.record(u.unit_id) for u in units if done[u.unit_id])
    recorded = {f["unit_id"]: f for f in store.failures()}
    out.failures = [recorded.get(u.unit_id) or {"unit_id": u.unit_id, "error": "unknown", "message": "not computed"}
                    for u in units if not done[u.unit_id]]
    if out.failures and raise_failures:
        if len(out.failures) == 1 and out.failures[0]["unit_id"] in errors:
            raise errors[out.failures[0]["unit_id"]]  # the unit's own error (also recorded in the store)
        raise UnitsFailed(out.failures, store.root, len(units))
    return out


def _run_ray(units: list[Unit], run_dir: str, opts: RunOptions, forced: set, setup: tuple = ()) -> None:
    try:
        import ray
    except ImportError:
        raise RozError("executor 'ray' needs Ray", hint="pip install 'roz[ray]'") from None
    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
    gpus = 1 if str(opts.device).startswith("cuda") else 0

    @ray.remote(num_gpus=gpus)
    def _task(u, force):
        torch.set_num_threads(1)
        for fn in setup:  # a fresh worker process has none of the driver's registrations
            fn()
        return _attempt(u, ResultStore(run_dir), opts, ModelCache(), force, True)

    ray.get([_task.remote(u, u.unit_id in forced) for u in units])
