"""Every unit kind resumes after a SIGKILL mid-unit with exactly the rows of an uninterrupted run
(0 lost, 0 doubled), through the real CLI (``ROZ_FAULT_KILL_AFTER_PARTS`` kills the process right
after its N-th part)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from roz import api
from roz.engine.runner import RunOptions
from support.tinymodels import store_rows


def _cfg(tmp_path, seqfx, out, kind):
    cfg = {"out": str(out), "models": [{"spec": seqfx["model"], "name": "tiny"}],
           "datasets": [{"name": "imagefolder", "root": str(seqfx["data"])}]}
    if kind == "perturbation":
        cfg["shifts"] = ["perturbation:rotate"]  # 31 frames a sequence
    else:
        cfg["attacks"] = [{"name": "pgd", "eps": [0.03], "steps": 2}]  # random start: seeded per sample
    p = tmp_path / f"{out.name}.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


# (kind, --part-size, kill after this many parts written by the process, parts left on disk)
CASES = {"perturbation": ("62", 2, 2),  # parts of 62 // 31 = 2 sequences: 4 parts, killed after the 2nd
         "attack": ("2", 6, 2)}  # the clean unit's 4 parts, then 2 of the attack unit's 4


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(CASES))
def test_kind_resumes_after_kill(seqfx, tmp_path, kind):
    part_size, kill_after, left = CASES[kind]
    args = ["--part-size", part_size, "-b", "3", "--workers", "0"]
    ref = tmp_path / "ref"  # the uninterrupted run, in this process
    api.run(_cfg(tmp_path, seqfx, ref, kind), options=RunOptions(batch_size=3, part_size=int(part_size)))
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "roz.cli", "run", str(_cfg(tmp_path, seqfx, run, kind)), *args]
    p = subprocess.run(cmd, env={**os.environ, "ROZ_FAULT_KILL_AFTER_PARTS": str(kill_after)}, capture_output=True,
                       timeout=600)
    assert p.returncode == -signal.SIGKILL
    units = {f.stem: f for f in (run / "parts").iterdir()}
    assert [len(list(d.glob("part-*.parquet"))) for d in units.values()] == [left]  # one unit interrupted mid-way
    (uid,) = units
    assert not (run / "units" / f"{uid}.json").exists()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = store_rows(ref), store_rows(run)
    assert sorted(a) == sorted(b) and uid in b
    for u in a:
        pd.testing.assert_frame_equal(a[u][0], b[u][0])
        assert a[u][1] == b[u][1]
    assert list(b[uid][0]["index"]) == list(range(8))  # 0 lost, 0 doubled
    assert not any((run / "parts").glob("*/part-*"))
