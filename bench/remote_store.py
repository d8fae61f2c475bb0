"""A run directory on a URL vs a local one: the store's publish/pull bookkeeping overhead.

The fixture matrix (a tiny timm checkpoint from tests/support × a 24-image ImageFolder × clean,
fog and PGD: 3 units, CPU) is run to a local directory, to fsspec's ``memory://`` store and to a
``file://`` URL; each is then re-run (every unit skipped) and opened in a fresh working copy
(another ``ROZ_HOME``: another machine). Everything lives in a temporary directory.

    python bench/remote_store.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="roz-remote-bench-"))
    os.environ["ROZ_HOME"] = str(tmp / "home")
    import torch

    from roz.engine.options import RunOptions
    from roz.engine.plan import plan_units
    from roz.engine.runner import run_units
    from roz.engine.store import ResultStore
    from support import tinymodels

    torch.set_num_threads(1)
    data = tinymodels.make_imagefolder(tmp / "val", n=6)
    spec, _ = tinymodels.timm_checkpoint(tmp / "timm")
    cfg = {"models": [{"spec": spec, "name": "vit"}], "shifts": ["none", "corruption:fog:2"],
           "datasets": [{"name": "imagefolder", "root": str(data)}],
           "attacks": [{"name": "pgd", "eps": [0.03], "steps": 2}]}
    units = plan_units(cfg)
    opts = RunOptions(batch_size=4, workers=0, part_size=4, device="cpu")
    run_units(units, tmp / "warm", opts)  # imports and first-use costs
    targets = [("local", tmp / "local"), ("memory", f"memory://bench-{uuid.uuid4().hex[:6]}/run"),
               ("file", f"file://{tmp}/remote/run")]
    for name, out in targets:
        t = time.perf_counter()
        run_units(units, out, opts)
        run_s = time.perf_counter() - t
        t = time.perf_counter()
        run_units(units, out, opts)
        rerun_s = time.perf_counter() - t
        os.environ["ROZ_HOME"] = str(tmp / f"home-{name}")
        t = time.perf_counter()
        ResultStore(out, create=False).records()
        open_s = time.perf_counter() - t
        print(f"{name:7s} {len(units)} units: run {run_s:.2f}s, re-run (all skipped) {rerun_s:.2f}s, "
              f"open + read in a fresh working copy {open_s:.3f}s")


if __name__ == "__main__":
    main()
