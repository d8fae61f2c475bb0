"""Scale-out features on the local executor: shards merged into exactly the unsharded rows, resume
of missing shards only, bounded retries, failures listed by ``roz results``, model reuse, and the
run view's line log. (The same on Ray: ``test_ray_executor.py``.)"""

from __future__ import annotations

import re

import pandas as pd

from roz.engine import jobs
from roz.engine.options import RunOptions
from roz.engine.plan import plan_units
from roz.engine.runner import run_units
from roz.engine.shards import covered, shard_spans
from roz.engine.store import ResultStore
from support.tinymodels import fail_shard, store_rows


def _cfg(fx, attack=True):
    cfg = {"models": [{"spec": fx["timm"], "name": "vit"}], "shifts": ["none", "corruption:fog:2"],
           "datasets": [{"name": "imagefolder", "root": str(fx["data"])}]}
    if attack:
        cfg["attacks"] = [{"name": "pgd", "eps": [0.03], "steps": 2}]  # seeded per sample: shardable
    return cfg


def _same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b) and a
    for uid in a:
        pd.testing.assert_frame_equal(a[uid][0], b[uid][0])
        assert a[uid][1] == b[uid][1], uid


def _opts(**kw):
    return RunOptions(batch_size=4, workers=0, part_size=4, device="cpu", **kw)


def test_shard_spans_fall_on_batch_and_part_edges():
    assert shard_spans(24, None, 4, 4) == [(0, 24)] and shard_spans(24, 24, 4, 4) == [(0, 24)]
    assert shard_spans(24, 8, 4, 4) == [(0, 8), (8, 16), (16, 24)]
    assert shard_spans(24, 5, 4, 6) == [(0, 12), (12, 24)]  # lcm(4, 6) = 12: batches and parts unchanged
    assert covered([(0, 4), (4, 8)], (0, 8)) and not covered([(0, 4), (8, 12)], (0, 12))


def test_sharded_equals_unsharded(fx, tmp_path):
    units = plan_units(_cfg(fx))
    run_units(units, tmp_path / "whole", _opts())
    logs: list[str] = []
    run_units(units, tmp_path / "sharded", _opts(shard_size=8), log=logs.append)
    assert sum("3 shards of up to 8 samples" in m for m in logs) == 3  # every unit (24 images) in 3 shards
    assert len(re.findall(r"computing \S+\[8:16\]", "\n".join(logs))) == 3
    _same(store_rows(tmp_path / "whole"), store_rows(tmp_path / "sharded"))
    assert not (tmp_path / "sharded" / "parts").exists() or not any((tmp_path / "sharded" / "parts").iterdir())


def test_resume_computes_only_missing_shards(fx, tmp_path, monkeypatch):
    units = plan_units(_cfg(fx, attack=False))
    run_units(units, tmp_path / "whole", _opts())
    real = jobs.execute_shard
    fail_shard(monkeypatch, (8, 16))
    recs = run_units(units, tmp_path / "run", _opts(shard_size=8), raise_failures=False)
    assert not recs and {f["unit_id"] for f in recs.failures} == {u.unit_id for u in units}
    assert all(f["shard"] == [8, 16] for f in recs.failures)
    store = ResultStore(tmp_path / "run")
    assert [store.part_ranges(u.unit_id) for u in units] == [[(0, 4), (4, 8), (16, 20), (20, 24)]] * 2
    monkeypatch.setattr(jobs, "execute_shard", real)
    logs: list[str] = []
    run_units(units, tmp_path / "run", _opts(shard_size=8), log=logs.append)
    computed = re.findall(r"computing (\S+)", "\n".join(logs))
    assert sorted(computed) == sorted([f"{u.unit_id}[8:16]" for u in units] + [u.unit_id for u in units])
    _same(store_rows(tmp_path / "whole"), store_rows(tmp_path / "run"))
    assert store.failures() == []


def test_transient_error_is_retried_and_bounded(fx, tmp_path, monkeypatch):
    units = plan_units(_cfg(fx, attack=False))
    real, calls = jobs.execute_unit, []

    def flaky(unit, *a, **kw):  # the clean unit fails once, the fog unit always
        calls.append(unit.unit_id)
        if unit.shift or calls.count(unit.unit_id) == 1:
            raise RuntimeError(f"flaky {len(calls)}")
        return real(unit, *a, **kw)

    monkeypatch.setattr(jobs, "execute_unit", flaky)
    recs = run_units(units, tmp_path / "run", _opts(retries=2), raise_failures=False)
    clean, fog = units
    assert [r.unit_id for r in recs] == [clean.unit_id]
    assert calls.count(clean.unit_id) == 2 and calls.count(fog.unit_id) == 3
    (fail,) = recs.failures
    assert fail["unit_id"] == fog.unit_id and fail["attempts"] == 3 and "RuntimeError" in fail["traceback"]


def test_user_error_is_not_retried(seqfx, tmp_path):
    (tmp_path / "empty").mkdir()
    cfg = {"models": [{"spec": seqfx["model"]}], "datasets": [{"name": "imagefolder", "root": str(tmp_path / "empty")}]}
    recs = run_units(plan_units(cfg), tmp_path / "run", _opts(retries=5), raise_failures=False)
    (fail,) = recs.failures
    assert fail["error"] == "DataError" and fail["attempts"] == 1


def test_run_exits_nonzero_and_results_list_failures(seqfx, tmp_path, roz_cli):
    import yaml

    (tmp_path / "empty").mkdir()
    out = tmp_path / "run"
    cfg = {"out": str(out), "models": [{"spec": seqfx["model"], "name": "tiny"}],
           "datasets": [{"name": "imagefolder", "root": str(tmp_path / "empty"), "label": "bad"},
                        {"name": "imagefolder", "root": str(seqfx["data"]), "label": "good"}]}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    code, _, err = roz_cli("run", tmp_path / "run.yaml", "-b", "4", "--workers", "0", "--retries", "1")
    assert code != 0
    code, out_text, err = roz_cli("results", out)
    assert code == 0 and "good" in out_text
    assert re.search(r"FAILED tiny__bad__\S+: DataError", err) and "1 failed unit(s)" in err


def test_models_are_built_once_per_process(fx, tmp_path):
    cache = jobs.ModelCache(capacity=2)
    store = ResultStore(tmp_path / "run")
    outs = [jobs.run_job(jobs.Job(u), store, _opts(), cache, True) for u in plan_units(_cfg(fx, attack=False))]
    assert [o["state"] for o in outs] == ["done", "done"]
    assert [(o["loads"], o["hits"]) for o in outs] == [(1, 0), (0, 1)]  # the second unit reuses the model


def test_line_log_reports_progress(fx, tmp_path):
    logs: list[str] = []
    run_units(plan_units(_cfg(fx, attack=False)), tmp_path / "run", _opts(), log=logs.append)
    lines = [m for m in logs if m.startswith("units: ")]
    assert len(lines) == 2 and lines[-1].startswith("units: 2/2 done, 0 running, 0 failed")
    assert re.search(r"\d+\.\d img/s", lines[-1]) and "ETA 0:00:00" in lines[-1]
