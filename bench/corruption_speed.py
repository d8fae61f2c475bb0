"""Throughput of ROZ's batched ImageNet-C corruptions vs the reference ``imagecorruptions``.

Both run in this process on the same 64 images (224 px, scikit-image samples) with
``torch.set_num_threads(2)``: ours on the whole batch (float32 tensor in, float32 tensor out), the
reference one image at a time in a Python loop (uint8 HWC numpy in, as it expects). For each
corruption x severity we take the median wall time of ``--runs`` runs (ours and the reference
alternating); per corruption we report images/s over its five severities and the ratio.

Ours is timed writing into a reused output buffer (``corrupt(..., out=buf)``), as a pipeline
does; the reference's per-image outputs are small and recycled by malloc the same way. The
``fresh`` columns time ours allocating a new 38 MB output per call instead: on a VM the kernel's
first-touch page faults for it cost ~8 ms per call, which is reported, not hidden.

Targets: >= 10x overall (total images over total time), no corruption slower than the reference.
Usage: ``python bench/corruption_speed.py [--runs 3] [--batch 64] [--size 224] [--extra]
[--device cpu|cuda]``. The reference always runs on the CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corruption_fidelity import sample_images  # noqa: E402


def _timed(fn, sync=lambda: None) -> float:
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def _interleaved(ours, ref, runs: int, ref_runs: int, sync) -> tuple[float, float]:
    """Median wall times, ours and reference runs alternating so load changes hit both alike."""
    ours()
    sync()
    to, tr = [], []
    for r in range(max(runs, ref_runs)):
        if r < runs:
            to.append(_timed(ours, sync))
        if r < ref_runs:
            tr.append(_timed(ref))
    return statistics.median(to), statistics.median(tr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ref-runs", type=int, default=None, help="runs for the reference (default --runs)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--extra", action="store_true", help="also time the 4 extra corruptions")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    import imagecorruptions

    from roz.shifts.corruptions import CORRUPTIONS, EXTRA_CORRUPTIONS, corrupt

    dev = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    n_base = min(16, max(1, -(-args.batch // 4)))
    imgs = sample_images(n_base, 4, args.size)
    imgs = np.concatenate([imgs] * (-(-args.batch // len(imgs))))[: args.batch]
    x = (torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255).to(dev)
    seeds = torch.arange(len(imgs), dtype=torch.int64)
    names = args.only or list(CORRUPTIONS + (EXTRA_CORRUPTIONS if args.extra else ()))
    ref_runs = args.ref_runs or args.runs
    print(f"load average at start: {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"batch {len(imgs)} x {args.size}px, torch threads {torch.get_num_threads()}, device {dev}, "
          f"runs ours {args.runs} / ref {ref_runs}")
    print(f"{'corruption':18s} {'ours img/s':>11s} {'ref img/s':>10s} {'ratio':>7s} {'fresh':>7s}   "
          f"per-severity ratios")
    buf = torch.empty(x.shape, dtype=torch.float32, device=dev)
    tot_ours = tot_ref = tot_fresh = 0.0
    slower = []
    for name in names:
        t_ours, t_ref, t_fresh = [], [], []
        for sev in range(1, 6):
            def ref_loop():
                np.random.seed(sev)
                for img in imgs:
                    imagecorruptions.corrupt(img, severity=sev, corruption_name=name)

            a, b = _interleaved(lambda: corrupt(x, name, sev, seeds, out=buf), ref_loop, args.runs, ref_runs, sync)
            t_ours.append(a)
            t_ref.append(b)
            t_fresh.append(statistics.median(
                _timed(lambda: corrupt(x, name, sev, seeds), sync) for _ in range(args.runs)))
        so, sr, sf = sum(t_ours), sum(t_ref), sum(t_fresh)
        tot_ours, tot_ref, tot_fresh = tot_ours + so, tot_ref + sr, tot_fresh + sf
        n = 5 * len(imgs)
        ratio = sr / so
        if ratio < 1:
            slower.append(name)
        per = " ".join(f"{r / o:6.1f}" for o, r in zip(t_ours, t_ref))
        print(f"{name:18s} {n / so:11.0f} {n / sr:10.0f} {ratio:6.1f}x {sr / sf:6.1f}x   {per}", flush=True)
    n = 5 * len(imgs) * len(names)
    print(f"SUMMARY: overall ours {n / tot_ours:.0f} img/s, reference {n / tot_ref:.0f} img/s, "
          f"speed-up {tot_ref / tot_ours:.1f}x (target >= 10x; {tot_ref / tot_fresh:.1f}x with a fresh "
          f"output per call); slower than reference: {', '.join(slower) if slower else 'none'}; "
          f"load average at end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
