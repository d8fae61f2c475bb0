"""Results out: `roz results` formats (table/csv/json/wide/testbed), merging run directories, and
the wide and testbed exports round-tripping through ``read_testbed``."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from roz.engine.record import UnitRecord
from roz.engine.store import ResultStore
from roz.metrics.testbed import read_testbed


def _unit(uid, model, ds, metrics, role="standard", registry=None, shift=None, protocol=None, extra_ds=None):
    return UnitRecord.from_json({
        "unit_id": uid, "kind": "eval", "model": {"name": model, "role": role},
        "dataset": {"name": ds, "registry_name": registry or ds, "n": 100, **(extra_ds or {})},
        "shift": shift, "metrics": metrics, "protocol": protocol or {"limit": None, "shard": [0, 1]}})


FOG = {1: 70.0, 2: 66.0, 3: 61.0, 4: 55.5, 5: 40.25}


def _testbed_run(root) -> ResultStore:
    store = ResultStore(root)
    for model, role, base in (("my-resnet", "standard", 76.5), ("my-clip", "zeroshot", 68.25)):
        store.write_unit(_unit(f"{model}-val", model, "imagenet-val", {"top1": base, "top5": 93.0}, role), None)
        store.write_unit(_unit(f"{model}-v2", model, "imagenetv2-matched-frequency", {"top1": base - 12.5}, role), None)
        store.write_unit(_unit(f"{model}-vid", model, "imagenet-vid-robust", {"pm0": base - 10, "pm10": base - 20},
                               role), None)
        for s, v in FOG.items():
            store.write_unit(_unit(f"{model}-fog{s}", model, "imagenet-val", {"top1": v - (role == "zeroshot")},
                                   role, shift={"name": "corruption", "corruption": "fog", "severity": s}), None)
        store.write_unit(_unit(f"{model}-c", model, "imagenet-c", {"top1": 50.5}, role,
                               extra_ds={"protocol": {"corruption": "contrast", "severity": 2}}), None)
        store.write_unit(_unit(f"{model}-r", model, "imagenet-r", {"top1": 33.0}, role,
                               protocol={"limit": 500, "shard": [0, 1]}), None)  # part of the dataset only
    store.write_unit(_unit("custom", "my-clip", "mini-val", {"top1": 90.0}, "zeroshot", registry="imagefolder"), None)
    return store


def test_testbed_export_round_trips_through_read_testbed(tmp_path, roz_cli):
    _testbed_run(tmp_path / "run")
    code, out, err = roz_cli("results", tmp_path / "run", "--format", "testbed", "--output", tmp_path / "tb.csv")
    assert code == 0, err
    raw = pd.read_csv(tmp_path / "tb.csv")
    assert list(raw.columns) == ["model"] + sorted(raw.columns[1:])  # the testbed's file: sorted columns
    assert "imagenet-c.fog.3_in-memory" in raw.columns and "imagenet-c.contrast.2_on-disk" in raw.columns
    assert "imagenet-r" not in raw.columns  # a --limit unit is not a full-dataset number
    assert not any("mini-val" in c for c in raw.columns)  # not a testbed dataset
    back = read_testbed(tmp_path / "tb.csv")
    assert back.value("my-resnet", "imagenet-val:top1") == 76.5
    assert back.value("my-clip", "imagenetv2-matched-frequency:top1") == 68.25 - 12.5
    assert back.value("my-clip", "imagenet-vid-robust:pm10") == 48.25
    assert back.value("my-resnet", "imagenet-c-fog:top1") == pytest.approx(sum(FOG.values()) / 5)
    assert back.value("my-clip", "imagenet-c-fog:top1") == pytest.approx(sum(FOG.values()) / 5 - 1)
    assert back.role("my-clip") == "testbed"  # the testbed's own roles: not one of its published rows
    code, _, _ = roz_cli("results", tmp_path / "run", "--format", "testbed", "--include-subsets",
                         "--output", tmp_path / "tb2.csv")
    assert code == 0 and read_testbed(tmp_path / "tb2.csv").value("my-resnet", "imagenet-r:top1") == 33.0


def test_wide_round_trips_through_read_testbed(tiny_run, tmp_path, roz_cli):
    code, out, err = roz_cli("results", tiny_run["run"], "--format", "wide")
    assert code == 0, err
    (tmp_path / "wide.csv").write_text(out)
    cols = pd.read_csv(tmp_path / "wide.csv").columns[1:]
    back = read_testbed(tmp_path / "wide.csv", columns={c: c for c in cols}).acc
    want = ResultStore(tiny_run["run"], create=False).accuracy_table().acc
    want = want[[k for k in want.columns if k.endswith(":top1")]]
    assert set(back.columns) == set(want.columns) and "tiny-val~corruption-fog:top1" in back.columns
    pd.testing.assert_frame_equal(back[sorted(want.columns)].sort_index(), want[sorted(want.columns)].sort_index(),
                                  check_names=False)


def test_csv_json_and_table_formats_are_complete(tmp_path, roz_cli):
    long = "a-model-name-" + "x" * 150
    store = ResultStore(tmp_path / "run")
    store.write_unit(_unit("u1", long, "mini-val", {"top1": 12.3456789}), None)
    code, out, _ = roz_cli("results", tmp_path / "run")
    assert code == 0 and long in out and "12.35" in out  # printed whole, never cut
    code, out, _ = roz_cli("results", tmp_path / "run", "--format", "csv")
    assert pd.read_csv(__import__("io").StringIO(out)).loc[0, "top1"] == 12.3456789  # full precision
    code, out, _ = roz_cli("results", tmp_path / "run", "--format", "json")
    assert json.loads(out) == [{"unit_id": "u1", "kind": "eval", "model": long, "role": "standard",
                                "dataset": "mini-val", "shift": "", "attack": "", "top1": 12.3456789}]
    code, _, err = roz_cli("results", tmp_path / "run", "--format", "xml")
    assert code == 2 and "unknown results format" in err


def test_several_runs_merge_and_conflicting_duplicates_fail(tmp_path, roz_cli):
    a, b = ResultStore(tmp_path / "a"), ResultStore(tmp_path / "b")
    a.write_unit(_unit("u1", "m1", "mini-val", {"top1": 50.0}), None)
    b.write_unit(_unit("u1", "m1", "mini-val", {"top1": 50.0}), None)  # the same unit, the same numbers
    b.write_unit(_unit("u2", "m2", "mini-val", {"top1": 60.0}), None)
    code, out, err = roz_cli("results", tmp_path / "a", tmp_path / "b", "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["unit_id"], r["run"]) for r in rows] == [("u1", str(tmp_path / "a")), ("u2", str(tmp_path / "b"))]
    code, out, _ = roz_cli("results", tmp_path / "a", tmp_path / "b", "--format", "wide")
    assert out.splitlines() == ["model,mini-val", "m1,50.0", "m2,60.0"]
    c = ResultStore(tmp_path / "c")
    c.write_unit(_unit("u1", "m1", "mini-val", {"top1": 51.0}), None)
    code, _, err = roz_cli("results", tmp_path / "a", tmp_path / "c")
    assert code == 2 and "u1" in err and "different metrics" in err
    d = ResultStore(tmp_path / "d")
    d.write_unit(_unit("u9", "m1", "mini-val", {"top1": 52.0}), None)  # another unit, the same cell
    code, _, err = roz_cli("results", tmp_path / "a", tmp_path / "d", "--format", "wide")
    assert code == 2 and "m1" in err and "mini-val" in err and "conflicting" in err
