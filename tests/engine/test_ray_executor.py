"""The Ray executor on a local Ray instance (2 CPUs, its temp files in the test's temp directory):
the same results as the local executor — whole or sharded —, a worker killed mid-task retried with
identical results (and recorded as failed when no retry is left), a failing unit recorded while
the others finish, and a killed driver resumed without recomputing finished units.

Needs Ray (``pip install 'roz[ray]'``; the test extras include it). One Ray instance serves the
module; the ``roz run`` subprocesses join it with ``--address``, as a user joins a cluster.
"""

import signal
import subprocess
import sys
import time

import pytest
import yaml

from roz.engine.executor_ray import FAULT_ENV
from roz.engine.options import RunOptions
from roz.engine.plan import plan_units
from roz.engine.runner import run_units
from roz.engine.store import ResultStore
from support.tinymodels import assert_same_runs as _same, store_rows

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # a short name: Ray puts unix sockets under it (path limit 107 bytes)
    info = ray.init(num_cpus=2, _temp_dir=str(tmp_path_factory.mktemp("r")), include_dashboard=False,
                    log_to_driver=False)
    yield info.address_info["gcs_address"]
    ray.shutdown()


def _cfg(fx, **extra):
    return {"models": [{"spec": fx["timm"], "name": "vit"}, {"spec": fx["openclip"], "name": "clip"}],
            "datasets": [{"name": "imagefolder", "root": str(fx["data"])}],
            "shifts": ["none", "corruption:fog:2"], **extra}


def _opts(**kw):
    return RunOptions(batch_size=4, workers=0, part_size=4, device="cpu", **kw)




@pytest.fixture(scope="module")
def reference(fx, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    run_units(plan_units(_cfg(fx)), out, _opts())
    return store_rows(out)


@pytest.mark.slow
def test_ray_matches_local_whole_and_sharded(cluster, fx, reference, tmp_path):
    units = plan_units(_cfg(fx))
    run_units(units, tmp_path / "ray", _opts(), executor="ray")
    _same(reference, store_rows(tmp_path / "ray"))
    logs: list[str] = []
    run_units(units, tmp_path / "sharded", _opts(shard_size=8), executor="ray", log=logs.append)
    assert sum("3 shards of up to 8 samples" in m for m in logs) == 4
    _same(reference, store_rows(tmp_path / "sharded"))


@pytest.mark.slow
def test_killed_worker_is_retried_with_identical_results(cluster, fx, reference, tmp_path, monkeypatch):
    units = plan_units(_cfg(fx))
    for retries, out in ((2, tmp_path / "retried"), (0, tmp_path / "no-retry")):
        fault = tmp_path / f"fault-{retries}"
        fault.mkdir()
        monkeypatch.setenv(FAULT_ENV, str(fault))
        recs = run_units(units, out, _opts(retries=retries), executor="ray", raise_failures=False)
        assert (fault / "killed").exists()  # one worker was SIGKILLed after its first checkpoint part
        if retries:
            assert not recs.failures and len(recs) == 4
            _same(reference, store_rows(out))
        else:  # no retry left: that unit is recorded as failed, the three others finish
            (fail,) = recs.failures
            assert len(recs) == 3 and fail["attempts"] == 1 and "died" in fail["traceback"].lower()
            assert ResultStore(out).failures() == [fail]


def _fog_always_raises():
    """Worker setup: in a run directory named ``always-raises``, every fog unit raises (a bug)."""
    from roz.engine import jobs

    if getattr(jobs.execute_unit, "always_raises", False):
        return
    real = jobs.execute_unit

    def execute_unit(unit, store, *args, **kwargs):
        if unit.shift and "always-raises" in str(store.root):
            raise RuntimeError("this unit always raises")
        return real(unit, store, *args, **kwargs)

    execute_unit.always_raises = True
    jobs.execute_unit = execute_unit


@pytest.mark.slow
def test_failing_unit_recorded_while_others_finish(cluster, fx, reference, tmp_path):
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    (tmp_path / "empty").mkdir()  # a valid root without images: its units raise a DataError when they run
    cfg = _cfg(fx)
    cfg["datasets"].append({"name": "imagefolder", "root": str(tmp_path / "empty"), "label": "empty"})
    out = tmp_path / "always-raises"
    recs = run_units(plan_units(cfg), out, _opts(retries=1), executor="ray", raise_failures=False,
                     worker_setup=(_fog_always_raises,))
    assert len(recs) == 2 and not any(r.shift for r in recs)  # the clean units on the good root finished
    errors = sorted((f["error"], f["attempts"]) for f in recs.failures)
    # the clean units on the empty root: bad input, not retried; every fog unit: a bug, retried once
    assert errors == [("DataError", 1)] * 2 + [("RuntimeError", 2)] * 4
    assert all("Traceback" in f["traceback"] for f in recs.failures)
    assert sorted(f["unit_id"] for f in ResultStore(out).failures()) == sorted(f["unit_id"] for f in recs.failures)
    ref = {uid: rows for uid, rows in reference.items() if uid in {r.unit_id for r in recs}}
    _same(ref, store_rows(out))


@pytest.mark.slow
def test_killed_driver_resumes_without_recomputing(cluster, fx, reference, tmp_path):
    out = tmp_path / "run"
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(_cfg(fx, out=str(out), executor="ray")))
    cmd = [sys.executable, "-m", "roz.cli", "run", str(tmp_path / "run.yaml"), "-b", "4", "--workers", "0",
           "--part-size", "4", "--address", cluster]
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "units").glob("*.json"))) < 1:
        time.sleep(0.05)
    driver.send_signal(signal.SIGKILL)  # the driver dies mid-run; its Ray tasks die with it
    driver.wait()
    finished = {p.stem: p.stat().st_mtime_ns for p in (out / "units").glob("*.json")}
    assert 1 <= len(finished) < 4
    logs: list[str] = []  # the re-run: `roz run` again (here in-process, on the same cluster)
    run_units(plan_units(_cfg(fx)), out, _opts(), executor="ray", log=logs.append)
    assert f"4 units, {len(finished)} already done, {4 - len(finished)} to run" in logs
    assert {p.stem: p.stat().st_mtime_ns for p in (out / "units").glob("*.json") if p.stem in finished} == finished
    _same(reference, store_rows(out))  # every row once: none lost, none doubled


def test_ray_workers_publish_to_a_url_run_directory(fx, cluster, reference, tmp_path, monkeypatch):
    # a file:// URL (fsspec's filesystem, not the store's plain path): the workers open the store
    # from the URL and publish their units and shard parts; a fresh working copy reads them all
    url = f"file://{tmp_path / 'remote' / 'run'}"
    run_units(plan_units(_cfg(fx)), url, _opts(shard_size=8), executor="ray")
    assert len(list((tmp_path / "remote" / "run" / "units").glob("*.json"))) == len(reference)
    monkeypatch.setenv("ROZ_HOME", str(tmp_path / "reader"))
    _same(reference, store_rows(url))
