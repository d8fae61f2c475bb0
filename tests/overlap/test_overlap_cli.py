"""`roz overlap detect` / `roz overlap rescore` on the planted-duplicate world, through the CLI."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest

from roz.engine.store import ResultStore
from roz.metrics.effective import accuracy_table_from_rows, compute_effective_robustness
from roz.overlap.calibrate import load_ground_truth
from support.overlap_run import make_overlap_run


def _cli(monkeypatch, *args):
    from roz.cli import main

    monkeypatch.setattr(sys, "argv", ["roz", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        main()
        raise SystemExit(0)
    return e.value.code


@pytest.fixture
def run(world, test_paths, tmp_path):
    truth = load_ground_truth(world / "corpus" / "planted_duplicates.json")
    planted = {i for i, p in enumerate(test_paths) if any(str(p).endswith(t) for t in truth["test_file"])}
    assert len(planted) == len(truth)
    make_overlap_run(tmp_path / "run", len(test_paths), planted)
    return tmp_path / "run", planted


@pytest.mark.parametrize("detector", ["embedding", "phash"])
def test_detect_reports_precision_recall_and_writes_through_the_store(world, run, tmp_path, monkeypatch, capsys,
                                                                     detector):
    run_dir, planted = run
    code = _cli(monkeypatch, "overlap", "detect", run_dir, "--test", f"mini-r={world / 'mini-r'}", "--corpus",
                world / "corpus" / "images", "--detector", detector, "--encoder", "tiny", "--ground-truth",
                world / "corpus" / "planted_duplicates.json", "--cache-dir", tmp_path / "cache", "--bootstrap", 50,
                "--er-bootstrap", 30)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "near-duplicates; precision" in out.replace("\n", " ")
    summary = json.loads((run_dir / "overlap.json").read_text())
    assert summary["format"] == "roz-overlap/2"
    det = summary["mini-r"]["detection"]
    assert det["precision"] >= 0.95 and det["recall"] >= 0.95
    prot = summary["protocol"]
    assert prot["method"] == detector and prot["threshold"] is not None and prot["seed"] == 0
    store = ResultStore(run_dir, create=False)
    dups = store.read_overlap_duplicates("mini-r")
    found = set(dups.loc[dups["is_duplicate"], "test_index"])
    assert len(found & planted) >= 0.95 * len(planted)
    manifest = store.read_overlap_manifest("mini-r")
    assert manifest["n_kept"] + manifest["n_removed"] == len(dups) and set(manifest["kept_indices"]).isdisjoint(found)
    acc = pd.DataFrame(summary["mini-r"]["accuracy"]).set_index("model")
    assert acc.loc["zs", "acc_overlap"] == 100.0 and acc.loc["zs", "n_overlap"] == len(found)
    assert summary["gallery"] and summary["gallery"][0]["test_thumb"].startswith("data:image/jpeg;base64,")


def test_clean_er_matches_the_er_machinery_and_rescore_needs_no_model(world, run, tmp_path, monkeypatch):
    run_dir, planted = run
    assert _cli(monkeypatch, "overlap", "detect", run_dir, "--test", f"mini-r={world / 'mini-r'}", "--corpus",
                world / "corpus" / "images", "--encoder", "tiny", "--threshold", "0.9", "--cache-dir", tmp_path / "c",
                "--bootstrap", 20, "--er-bootstrap", 40) == 0
    summary = json.loads((run_dir / "overlap.json").read_text())
    assert summary["protocol"]["threshold_source"] == "given"
    rows = pd.DataFrame(summary["er"]["rows"]).set_index("model")
    store = ResultStore(run_dir, create=False)
    er = compute_effective_robustness(accuracy_table_from_rows(store.natural_table()), n_boot=0)
    for m in rows.index:  # the full-set ER is the ER machinery's number
        assert rows.loc[m, "er_full"] == pytest.approx(er.er(m, "mini-r"), abs=1e-9)
        assert rows.loc[m, "er_full_lo"] <= rows.loc[m, "er_full"] <= rows.loc[m, "er_full_hi"]
    # the zero-shot model was right on every duplicate: removing them lowers its ER
    assert rows.loc["zs", "er_clean"] < rows.loc["zs", "er_full"] and rows.loc["zs", "er_full_minus_clean_lo"] > 0
    # rescore from the stored rows: drop the results, flip the stored table to "no duplicates"
    dups = store.read_overlap_duplicates("mini-r")
    store.write_overlap_duplicates("mini-r", dups.assign(is_duplicate=False))
    del summary["er"]
    store.write_overlap(summary)
    monkeypatch.setattr("roz.overlap.detect.OverlapDetector.fit", lambda *a, **k: pytest.fail("detector re-run"))
    assert _cli(monkeypatch, "overlap", "rescore", run_dir) == 0
    again = json.loads((run_dir / "overlap.json").read_text())
    r2 = pd.DataFrame(again["er"]["rows"]).set_index("model")
    np.testing.assert_allclose(r2["er_clean"], r2["er_full"])
    assert pd.DataFrame(again["mini-r"]["accuracy"]).set_index("model").loc["zs", "n_overlap"] == 0
    assert again["protocol"]["er_boot"] == 40


def test_detect_refuses_bad_input(world, tmp_path, monkeypatch, capsys):
    args = ["overlap", "detect", tmp_path / "r", "--test", f"mini-r={world / 'mini-r'}", "--encoder", "tiny"]
    assert _cli(monkeypatch, *args, "--corpus", tmp_path / "nothing") == 2
    assert "does not exist" in capsys.readouterr().err
    assert _cli(monkeypatch, *args, "--corpus", world / "corpus" / "images", "--detector", "magic") == 2
    assert "unknown overlap detector" in capsys.readouterr().err
    assert _cli(monkeypatch, "overlap", "rescore", tmp_path / "r") == 2
