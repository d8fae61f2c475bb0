"""Run directories on a remote filesystem (``memory://``: fsspec's in-memory object store, and
``file://`` through fsspec's LocalFileSystem — neither is the store's plain OS path): the same
results as a local run, resume from the remote state in a fresh working copy, samples published
before records, clear errors for unknown filesystems."""

from __future__ import annotations

import re
import uuid

import fsspec
import pytest

from roz import api
from roz.engine.options import RunOptions
from roz.engine.plan import plan_units
from roz.engine.runner import run_units
from roz.engine.store import ResultStore
from roz.errors import RozError, StoreError
from support.tinymodels import assert_same_runs as _same, fail_shard, store_rows


def _cfg(fx, attack=False):
    cfg = {"models": [{"spec": fx["timm"], "name": "vit"}], "shifts": ["none", "corruption:fog:2"],
           "datasets": [{"name": "imagefolder", "root": str(fx["data"])}]}
    if attack:
        cfg["attacks"] = [{"name": "pgd", "eps": [0.03], "steps": 2}]
    return cfg


def _opts(**kw):
    return RunOptions(batch_size=4, workers=0, part_size=4, device="cpu", **kw)




@pytest.fixture
def url():
    """A fresh bucket key in fsspec's in-memory filesystem (removed afterwards)."""
    key = f"memory://roz-test-{uuid.uuid4().hex[:8]}/run"
    yield key
    fs = fsspec.filesystem("memory")
    bucket = key.split("://", 1)[1].split("/")[0]
    if fs.exists(bucket):
        fs.rm(bucket, recursive=True)


def _fresh_copy(monkeypatch, tmp_path, name):
    """Another machine: another ROZ_HOME, so an empty working copy."""
    monkeypatch.setenv("ROZ_HOME", str(tmp_path / name))


def _remote_files(url) -> set[str]:
    fs, root = fsspec.core.url_to_fs(url)
    return {p[len(root.rstrip("/")) + 1:] for p in fs.find(root)}


def test_memory_url_run_equals_local_run(fx, tmp_path, url, monkeypatch):
    units = plan_units(_cfg(fx, attack=True))
    run_units(units, tmp_path / "local", _opts())
    run_units(units, url, _opts())
    files = _remote_files(url)
    assert {f"units/{u.unit_id}.json" for u in units} <= files
    assert {f"samples/{u.unit_id}.parquet" for u in units} <= files and "run.json" in files
    _fresh_copy(monkeypatch, tmp_path, "reader")  # a reader elsewhere sees everything, byte for byte
    _same(store_rows(tmp_path / "local"), store_rows(url))
    fs, root = fsspec.core.url_to_fs(url)
    store = ResultStore(url, create=False)
    assert str(store.root).startswith(str(tmp_path / "reader"))
    for u in units:
        assert store.unit_path(u.unit_id).read_bytes() == fs.cat_file(f"{root}/units/{u.unit_id}.json")
    assert len(api.results(url)) == len(units)


def test_resume_from_remote_in_a_fresh_working_copy(fx, tmp_path, url, monkeypatch):
    from roz.engine import jobs

    units = plan_units(_cfg(fx))
    real = jobs.execute_unit
    calls = []

    def dies_on_second(unit, *a, **kw):
        calls.append(unit.unit_id)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the driver is killed during its second unit
        return real(unit, *a, **kw)

    monkeypatch.setattr(jobs, "execute_unit", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_units(units, url, _opts())
    first = calls[0]
    monkeypatch.setattr(jobs, "execute_unit", real)
    _fresh_copy(monkeypatch, tmp_path, "machine-b")
    logs: list[str] = []
    run_units(units, url, _opts(), log=logs.append)
    computed = re.findall(r"computing (\S+)", "\n".join(logs))
    assert first not in computed and sorted(computed) == sorted(u.unit_id for u in units if u.unit_id != first)
    assert "1 already done" in "\n".join(logs)
    run_units(units, tmp_path / "local", _opts())
    _same(store_rows(tmp_path / "local"), store_rows(url))  # no doubled rows, same numbers
    assert len(ResultStore(url).meta["invocations"]) == 2  # both runs in run.json's history


def test_sharded_units_resume_from_remote_parts(fx, tmp_path, url, monkeypatch):
    from roz.engine import jobs

    units = plan_units(_cfg(fx))
    real = jobs.execute_shard
    fail_shard(monkeypatch, (8, 16))
    recs = run_units(units, url, _opts(shard_size=8), raise_failures=False)
    assert not recs
    assert {f"failed/{u.unit_id}.json" for u in units} <= _remote_files(url)
    monkeypatch.setattr(jobs, "execute_shard", real)
    _fresh_copy(monkeypatch, tmp_path, "machine-b")  # the parts come from the remote
    assert [ResultStore(url).part_ranges(u.unit_id) for u in units] == [[(0, 4), (4, 8), (16, 20), (20, 24)]] * 2
    logs: list[str] = []
    run_units(units, url, _opts(shard_size=8), log=logs.append)
    computed = re.findall(r"computing (\S+)", "\n".join(logs))
    assert sorted(computed) == sorted([f"{u.unit_id}[8:16]" for u in units] + [u.unit_id for u in units])
    run_units(units, tmp_path / "local", _opts())
    _same(store_rows(tmp_path / "local"), store_rows(url))
    files = _remote_files(url)
    assert not any(f.startswith(("parts/", "failed/")) for f in files)  # merged: parts and failures cleared


def test_record_is_never_published_before_its_samples(fx, tmp_path, url, monkeypatch):
    from roz.engine import remote as remote_mod

    units = plan_units(_cfg(fx))[:1]
    uid = units[0].unit_id
    real_put = remote_mod.Remote.put
    order: list[str] = []

    def put(self, local, rel):
        order.append(rel)
        if rel.startswith("units/"):
            raise ConnectionError("network down between the samples and the record")
        return real_put(self, local, rel)

    monkeypatch.setattr(remote_mod.Remote, "put", put)
    recs = run_units(units, url, _opts(retries=0), raise_failures=False)
    assert order.index(f"samples/{uid}.parquet") < order.index(f"units/{uid}.json")
    assert not recs and recs.failures[0]["error"] == "ConnectionError"
    assert not ResultStore(url).is_done(uid)  # this working copy did not keep the unpublished record
    monkeypatch.setattr(remote_mod.Remote, "put", real_put)
    _fresh_copy(monkeypatch, tmp_path, "reader")
    reader = ResultStore(url, create=False)
    assert not reader.is_done(uid) and reader.records() == []  # samples alone are not a finished unit
    assert len(run_units(units, url, _opts())) == 1  # and the next run computes it


def test_corrupt_remote_samples_are_not_done(fx, tmp_path, url, monkeypatch):
    units = plan_units(_cfg(fx))[:1]
    uid = units[0].unit_id
    run_units(units, url, _opts())
    fs, root = fsspec.core.url_to_fs(url)
    fs.pipe_file(f"{root}/samples/{uid}.parquet", b"not parquet")  # replaced behind the record's back
    _fresh_copy(monkeypatch, tmp_path, "reader")
    store = ResultStore(url)
    assert not store.is_done(uid) and store.records() == []
    logs: list[str] = []
    run_units(units, url, _opts(), log=logs.append)
    assert f"computing {uid}" in "\n".join(logs)


def test_file_url_publishes_by_rename_and_equals_local(fx, tmp_path, monkeypatch):
    from roz.engine import remote as remote_mod

    units = plan_units(_cfg(fx))
    target = tmp_path / "remote" / "run"
    url = f"file://{target}"
    run_units(units, tmp_path / "local", _opts())
    run_units(units, url, _opts())
    assert not remote_mod.Remote(url).atomic_put  # a filesystem: temporary name, then rename
    assert sorted(p.name for p in (target / "units").iterdir()) == sorted(f"{u.unit_id}.json" for u in units)
    assert not list(target.rglob("*.tmp"))
    _fresh_copy(monkeypatch, tmp_path, "reader")
    _same(store_rows(tmp_path / "local"), store_rows(url))
    # the plain path reads the same directory too: the layout is the store's own
    _same(store_rows(tmp_path / "local"), store_rows(target))


def test_unknown_scheme_or_missing_backend_is_a_clear_error(tmp_path, monkeypatch):
    import importlib
    import sys

    with pytest.raises(StoreError, match="unknown filesystem 'nosuchfs'") as e:
        ResultStore("nosuchfs://bucket/run")
    assert "s3://" in e.value.hint
    monkeypatch.setitem(sys.modules, "s3fs", None)  # s3fs not installed (whether or not it is here)
    monkeypatch.delitem(importlib.import_module("fsspec.registry")._registry, "s3", raising=False)
    with pytest.raises(RozError, match="s3:// filesystem is not installed") as e:
        ResultStore("s3://bucket/run")
    assert "pip install s3fs" in e.value.hint
    with pytest.raises(StoreError, match="is not a ROZ run directory"):
        ResultStore(f"memory://roz-test-{uuid.uuid4().hex[:8]}/none", create=False)


def test_cli_run_and_results_take_a_url(fx, tmp_path, url, monkeypatch, roz_cli):
    import yaml

    cfg = {**_cfg(fx), "out": url}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    code, _, err = roz_cli("run", tmp_path / "run.yaml", "-b", "4", "--workers", "0")
    assert code == 0, err
    assert "units/" in " ".join(_remote_files(url))
    _fresh_copy(monkeypatch, tmp_path, "reader")
    code, out_text, err = roz_cli("results", url)
    assert code == 0, err
    assert "vit" in out_text and "fog" in out_text
    code, _, err = roz_cli("results", url.rsplit("/", 1)[0] + "/nothing-here")
    assert code != 0 and "is not a ROZ run directory" in err


def test_a_worker_on_another_node_publishes_and_the_driver_sees_it(fx, tmp_path, url, monkeypatch):
    from roz.engine import jobs

    (unit,) = plan_units(_cfg(fx))[:1]
    driver = ResultStore(url)  # working copy under this ROZ_HOME
    _fresh_copy(monkeypatch, tmp_path, "node-b")  # a Ray worker elsewhere: own working copy, no mirror
    worker = ResultStore(driver.location, sync=False)
    assert worker.root != driver.root
    out = jobs.run_job(jobs.Job(unit), worker, _opts(), jobs.ModelCache(), True)
    assert out["state"] == "done"
    assert not driver.is_done(unit.unit_id)  # not in the driver's working copy yet
    driver.sync()
    assert driver.is_done(unit.unit_id)
    driver.clear_unit(unit.unit_id)  # e.g. --force-unit: gone from the remote
    stale = ResultStore(url, sync=False)  # node b's working copy still holds the old record
    assert stale.unit_path(unit.unit_id).is_file()
    assert not stale.is_done(unit.unit_id)  # checked against the remote: not done, recomputed


def test_report_and_overlap_from_a_run_uploaded_to_object_storage(fixture_run, tmp_path, url):
    # a run directory copied to object storage with a plain tool (like `aws s3 sync`) reads as is
    from roz.report import build_report

    fs, root = fsspec.core.url_to_fs(url)
    fs.put(str(fixture_run), root, recursive=True)
    store = ResultStore(url, create=False)
    assert store.read_overlap() == ResultStore(fixture_run, create=False).read_overlap()
    local = build_report(fixture_run, tmp_path / "local", n_boot=20, formats=("png",))
    remote = build_report(url, tmp_path / "remote", n_boot=20, formats=("png",))
    assert (remote.parent / "summary.txt").read_text() == (local.parent / "summary.txt").read_text()
    tables = sorted(p.name for p in (local.parent / "tables").glob("*.csv"))
    assert tables and tables == sorted(p.name for p in (remote.parent / "tables").glob("*.csv"))
    for name in tables:
        assert (remote.parent / "tables" / name).read_text() == (local.parent / "tables" / name).read_text(), name


def test_cli_eval_takes_a_url(fx, tmp_path, url, monkeypatch, roz_cli):
    code, _, err = roz_cli("eval", "-m", fx["timm"], "-d", "imagefolder", "-r", fx["data"], "-o", url,
                           "-b", "4", "--workers", "0")
    assert code == 0, err
    assert [f for f in _remote_files(url) if f.startswith("units/")]
