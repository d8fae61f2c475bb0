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
