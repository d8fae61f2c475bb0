"""Batched vs per-image: DIM's resize + pad and NES's query forwards, on this machine's CPU.

* DIM: the transform of one step (forward + backward) for ``--batch`` images of ``--size`` px,
  the per-image interpolate + pad loop it replaced vs the one gather (same numbers: checked here).
* NES: one attack of ``--steps`` steps with ``q`` directions on a timm resnet18 (random weights),
  one sample's queries per forward (``chunk = 2q``: the old loop) vs all samples' queries that fit
  in ``--chunk`` rows per forward (same adversarial images: checked here).

    python bench/batched_attacks.py --batch 32 --size 224 --q 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

import torch
import torch.nn.functional as F


def _per_image(plans, H, W):
    def tf(xg):
        out = []
        for j, pl in enumerate(plans):
            xj = xg[j:j + 1]
            if pl is not None:
                rh, rw, top, left = pl
                xj = F.pad(F.interpolate(xj, size=(rh, rw), mode="nearest"), (left, W - rw - left, top, H - rh - top))
            out.append(xj)
        return torch.cat(out)

    return tf


def _time(fn, reps=3) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        out = fn()
    return (time.perf_counter() - t0) / reps, out


def dim_bench(batch: int, size: int) -> dict:
    from roz.attacks.dim import _batched_resize_pad

    rng = random.Random(0)
    plans = []
    for _ in range(batch):
        rh = rng.randint(int(0.9 * size), size)
        plans.append(None if rng.random() < 0.5 else (rh, rh, rng.randint(0, size - rh), rng.randint(0, size - rh)))
    x = torch.rand(batch, 3, size, size)

    def run(make):
        xg = x.clone().requires_grad_(True)
        make(plans, size, size)(xg).square().sum().backward()
        return xg.grad

    old, g_old = _time(lambda: run(_per_image))
    new, g_new = _time(lambda: run(_batched_resize_pad))
    return {"per_image_s": round(old, 4), "batched_s": round(new, 4), "speedup": round(old / new, 2),
            "same_gradients": bool(torch.equal(g_old, g_new))}


def nes_bench(batch: int, size: int, q: int, steps: int, chunk: int) -> dict:
    import timm

    from roz.attacks.registry import create_attack

    net = timm.create_model("resnet18", pretrained=False, num_classes=10).eval()
    net.input_size = (size, size)
    net.wnids = tuple(f"n{k:08d}" for k in range(10))
    x, y, idx = torch.rand(batch, 3, size, size), torch.randint(0, 10, (batch,)), torch.arange(batch)
    out = {}
    for label, c in (("per_image", 2 * q), ("batched", chunk)):
        atk = create_attack("nes", net, eps=4 / 255, q=q, steps=steps, early_stop=False, chunk=c)
        t0 = time.perf_counter()
        out[label] = atk.perturb(x, y, idx)
        out[f"{label}_s"] = round(time.perf_counter() - t0, 2)
    return {"per_image_s": out["per_image_s"], "batched_s": out["batched_s"],
            "speedup": round(out["per_image_s"] / out["batched_s"], 2),
            "same_images": bool(torch.equal(out["per_image"], out["batched"]))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--q", type=int, default=10)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=400)
    ap.add_argument("--nes-size", type=int, default=64)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    res = {"load": os.getloadavg(), "threads": torch.get_num_threads(),
           "dim": dim_bench(args.batch, args.size),
           "nes": nes_bench(args.batch, args.nes_size, args.q, args.steps, args.chunk)}
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
