"""Overhead of `roz eval` (decode + preprocess + DataLoader + label map + per-sample rows + store)
over the bare model forward on the same pre-decoded tensors, in the same process.

    python bench/eval_overhead.py [--n 256] [--batch 64] [--model timm:resnet18@none] [--repeats 5]

Prints the median time of each and the ratio (target: <= 1.15 at batch 64 on CPU, small model).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def make_tree(root: Path, n: int, size: int = 256) -> Path:
    rng = np.random.default_rng(0)
    wnids = ["n01440764", "n01443537", "n01484850", "n01491361"]
    for i in range(n):
        d = root / wnids[i % 4]
        d.mkdir(parents=True, exist_ok=True)
        yy, xx = np.mgrid[0:size, 0:size]
        a = (np.stack([np.sin(xx / (7 + i % 5)), np.cos(yy / (9 + i % 3)), np.sin((xx + yy) / 13)], -1) * 120 + 128)
        a = np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)
        Image.fromarray(a).save(d / f"{i:05d}.JPEG", quality=90)
    return root


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--model", default="timm:resnet18@none")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from roz.datasets.registry import create_dataset
    from roz.engine.evaluate import run_eval
    from roz.engine.store import ResultStore
    from roz.models.adapters import create_model

    tmp = Path(tempfile.mkdtemp(prefix="roz-bench-"))
    root = make_tree(tmp / "data", args.n)
    model = create_model(args.model, classes="imagenet-1k")
    ds = create_dataset("imagefolder", root)
    ds.transform = model.transform()
    # The reference: the same images, decoded and preprocessed once, outside the timing.
    xs = torch.stack([ds[i][0] for i in range(len(ds))])

    def bare():
        with torch.inference_mode():
            for i in range(0, len(xs), args.batch):
                model(xs[i:i + args.batch])

    def roz_eval(k):
        store = ResultStore(tmp / f"run{k}")
        run_eval(model, ds, store, f"u{k}", batch_size=args.batch, workers=args.workers)

    bare()  # warm-up (allocator, kernels)
    roz_eval(-1)
    t_bare, t_roz, ratios = [], [], []
    for k in range(args.repeats):
        t0 = time.perf_counter(); bare(); tb = time.perf_counter() - t0
        t0 = time.perf_counter(); roz_eval(k); tr = time.perf_counter() - t0
        t_bare.append(tb); t_roz.append(tr); ratios.append(tr / tb)
    print(f"model {args.model}  n={args.n}  batch={args.batch}  workers={args.workers}  threads={args.threads}")
    print(f"bare forward (pre-decoded tensors): median {statistics.median(t_bare):.3f} s")
    print(f"roz eval (decode+preprocess+store): median {statistics.median(t_roz):.3f} s")
    print(f"overhead ratio roz/bare: median {statistics.median(ratios):.3f}  "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}; target <= 1.15)")


if __name__ == "__main__":
    sys.exit(main())
