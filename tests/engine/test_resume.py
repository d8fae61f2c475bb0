"""An interrupted run resumes and ends with exactly the rows of an uninterrupted run."""

import os
import signal
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from roz.engine.store import ResultStore
from support.tinymodels import store_rows


def _config(tmp_path, fx, out):
    cfg = {"out": str(out), "models": [{"spec": fx["timm"], "name": "vit"}, {"spec": fx["openclip"], "name": "clip"}],
           "datasets": [{"name": "imagefolder", "root": str(fx["data"])}], "shifts": ["none"]}
    p = tmp_path / f"{out.name}.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


@pytest.mark.slow
def test_kill_and_resume(fx, tmp_path):
    env = {**os.environ, "ROZ_FAULT_KILL_AFTER_PARTS": "3"}
    ref = tmp_path / "ref"
    r0 = subprocess.run([sys.executable, "-m", "roz.cli", "run", str(_config(tmp_path, fx, ref)), "--part-size", "4",
                    "-b", "4", "--workers", "0"], capture_output=True, text=True, timeout=300)
    assert r0.returncode == 0, r0.stderr
    run = tmp_path / "run"
    cfg = _config(tmp_path, fx, run)
    cmd = [sys.executable, "-m", "roz.cli", "run", str(cfg), "--part-size", "4", "-b", "4", "--workers", "0"]
    # the process SIGKILLs itself right after its 3rd part (24 images, parts of 4: mid first unit)
    p = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
    assert p.returncode == -signal.SIGKILL
    parts = list((run / "parts").glob("*/part-*.parquet"))
    assert len(parts) == 3
    assert not list((run / "units").glob("*.json"))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    a, b = store_rows(ref), store_rows(run)
    assert sorted(a) == sorted(b)
    for uid in a:
        pd.testing.assert_frame_equal(a[uid][0], b[uid][0])
        assert a[uid][1] == b[uid][1]
    assert not any((run / "parts").glob("*/part-*"))  # parts are cleaned once a unit is written


def test_rerun_skips_and_force_recomputes(fx, tmp_path):
    from roz import api

    out = tmp_path / "r"
    api.evaluate(fx["timm"], "imagefolder", fx["data"], out=out)
    uid = ResultStore(out).records()[0].unit_id
    mtime = (out / "units" / f"{uid}.json").stat().st_mtime_ns
    api.evaluate(fx["timm"], "imagefolder", fx["data"], out=out)
    assert (out / "units" / f"{uid}.json").stat().st_mtime_ns == mtime
    api.evaluate(fx["timm"], "imagefolder", fx["data"], out=out, force=True)
    assert (out / "units" / f"{uid}.json").stat().st_mtime_ns != mtime
