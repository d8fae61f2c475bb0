"""Per-sample rows are self-describing: identity and class-name columns in the Parquet file itself,
and runs written without them still read (the store fills the identity from the unit record)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

import roz.engine.store as store_mod
from roz.datasets.classes import get_class_set
from roz.engine.record import UnitRecord
from roz.engine.samples import IDENTITY_COLUMNS
from roz.engine.store import ResultStore


def test_parquet_rows_carry_identity_and_class_names(tiny_run):
    store = ResultStore(tiny_run["run"], create=False)
    names = dict(zip(get_class_set("imagenet-1k").wnids, get_class_set("imagenet-1k").names))
    label_names = [names[w] for w in tiny_run["wnids"]]
    kinds = set()
    for rec in store.records():
        rows = pq.read_table(store.samples_path(rec.unit_id)).to_pandas()  # the file alone, no store, no JSON
        kinds.add(rec.kind)
        assert set(IDENTITY_COLUMNS) <= set(rows.columns)
        assert set(rows["unit_id"]) == {rec.unit_id} and set(rows["model"]) == {rec.model.name}
        assert set(rows["dataset"]) == {"tiny-val"} and set(rows["role"]) == {rec.model.role}
        assert list(rows["target_name"]) == [label_names[t] for t in rows["target"]]
        if rec.kind == "attack":
            assert set(rows["attack"]) == {"fgsm"} and set(rows["shift"]) == {""}
            assert list(rows["clean_pred_name"]) == [label_names[p] for p in rows["clean_pred"]]
            assert list(rows["adv_pred_name@1/255"]) == [label_names[p] for p in rows["adv_pred@1/255"]]
        else:
            assert list(rows["pred_name"]) == [label_names[p] for p in rows["pred"]]
            want_shift = "" if rec.shift is None else "corruption(corruption=fog,"
            assert all(s.startswith(want_shift) for s in rows["shift"]) and set(rows["attack"]) == {""}
    assert kinds == {"eval", "attack"}


def _record(uid: str) -> UnitRecord:
    return UnitRecord.from_json({"unit_id": uid, "kind": "eval", "model": {"name": "m1", "role": "zeroshot"},
                                 "dataset": {"name": "d1", "n": 3}, "shift": {"name": "corruption", "corruption": "fog",
                                                                              "severity": 3},
                                 "metrics": {"top1": 66.7}})


def test_run_written_without_the_new_columns_still_reads(tmp_path, monkeypatch):
    rows = pa.table({"index": [0, 1, 2], "correct": [True, False, True], "pred": [1, 0, 2], "target": [1, 1, 2]})
    monkeypatch.setattr(store_mod, "with_identity", lambda table, values: table)  # the store before this change
    ResultStore(tmp_path / "old").write_unit(_record("u1"), rows)
    monkeypatch.undo()
    store = ResultStore(tmp_path / "old", create=False)
    assert "model" not in pq.read_table(store.samples_path("u1")).column_names  # really an old file
    got = store.samples("u1")
    assert list(got["correct"]) == [True, False, True]
    assert set(got["model"]) == {"m1"} and set(got["dataset"]) == {"d1"} and set(got["role"]) == {"zeroshot"}
    assert set(got["shift"]) == {"corruption(corruption=fog,severity=3)"} and set(got["attack"]) == {""}


def test_store_never_replaces_a_column_the_kind_wrote(tmp_path):
    rows = pa.table({"index": [0, 1], "correct": [True, False], "model": ["kept", "kept"]})
    store = ResultStore(tmp_path / "r")
    store.write_unit(_record("u1"), rows)
    got = pq.read_table(store.samples_path("u1")).to_pandas()
    assert list(got["model"]) == ["kept", "kept"] and set(got["dataset"]) == {"d1"}
