"""Issue 13: user strings are never read as Rich markup, help is plain text, tables survive a pipe,
errors are one line + hint with exit 2 (bad input) or 1 (any other failure)."""

import subprocess
import sys

from roz.datasets.registry import list_datasets


def _eval_named(clifx, out, roz_cli, name):
    """``roz eval`` of the tiny model on 4 images under the model name ``name``."""
    return roz_cli("eval", "-m", clifx["model"], "-d", "imagefolder", "-r", clifx["data"], "-o", out,
                   "--name", name, "--limit", "4", "--workers", "0")


def test_markup_in_model_name_does_not_crash(clifx, tmp_path, roz_cli):
    out = tmp_path / "run"
    name = "[/bold]mine[red]"
    code, printed, err = _eval_named(clifx, out, roz_cli, name)
    assert code == 0, err
    assert name in printed
    code, printed, err = roz_cli("results", out)
    assert code == 0 and name in printed


def test_markup_in_error_is_printed_literally(tmp_path, roz_cli):
    missing = tmp_path / "[/bold]run"
    code, _, err = roz_cli("results", missing)
    assert code == 2
    assert "error:" in err and "[/bold]run" in err and "Traceback" not in err


def test_help_and_models_are_plain_text(roz_cli):
    code, printed, _ = roz_cli("eval", "--help")
    assert code == 0 and "corruption:fog:3" in printed
    code, printed, _ = roz_cli("models")
    assert code == 0 and "timm:NAME[@PATH]" in printed


def test_datasets_table_keeps_names_whole_in_a_pipe(roz_cli):
    code, printed, _ = roz_cli("datasets")
    assert code == 0
    lines = printed.splitlines()
    for d in list_datasets():
        assert any(line.split()[:1] == [d.name] for line in lines), d.name


def test_baseline_folder_says_what_was_expected(tmp_path, roz_cli):
    (tmp_path / "run.json").write_text("{}")
    code, _, err = roz_cli("report", tmp_path, "--baseline", tmp_path)
    assert code == 2
    assert "is a folder; expected 'run'" in err


def test_unknown_choice_is_a_usage_error(clifx, tmp_path, roz_cli):
    code, _, err = roz_cli("eval", "-m", clifx["model"], "-d", "imagefolder", "-r", clifx["data"], "--head", "half")
    assert code == 2 and "Traceback" not in err
    assert "Invalid value for '--head'" in err and "'full', 'subset'" in err  # a choice, checked while parsing


def test_config_error_in_subprocess_has_no_traceback(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("models: [timm:x]\ndatasets: [{name: imagefolder, root: /nonexistent}]\nheads: full\nseed: abc\n")
    r = subprocess.run([sys.executable, "-m", "roz.cli", "run", str(cfg), "-o", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "error: invalid run config: 2 problem(s)" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


def test_unexpected_failure_is_one_line_exit_1(clifx, tmp_path, roz_cli, monkeypatch):
    from roz import api

    def broken(*a, **k):
        raise OSError("disk on fire")

    monkeypatch.setattr(api, "run_units", broken)
    code, _, err = roz_cli("eval", "-m", clifx["model"], "-d", "imagefolder", "-r", clifx["data"], "-o",
                           tmp_path / "run", "--workers", "0")
    assert code == 1
    assert "error: OSError: disk on fire" in err and "ROZ_DEBUG=1" in err and "Traceback" not in err


def test_pickled_module_refused_in_roz_words(tmp_path, roz_cli, clifx):
    import torch

    path = tmp_path / "whole.pt"
    torch.save(torch.nn.Linear(2, 2), path)  # a pickled module, not a state_dict
    code, _, err = roz_cli("eval", "-m", f"timm:test_vit@{path}", "-d", "imagefolder", "-r", clifx["data"], "-o",
                           tmp_path / "run", "--workers", "0")
    assert code == 2
    assert "refused to load" in err and "never unpickles code" in err
    assert "weights_only" not in err  # not torch's advice to load it unsafely


def test_console_summary_is_never_cut():
    import pandas as pd

    from roz.report.tables import to_console

    df = pd.DataFrame({"model": ["m" * 30], "dataset": ["d"], **{f"col{i:02d}" + "x" * 12: [1.5] for i in range(12)}})
    text = to_console(df)
    assert max(len(line) for line in text.splitlines()) > 160
    assert text.splitlines()[0].rstrip().endswith("col11" + "x" * 12)


def _two_baseline_run(run) -> None:
    """A run with two standard models on imagenet-val and imagenet-r (one fewer than a fit needs)."""
    from roz.engine.record import UnitRecord
    from roz.engine.store import ResultStore

    store = ResultStore(run)
    for k, (model, val, r) in enumerate((("rn18", 70.0, 33.0), ("rn50", 76.0, 36.0))):
        for ds, acc in (("imagenet-val", val), ("imagenet-r", r)):
            store.write_unit(UnitRecord.from_json({"unit_id": f"u{k}{ds}", "kind": "eval",
                              "model": {"name": model, "spec": f"fixture:{model}", "role": "standard", "identity": {}},
                              "dataset": {"name": ds, "root": "/x", "n": 100, "protocol": {}}, "shift": None,
                              "attack": None, "metrics": {"top1": acc, "n": 100}, "protocol": {}, "skipped_files": [],
                              "env": {}, "timing": {}}), None)


def test_report_says_why_there_is_no_baseline_fit(tmp_path, roz_cli):
    _two_baseline_run(tmp_path / "run")
    code, printed, err = roz_cli("report", tmp_path / "run", "--bootstrap", "10", "--no-svg")
    assert code == 0, err
    assert "only 2 usable baseline model(s), need 3" in printed


def test_report_with_the_shipped_testbed_baseline(tmp_path, roz_cli):
    import pandas as pd

    _two_baseline_run(tmp_path / "run")
    code, _, err = roz_cli("report", tmp_path / "run", "--baseline", "testbed", "--bootstrap", "10", "--no-svg")
    assert code == 0, err  # offline: the table ships with roz
    fits = pd.read_csv(tmp_path / "run" / "report" / "tables" / "fits.csv")
    assert list(fits["shift"]) == ["imagenet-r"] and (fits.n_models > 70).all()  # the testbed's standard models


def test_cli_starts_without_torch_and_prints_version():
    code = "import sys, roz.cli; print('torch' in sys.modules, 'pydantic' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.split() == ["False", "False"], r.stderr  # `roz --help` stays fast: choices come from light modules
    r = subprocess.run([sys.executable, "-m", "roz.cli", "--version"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("roz ")


def test_control_characters_in_names_never_reach_the_terminal(clifx, tmp_path, roz_cli):
    """A model name carrying terminal escape sequences and a newline is printed escaped, on one line."""
    hostile = "a\x1b[31mRED\x1b]0;title\x07\nsecond"
    code, printed, err = _eval_named(clifx, tmp_path / "run", roz_cli, hostile)
    assert code == 0, err
    assert "\x1b" not in printed and "\x07" not in printed
    assert any("a\\x1b[31mRED" in line and "\\nsecond" in line for line in printed.splitlines())
