"""The Ray executor runs the same units as the local one and gives exactly the same results.

Needs Ray (``pip install 'roz[ray]'``; the test extras include it). A local Ray cluster with two
CPUs is started in a subprocess running ``roz run --executor ray``, as a user would.
"""

import subprocess
import sys

import pandas as pd
import pytest
import yaml

from support.tinymodels import store_rows

pytest.importorskip("ray")


def _config(tmp_path, fx, out, executor):
    cfg = {"out": str(out), "executor": executor,
           "models": [{"spec": fx["timm"], "name": "vit"}, {"spec": fx["openclip"], "name": "clip"}],
           "datasets": [{"name": "imagefolder", "root": str(fx["data"])}],
           "shifts": ["none", "corruption:fog:2"]}
    p = tmp_path / f"{out.name}.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


@pytest.mark.slow
def test_ray_executor_matches_local(fx, tmp_path):
    runs = {}
    for ex in ("local", "ray"):
        out = tmp_path / ex
        r = subprocess.run([sys.executable, "-m", "roz.cli", "run", str(_config(tmp_path, fx, out, ex)),
                            "-b", "8", "--workers", "0"], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        runs[ex] = store_rows(out)
    assert len(runs["local"]) == 4 and sorted(runs["local"]) == sorted(runs["ray"])
    for uid, (df, metrics) in runs["local"].items():
        pd.testing.assert_frame_equal(df, runs["ray"][uid][0])
        assert metrics == runs["ray"][uid][1]
    # a re-run finds every unit done and computes nothing
    r = subprocess.run([sys.executable, "-m", "roz.cli", "run", str(_config(tmp_path, fx, tmp_path / "ray", "ray")),
                        "-b", "8", "--workers", "0"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "4 already done" in (r.stdout + r.stderr), r.stdout + r.stderr
