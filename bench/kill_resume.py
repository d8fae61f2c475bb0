"""Crash test: SIGKILL `roz run` at random moments, resume, and count lost and doubled rows.

For each unit kind (evaluation, perturbation sequence, attack) a reference run is computed without
interruption; then `roz run` on a fresh run directory is killed at a random time (uniform over the
reference's wall time, seeded) up to twice per fresh run, then the run is finished by a plain
re-run. The finished store's per-sample rows and metrics are compared with the reference: every
lost or doubled sample index is counted. Prints one line per kind and exits 1 if any row was lost, doubled or different.

    python bench/kill_resume.py --trials 12        # 12 fresh runs per kind, each killed up to twice

Uses the tests' tiny model and image builders (tests/support), so it needs the repository checkout.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # a bench, not a test: reuse the tests' fixture builders

from support import tinymodels  # noqa: E402

KINDS = {
    "eval": {"shifts": ["corruption:fog:2"]},
    "perturbation": {"shifts": ["perturbation:rotate"]},
    "attack": {"attacks": [{"name": "pgd", "eps": [0.03], "steps": 3}]},
}


def _config(tmp: Path, out: Path, model: str, data: Path, kind: str) -> Path:
    cfg = {"out": str(out), "models": [{"spec": model, "name": "tiny"}],
           "datasets": [{"name": "imagefolder", "root": str(data)}], **KINDS[kind]}
    p = tmp / f"{out.name}.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _cmd(cfg: Path, part_size: int) -> list[str]:
    return [sys.executable, "-m", "roz.cli", "run", str(cfg), "--part-size", str(part_size), "-b", "4",
            "--workers", "0", "--device", "cpu"]


def _rows(run: Path) -> dict:
    return tinymodels.store_rows(run)


def _compare(ref: Path, run: Path) -> tuple[int, int, int]:
    a, b = _rows(ref), _rows(run)
    lost = doubled = different = 0
    for uid, (rows, metrics) in a.items():
        got = b.get(uid)
        if got is None:
            lost += len(rows)
            continue
        idx = list(got[0]["index"])
        lost += len(set(rows["index"]) - set(idx))
        doubled += len(idx) - len(set(idx))
        different += int(not rows.equals(got[0]) or metrics != got[1])
    return lost, doubled, different


def crash_rounds(tmp: Path, model: str, data: Path, kind: str, trials: int, rng: random.Random) -> dict:
    """``trials`` fresh runs, each SIGKILLed up to twice at a random moment, then finished by a plain re-run."""
    part = 62 if kind == "perturbation" else 4  # perturbation rows are 31-frame sequences
    ref = tmp / f"ref-{kind}"
    t0 = time.perf_counter()
    subprocess.run(_cmd(_config(tmp, ref, model, data, kind), part), check=True, capture_output=True)
    wall = time.perf_counter() - t0
    kills = lost = doubled = different = 0
    for t in range(trials):
        run = tmp / f"run-{kind}-{t}"
        cmd = _cmd(_config(tmp, run, model, data, kind), part)
        for _ in range(2):
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                p.wait(timeout=rng.uniform(0.4, 1.0) * wall)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
                kills += 1
        subprocess.run(cmd, check=True, capture_output=True)  # finish (resume) without interruption
        lo, do, di = _compare(ref, run)
        lost, doubled, different = lost + lo, doubled + do, different + di
    n_rows = sum(len(r) for r, _ in _rows(ref).values())
    return {"kind": kind, "trials": trials, "kills": kills, "rows_per_run": n_rows, "lost": lost,
            "doubled": doubled, "units_different": different, "reference_wall_s": round(wall, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=8, help="fresh runs per kind, each killed up to twice")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kinds", nargs="*", default=list(KINDS))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    bad = False
    with tempfile.TemporaryDirectory(prefix="roz-kill-") as d:
        tmp = Path(d)
        os.environ.setdefault("ROZ_HOME", str(tmp / "home"))
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        data = tinymodels.make_imagefolder(tmp / "val", n=12, size=(40, 44), ext="png")
        model, _ = tinymodels.timm_checkpoint(tmp / "m", seed=0)
        for kind in args.kinds:
            r = crash_rounds(tmp, model, data, kind, args.trials, rng)
            bad |= bool(r["lost"] or r["doubled"] or r["units_different"])
            print(" ".join(f"{k}={v}" for k, v in r.items()), flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
