"""Two ``roz run`` on one run directory at once: both finish, every unit is computed exactly once
(per-unit locks; a unit in progress elsewhere is deferred, waited for and re-checked), and the
rows equal a run on its own."""

from __future__ import annotations

import pytest

import re
import subprocess
import sys
from collections import Counter

import pandas as pd
import yaml

from roz import api
from roz.engine.runner import RunOptions
from support.tinymodels import store_rows


@pytest.mark.slow
def test_two_processes_one_run_dir(seqfx, tmp_path):
    run = tmp_path / "run"
    cfg = {"out": str(run), "models": [{"spec": seqfx["model"], "name": "a"}, {"spec": seqfx["model_b"], "name": "b"}],
           "datasets": [{"name": "imagefolder", "root": str(seqfx["data"])}],
           "shifts": ["none", "corruption:fog:1", "corruption:gaussian_noise:1"]}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "roz.cli", "run", str(path), "--part-size", "2", "-b", "2", "--workers", "0"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (o, e) in zip(procs, outs):
        assert p.returncode == 0, e[-3000:]
    computed = Counter(m for _, e in outs for m in re.findall(r"computing (\S+__[0-9a-f]{12})", e))
    got = store_rows(run)
    assert len(got) == 6 and set(computed) == set(got) and set(computed.values()) == {1}, computed
    ref = tmp_path / "ref"
    api.run({**cfg, "out": str(ref)}, options=RunOptions(batch_size=2, part_size=2))
    want = store_rows(ref)
    assert sorted(want) == sorted(got)
    for uid in want:
        pd.testing.assert_frame_equal(want[uid][0], got[uid][0])
        assert want[uid][1] == got[uid][1]
