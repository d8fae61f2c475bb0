"""The typed unit record: the store is its only reader and writer; the JSON on disk keeps its
format, older records load, and a stored record cannot be changed by accident."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle

import pytest

from roz import api
from roz.engine.record import DataInfo, ModelInfo, UnitRecord
from roz.engine.runner import RunOptions
from roz.engine.store import ResultStore
from roz.errors import StoreError


def _eval(seqfx, out):
    (rec,) = api.evaluate(seqfx["model"], "imagefolder", seqfx["data"], out=out, options=RunOptions(batch_size=4))
    return rec


def test_engine_record_round_trips_identically(seqfx, tmp_path):
    rec = _eval(seqfx, tmp_path / "run")
    store = ResultStore(tmp_path / "run", create=False)
    raw = json.loads(store.unit_path(rec.unit_id).read_text())
    typed = UnitRecord.from_json(raw)
    assert typed.to_json() == raw  # nothing lost, nothing added
    assert typed == store.record(rec.unit_id) == rec  # what run_units returns is what the store reads
    assert isinstance(typed.model, ModelInfo) and isinstance(typed.dataset, DataInfo)
    assert typed.model.name == raw["model"]["name"] and typed.dataset.fingerprint == raw["dataset"]["fingerprint"]
    assert typed.dataset.extra["n_labels"] == raw["dataset"]["n_labels"]  # a key the type does not name: kept
    assert typed.samples["sha256"] == raw["samples"]["sha256"] and typed.store_format == raw["store_format"]
    # the file on disk is exactly what to_json gives
    assert json.loads(json.dumps(typed.to_json(), sort_keys=True)) == raw
    # records travel between processes and copy like any value
    assert pickle.loads(pickle.dumps(typed)) == typed == copy.deepcopy(typed)


OLD = {"unit_id": "old1", "model": {"name": "rn50", "spec": "timm:resnet50", "identity": {"spec": "timm:resnet50"}},
       "dataset": {"name": "imagenet-r", "root": "/data/r", "n": 30000, "protocol": {"decode": "pil"}},
       "shift": None, "attack": None, "metrics": {"top1": 36.2, "n": 200}, "protocol": {"seed": 0},
       "skipped_files": [], "env": {}, "timing": {"seconds": 1.0}, "roz_version": "0.1.0", "store_format": 1,
       "legacy_note": {"kept": [1, 2]}}


def test_old_record_without_new_keys_loads(tmp_path):
    """A record from before ``kind``, ``samples``, ``fingerprint``, ``registry_name``, ``paper_order``, ``role``."""
    store = ResultStore(tmp_path / "run")
    store.unit_path("old1").parent.mkdir(parents=True)
    store.unit_path("old1").write_text(json.dumps(OLD))
    (rec,) = store.records()
    assert rec == store.record("old1")
    assert rec.kind == "eval" and rec.samples is None and rec.model.role == "standard"
    assert rec.dataset.fingerprint is None and rec.dataset.registry_name is None and rec.dataset.paper_order == 100
    assert rec.extra["legacy_note"]["kept"] == (1, 2) and rec.to_json()["legacy_note"] == {"kept": [1, 2]}
    assert store.metrics_table().loc[0, "top1"] == 36.2
    acc = store.accuracy_table()
    assert acc.acc.loc["rn50", "imagenet-r:top1"] == 36.2
    assert acc.n["imagenet-r:top1"] == 30000  # the dataset's size, not the metric "n" (200)
    assert acc.roles == {"rn50": "standard"}


def test_broken_record_is_a_store_error(tmp_path):
    store = ResultStore(tmp_path / "run")
    store.unit_path("bad").parent.mkdir(parents=True)
    store.unit_path("bad").write_text(json.dumps({**OLD, "unit_id": "bad", "model": {"spec": "x"}}))
    with pytest.raises(StoreError, match="model has no name"):
        store.records()
    assert store.records(skip_broken=True) == []
    with pytest.raises(StoreError, match="no finished unit"):
        store.record("nope")


def test_stored_record_cannot_be_mutated(tmp_path):
    store = ResultStore(tmp_path / "run")
    store.write_unit(UnitRecord.from_json(OLD), None)
    rec = store.record("old1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.unit_id = "other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.model.name = "other"
    with pytest.raises(TypeError):
        rec.metrics["top1"] = 99.0
    with pytest.raises(TypeError):
        rec.dataset.protocol["decode"] = "roz"
    with pytest.raises(AttributeError):
        rec.extra["legacy_note"]["kept"].append(3)
    # a copy given out is the caller's own
    plain = rec.to_json()
    plain["metrics"]["top1"] = 0.0
    assert store.record("old1").metrics["top1"] == 36.2 and rec.metrics["top1"] == 36.2
    # the store adds its own keys when it writes, without changing the caller's record
    written = store.write_unit(rec, None)
    assert written.samples is None and written.store_format is not None and rec.roz_version == "0.1.0"
