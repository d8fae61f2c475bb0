"""Executors: units -> store. ``run_units`` skips finished units (``force`` recomputes).

The local executor runs jobs in order in this process, reusing built models; the Ray executor
(``executor='ray'``, needs ``pip install roz[ray]``; :mod:`roz.engine.executor_ray`) runs one task
per job on a Ray cluster, each writing its own result to the shared run directory — the store's
atomic writes make that safe. A job is a unit, or with ``shard_size`` one shard of a large unit
(:mod:`roz.engine.shards`): the unit is then merged from its shards' parts once they are all in.

A unit that raises is retried ``retries`` times (not for a ``RozError``: bad input), then recorded
in the store (``RUN_DIR/failed/<unit_id>.json``: error, hint, traceback, attempts) and the run goes
on with the other units; the unit is retried on the next run. At the end ``run_units`` raises: the
unit's own error when one unit failed, :class:`UnitsFailed` (a ``RozError`` listing them) when
several did — or, with ``raise_failures=False``, returns the records with the failures in
``.failures``.

Each job is computed under a lock in the run directory, so two processes on one directory never
compute the same unit: a unit locked by another process is deferred, then waited for and
re-checked (skipped if the other process finished it, computed if it did not).
"""

from __future__ import annotations

from roz.engine.jobs import Job, ModelCache, execute_unit, prepare, run_job  # noqa: F401  (re-exported)
from roz.engine.options import RunOptions  # noqa: F401  (re-exported: defined in engine.options)
from roz.engine.runview import RunView
from roz.engine.scheduler import Scheduler
from roz.engine.store import ResultStore
from roz.engine.units import Unit
from roz.errors import RozError


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


def _run_local(todo: list[Unit], store: ResultStore, opts: RunOptions, forced: set, log, view=None) -> dict:
    """Run the units' jobs in order; returns ``{unit_id: exception}`` of the units that failed."""
    models, errors = ModelCache(), {}
    busy: list[Job] = []

    def run(job: Job, blocking: bool) -> dict:
        if view:
            view.started(job)
        out = run_job(job, store, opts, models, blocking, errors, log)
        if out["state"] != "busy" and view:
            view.finished(job, out)
        return out

    scheduler = Scheduler(todo, store, opts, forced, log)
    while scheduler.ready or busy:
        if not scheduler.ready:  # wait for the other process, then re-check: computed only if it did not finish it
            job = busy.pop(0)
            out = run(job, True)
            if log and out["state"] == "skipped":
                log(f"{job.name} finished by another process")
            scheduler.finished(job, out)
            continue
        job = scheduler.ready.popleft()
        out = run(job, False)
        if out["state"] == "busy":
            busy.append(job)
            if log:
                log(f"{job.name} is being computed by another process: deferred")
            continue
        scheduler.finished(job, out)
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
    if executor not in ("local", "ray"):
        raise RozError(f"unknown executor {executor!r}; use local or ray")
    with RunView(len(todo), opts.progress, log) as view:
        if executor == "ray" and todo:
            from roz.engine.executor_ray import run_ray

            run_ray(Scheduler(todo, store, opts, forced, log), store, opts, tuple(worker_setup), view, log)
        elif executor == "local":
            errors = _run_local(todo, store, opts, forced, log, view)
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
