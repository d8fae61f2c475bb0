"""`roz demo --quick`: the whole benchmark on the quick ROZ-Mini world, through the real CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CKPT = Path(__file__).resolve().parents[2] / "src" / "roz" / "world" / "checkpoints"


@pytest.mark.slow
def test_demo_quick(tmp_path):
    assert (CKPT / "MANIFEST.json").is_file(), "the shipped ROZ-Mini checkpoints are part of the repository"
    env = dict(os.environ)
    real = Path(os.environ.get("ROZ_REAL_HOME", Path.home() / ".cache" / "roz"))
    if "ROZ_ASSETS" not in env and (real / "assets" / "MANIFEST.json").is_file():
        env["ROZ_ASSETS"] = str(real / "assets")  # reuse the verified artwork cache (no re-download)
    out = tmp_path / "demo"
    r = subprocess.run([sys.executable, "-m", "roz.cli", "demo", "--quick", "--out", str(out)], env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ER averaged per kind of shift" in r.stdout  # the three-way contrast is printed too
    html = (out / "report.html").read_text()
    for section in ("Headline", "Corruptions", "Adversarial", "Typographic", "overlap"):
        assert section.lower() in html.lower(), section
    from roz.engine.store import ResultStore

    units = ResultStore(out, create=False).records()
    datasets = {u.dataset.name for u in units}
    assert {"mini-val", "mini-v2", "mini-sketch", "mini-r", "mini-objectnet", "mini-vid", "mini-ytbb"} <= datasets
    kinds = {u.kind for u in units}
    assert {"eval", "attack"} <= kinds
    # CLIP-Auto: the shipped prompted CLIPs are evaluated with role zeroshot-auto (purple, paired with the CLIP)
    assert {u.model.name for u in units if u.model.role == "zeroshot-auto"} == {"roz-mini-clip-auto", "roz-mini-clip-coop"}
    vid = next(u for u in units if u.dataset.name == "mini-vid")
    assert {"pm0", "pm10"} <= set(vid.metrics)
    overlap = json.loads((out / "overlap.json").read_text())
    # the planted near-duplicates of mini-r are recovered
    assert overlap["mini-r"]["detection"]["recall"] >= 0.9
    _assert_three_kinds_of_er(out / "report", html)


def _assert_three_kinds_of_er(report: Path, html: str) -> None:
    """Issue 14: the paper's contrast -- ER with a bootstrap interval averaged over natural,
    synthetic and adversarial shifts, and a fitted scatter for each kind's axes."""
    import math

    import pandas as pd

    avg = pd.read_csv(report / "tables" / "er_average.csv").set_index("model")
    clip = avg.loc["roz-mini-clip"]
    for kind in ("", "_synthetic", "_adversarial"):
        vals = [clip[f"er_avg{kind}"], clip[f"er_avg{kind}_lo"], clip[f"er_avg{kind}_hi"]]
        assert all(math.isfinite(v) for v in vals), (kind, vals)
        assert vals[1] <= vals[0] <= vals[2], (kind, vals)
    assert "mini-val~corruption-mean" in clip["shifts_synthetic"] and "mini-val~typographic" in clip["shifts_synthetic"]
    assert "mini-val~fgsm@1/255" in clip["shifts_adversarial"]
    for kind in ("natural", "synthetic", "adversarial"):
        assert f"{kind} (mean of" in html, kind  # the headline's side-by-side averages
        assert (report / "figures" / f"grid_{kind}_shifts.svg").is_file(), kind
    for axis in ("corruption-mean", "fgsm_1_255", "typographic", "flip-gaussian_noise"):
        assert (report / "figures" / f"shift_mini-val_{axis}.svg").is_file(), axis
    fits = pd.read_csv(report / "tables" / "fits.csv")
    for shift in ("mini-val~corruption-mean", "mini-val~fgsm@1/255", "mini-val~typographic",
                  "mini-val~flip-gaussian_noise"):
        assert (fits.loc[fits["shift"] == shift, "n_models"] >= 3).all() and (fits["shift"] == shift).any(), shift
