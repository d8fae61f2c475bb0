"""The store: tampered files are "not done" (recomputed), parts that do not fit are discarded,
failed units are recorded and retried, run.json keeps every invocation, files follow the umask."""

from __future__ import annotations

import json
import os
import shutil

import pandas as pd
import pytest

from roz import api
import roz.engine.parts as parts_mod
from roz.engine.runner import RunOptions, UnitsFailed
from roz.engine.store import ResultStore
from roz.engine.units import DatasetRef, ModelRef, Unit
from roz.errors import DataError, RozError, StoreError


def _eval(seqfx, out, part_size=2048, **kw):
    return api.evaluate(seqfx["model"], "imagefolder", seqfx["data"], out=out,
                        options=RunOptions(batch_size=3, part_size=part_size), **kw)


def _truncate(p):
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _flip(p):
    b = bytearray(p.read_bytes())
    b[len(b) // 2] ^= 0xFF
    p.write_bytes(bytes(b))


TAMPER = {"truncated unit json": ("units", _truncate, "not valid JSON"),
          "zero-byte unit json": ("units", lambda p: p.write_bytes(b""), "empty"),
          "zero-byte samples": ("samples", lambda p: p.write_bytes(b""), "bytes"),
          "truncated samples": ("samples", _truncate, "truncated"),
          "flipped byte in samples": ("samples", _flip, "sha256")}


@pytest.mark.parametrize("case", sorted(TAMPER))
def test_tampered_unit_is_not_done_and_recomputed(seqfx, tmp_path, case):
    where, tamper, why = TAMPER[case]
    out = tmp_path / "run"
    (rec,) = _eval(seqfx, out)
    uid = rec.unit_id
    want = ResultStore(out).samples(uid)
    assert rec.samples["rows"] == 8 and len(rec.samples["sha256"]) == 64
    path = out / where / (f"{uid}.json" if where == "units" else f"{uid}.parquet")
    tamper(path)
    store = ResultStore(out)
    assert why in store.check_unit(uid) and not store.is_done(uid)
    if where == "samples":
        with pytest.raises(StoreError, match=why):
            store.samples(uid)
    logs = []
    (again,) = _eval(seqfx, out, log=logs.append)
    assert any("is not done" in m and why in m for m in logs), logs
    assert again.metrics == rec.metrics
    pd.testing.assert_frame_equal(ResultStore(out).samples(uid), want)


def _interrupt_after(monkeypatch, n):
    calls = []

    def boom():
        calls.append(1)
        if len(calls) >= n:
            raise KeyboardInterrupt

    monkeypatch.setattr(parts_mod, "fault_injection", boom)


@pytest.mark.parametrize("resume", ["part copied over another", "other part size"])
def test_parts_that_do_not_fit_are_discarded(seqfx, tmp_path, monkeypatch, resume):
    (ref,) = _eval(seqfx, tmp_path / "ref")
    want = ResultStore(tmp_path / "ref").samples(ref.unit_id)
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_after(m, 3)
        with pytest.raises(KeyboardInterrupt):
            _eval(seqfx, out, part_size=2)
    pdir = out / "parts" / ref.unit_id
    names = sorted(p.name for p in pdir.iterdir())
    assert names == ["part-00000000-00000002.parquet", "part-00000002-00000004.parquet",
                     "part-00000004-00000006.parquet"]
    if resume == "part copied over another":  # a valid part in the wrong place: 2 lost + 2 doubled rows
        shutil.copyfile(pdir / names[0], pdir / names[1])
    logs = []
    (rec,) = _eval(seqfx, out, part_size=2 if resume == "part copied over another" else 3, log=logs.append)
    got = ResultStore(out).samples(rec.unit_id)
    assert list(got["index"]) == list(range(8))
    pd.testing.assert_frame_equal(got, want)
    assert rec.metrics == ref.metrics
    if resume == "part copied over another":
        assert any("discarded 1 stored part" in m and "indices" in m for m in logs), logs


def test_failed_unit_is_recorded_others_run_and_it_is_retried(seqfx, tmp_path):
    out, missing = tmp_path / "run", tmp_path / "later"
    missing.mkdir()  # exists (the config is valid) but holds no images yet: the unit fails when it runs
    cfg = {"out": str(out), "models": [{"spec": seqfx["model"], "name": "tiny"}],
           "datasets": [{"name": "imagefolder", "root": str(missing), "label": "later"},
                        {"name": "imagefolder", "root": str(seqfx["data"]), "label": "here"}]}
    with pytest.raises(DataError) as lone:  # the lone failure: its own error, after the rest ran
        api.run(cfg)
    store = ResultStore(out)
    (done,) = store.records()
    assert done.dataset.name == "here"
    (fail,) = store.failures()
    assert fail["error"] == "DataError" and fail["message"] == lone.value.what and "Traceback" in fail["traceback"]
    from roz.engine.plan import plan_units
    from roz.engine.runner import run_units

    recs = run_units(plan_units(cfg), out, raise_failures=False)
    assert [r.dataset.name for r in recs] == ["here"] and [f["unit_id"] for f in recs.failures] == [fail["unit_id"]]
    shutil.copytree(seqfx["data"], missing, dirs_exist_ok=True)
    recs = api.run(cfg)
    assert sorted(r.dataset.name for r in recs) == ["here", "later"]
    assert ResultStore(out).failures() == []


def test_several_failures_are_listed(seqfx, tmp_path):
    for i in range(2):
        (tmp_path / f"empty{i}").mkdir()  # valid roots without images: both units fail when they run
    cfg = {"out": str(tmp_path / "run"), "models": [{"spec": seqfx["model"], "name": "tiny"}],
           "datasets": [{"name": "imagefolder", "root": str(tmp_path / f"empty{i}"), "label": f"empty{i}"}
                        for i in range(2)]}
    with pytest.raises(UnitsFailed, match="2 of 2 units failed") as e:
        api.run(cfg)
    assert len(e.value.failures) == 2 and "failed/" in e.value.hint


def test_run_json_keeps_every_invocation(seqfx, tmp_path):
    out = tmp_path / "run"
    _eval(seqfx, out)
    _eval(seqfx, out, shift="corruption:fog:1")
    meta = json.loads((out / "run.json").read_text())
    assert [i["config"]["shifts"] for i in meta["invocations"]] == [["none"], ["corruption:fog:1"]]
    assert meta["config"]["shifts"] == ["none"]  # the creating run's config is kept


def test_force_unit_recomputes_only_that_unit(seqfx, tmp_path):
    from roz.engine.plan import plan_units
    from roz.engine.runner import run_units

    out = tmp_path / "run"
    cfg = {"models": [{"spec": seqfx["model"], "name": "tiny"}], "shifts": ["none", "corruption:fog:1"],
           "datasets": [{"name": "imagefolder", "root": str(seqfx["data"])}]}
    units = plan_units(cfg)
    run_units(units, out)
    mtimes = {u.unit_id: (out / "units" / f"{u.unit_id}.json").stat().st_mtime_ns for u in units}
    run_units(units, out, force_unit={units[1].unit_id})
    after = {u.unit_id: (out / "units" / f"{u.unit_id}.json").stat().st_mtime_ns for u in units}
    assert after[units[0].unit_id] == mtimes[units[0].unit_id] and after[units[1].unit_id] != mtimes[units[1].unit_id]
    with pytest.raises(RozError, match="no unit"):
        run_units(units, out, force_unit={"nope"})


def test_files_follow_the_umask(seqfx, tmp_path):
    old = os.umask(0o022)
    try:
        (rec,) = _eval(seqfx, tmp_path / "run")
    finally:
        os.umask(old)
    for p in (tmp_path / "run" / "run.json", tmp_path / "run" / "units" / f"{rec.unit_id}.json",
              tmp_path / "run" / "samples" / f"{rec.unit_id}.parquet"):
        assert p.stat().st_mode & 0o777 == 0o644, p


def test_unit_id_never_hidden():
    u = Unit(model=ModelRef(spec="timm:x", name=".hidden"), dataset=DatasetRef(name="imagefolder", root="/d"))
    assert not u.unit_id.startswith(".") and u.unit_id.startswith("hidden__imagefolder__")
    # ids of ROZ-checkpoint units without a limit are the ids ROZ 0.1.0 wrote before the engine refactor
    # (existing run directories stay valid; library models are re-keyed by their preprocessing version);
    # a limited unit gets a new id (its draw changed)
    v = Unit(model=ModelRef(spec="local:/m/x.pt"), dataset=DatasetRef(name="imagefolder", root="/d"))
    assert v.unit_id == "local_m_x.pt__imagefolder__a8d2950747db"
    assert Unit(model=v.model, dataset=v.dataset, limit=5).unit_id.split("__")[-1] != "a8d2950747db"


def test_named_artifacts(tmp_path):
    store = ResultStore(tmp_path / "run")
    assert store.read_overlap() is None
    store.write_overlap({"mini-r": {"n_duplicates": 3}})
    assert store.read_overlap() == {"mini-r": {"n_duplicates": 3}}
    assert json.loads((tmp_path / "run" / "overlap.json").read_text()) == {"mini-r": {"n_duplicates": 3}}
    (tmp_path / "run" / "overlap.json").write_text("{trunc")
    with pytest.raises(StoreError, match="not valid JSON"):
        store.read_overlap()
    for bad in ("run", "../x", "Overlap"):
        with pytest.raises(StoreError, match="artefact name"):
            store.write_artifact(bad, {})
