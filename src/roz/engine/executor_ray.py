"""The Ray executor: one Ray task per job, on a local Ray instance or a cluster.

Placement: ``address`` (``--address``), else ``RAY_ADDRESS``, else a Ray instance already
initialised in this process, else a new local one. Each task asks for ``num_gpus=1`` when the run's
device is CUDA (one model per GPU) and ``task_cpus`` CPUs (default: its DataLoader workers, at
least 1, at most the cluster's CPUs) for decoding.

Failures: a job's exceptions are handled inside the task (retried, then recorded: see
:func:`roz.engine.jobs.run_job`); a task whose worker process dies (killed, out of memory, node
lost) is re-run by Ray up to ``retries`` times (``max_retries``: Ray's retry for system failures),
resuming from the parts the dead worker wrote; when Ray gives up, the driver records the unit as
failed and the run goes on.

Each worker process keeps the models it built (:data:`roz.engine.jobs.WORKER_MODELS`), so the
next job of the same model in that worker skips the load; outcomes report loads and cache hits.
"""

from __future__ import annotations

import os

from roz.engine.jobs import WORKER_MODELS, Job, run_job
from roz.engine.options import RunOptions
from roz.engine.store import ResultStore
from roz.errors import RozError

# Crash-test hook: a directory; the first Ray task to start after it is set SIGKILLs its own
# worker right after writing its first checkpoint part (``roz.engine.parts.fault_injection``),
# once per directory, so a test can kill a worker mid-task and check the retry.
FAULT_ENV = "ROZ_FAULT_KILL_WORKER_ONCE"


def _fault_once(fault_dir: str | None) -> None:
    from roz.engine import parts

    os.environ.pop("ROZ_FAULT_KILL_AFTER_PARTS", None)
    if not fault_dir:
        return
    try:
        os.close(os.open(os.path.join(fault_dir, "killed"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except FileExistsError:
        return
    parts._parts_written = 0
    os.environ["ROZ_FAULT_KILL_AFTER_PARTS"] = "1"


def _task(job: Job, run_dir: str, opts: RunOptions, setup: tuple, threads: int, fault_dir: str | None) -> dict:
    import torch

    torch.set_num_threads(threads)
    for fn in setup:  # a fresh worker process has none of the driver's registrations
        fn()
    _fault_once(fault_dir)
    # from the URL on a remote run directory: the worker publishes its own results (``sync=False``:
    # it computes the jobs it is given, no need to mirror every finished unit first)
    return run_job(job, ResultStore(run_dir, sync=False), opts, WORKER_MODELS, True)


def connect(opts: RunOptions):
    """Import and initialise Ray (see the module doc for the address rule)."""
    try:
        import ray
    except ImportError:
        raise RozError("executor 'ray' needs Ray", hint="pip install 'roz[ray]'") from None
    address = opts.address or os.environ.get("RAY_ADDRESS") or None
    if not ray.is_initialized():
        try:
            ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
        except ConnectionError as e:
            raise RozError(f"cannot reach the Ray cluster at {address}: {e}",
                           hint="start it (`ray start --head`) or pass its address: --address HOST:6379") from None
    return ray


def task_resources(opts: RunOptions, cluster_cpus: float | None) -> dict:
    """The resources one task asks for: a GPU per model task on CUDA, CPUs for decoding."""
    cpus = opts.task_cpus or max(1, int(opts.workers or 0))
    if cluster_cpus:
        cpus = max(1, min(cpus, int(cluster_cpus)))
    return {"num_cpus": cpus, "num_gpus": 1 if str(opts.device).startswith("cuda") else 0,
            "max_retries": max(0, int(opts.retries)), "retry_exceptions": False}


def run_ray(scheduler, store: ResultStore, opts: RunOptions, setup: tuple = (), view=None, log=None) -> list[dict]:
    """Run the scheduler's jobs as Ray tasks until none is left; returns every job's outcome."""
    ray = connect(opts)
    resources = task_resources(opts, ray.cluster_resources().get("CPU"))
    remote = ray.remote(_task).options(**resources)
    worker_opts = RunOptions(**{**opts.__dict__, "progress": False})
    fault_dir = os.environ.get(FAULT_ENV)
    if log:
        log(f"ray: {ray.cluster_resources().get('CPU', 0):g} CPUs, {ray.cluster_resources().get('GPU', 0):g} GPUs; "
            f"each task asks for {resources['num_cpus']} CPU(s), {resources['num_gpus']} GPU(s), "
            f"up to {resources['max_retries']} retries")
    running: dict = {}
    outcomes = []

    def submit_ready():
        while scheduler.ready:
            job = scheduler.ready.popleft()
            running[remote.remote(job, store.location, worker_opts, setup, resources["num_cpus"], fault_dir)] = job
            if view:
                view.started(job)

    submit_ready()
    while running:
        (ref,), _ = ray.wait(list(running), num_returns=1)
        job = running.pop(ref)
        try:
            out = ray.get(ref)
        except Exception as e:  # noqa: BLE001 -- Ray gave up on the task (its worker died every time)
            store.write_failure(job.unit.unit_id, e, extra={"attempts": resources["max_retries"] + 1,
                                                              "shard": job.span})
            if log:
                log(f"FAILED {job.name}: {type(e).__name__} (the Ray worker died {resources['max_retries'] + 1} times)")
            out = {"job": job.name, "unit_id": job.unit.unit_id, "state": "failed", "n": job.n}
        outcomes.append(out)
        if view:
            view.finished(job, out)
        scheduler.finished(job, out)
        submit_ready()
    store.sync()  # a URL run directory: the units workers on other nodes published
    return outcomes
