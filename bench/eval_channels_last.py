"""Evaluation speed of ROZ models on CPU with and without channels_last.

``RozModel`` re-lays-out a convolutional net (>= ``CHANNELS_LAST_MIN_CONVS`` Conv2d layers) in
channels_last on its first CPU batch. This times, for shipped ROZ-Mini models, a forward pass
(``inference_mode``, as evaluation units run) and a forward+backward to the input (as attacks run)
through the normal adapter, against the same model with the layout switched off, in the same
process, interleaved, and prints medians and ratios.

    .venv/bin/python bench/eval_channels_last.py [--batch 128] [--repeats 7] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from roz.models.adapters import create_model
from roz.world import register
from roz.world.train import SHIPPED_DIR

SPECS = {
    "mini-resnet10t16-e6": f"timm:resnet10t@{SHIPPED_DIR / 'mini-resnet10t16-e6.pt'}",
    "mini-mnv3s050-e3": f"torchvision:mobilenet_v3_small@{SHIPPED_DIR / 'mini-mnv3s050-e3.pt'}",
    "mini-shufflev2x05-e2": f"torchvision:shufflenet_v2_x0_5@{SHIPPED_DIR / 'mini-shufflev2x05-e2.pt'}",
    "roz-mini-clip": f"local:{SHIPPED_DIR / 'roz-mini-clip.pt'}",
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    register()
    x = torch.rand(a.batch, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    print(f"batch {a.batch}, 64 px, threads {a.threads}, torch {torch.__version__}")
    for name, spec in SPECS.items():
        models = {"plain": create_model(spec), "channels_last": create_model(spec)}
        models["plain"]._channels_last = False
        assert models["channels_last"]._channels_last, name

        def fwd(m):
            with torch.inference_mode():
                m(x)

        def fwd_bwd(m):
            xg = x.clone().requires_grad_(True)
            m(xg).logsumexp(1).sum().backward()

        res = {}
        for what, fn in (("forward", fwd), ("forward+backward", fwd_bwd)):
            times = {k: [] for k in models}
            for r in range(a.repeats + 1):  # the first round warms up
                for k, m in models.items():
                    t0 = time.perf_counter()
                    fn(m)
                    if r:
                        times[k].append(time.perf_counter() - t0)
            med = {k: statistics.median(v) for k, v in times.items()}
            res[what] = f"{med['plain'] * 1000:6.1f} -> {med['channels_last'] * 1000:6.1f} ms " \
                        f"(x{med['plain'] / med['channels_last']:.2f})"
        print(f"{name:22s} forward {res['forward']}   forward+backward {res['forward+backward']}")


if __name__ == "__main__":
    main()
