"""Attack speed: BIM/PGD time per iteration vs one forward+backward, and vs torchattacks' PGD.

Targets (issue): our per-iteration time <= 1.15x one fp32 forward+backward of the same model
on the same batch, and our PGD throughput >= 1.0x torchattacks' PGD with the same budget.
Early stopping is disabled for the timing (every sample does every step) so both attacks do
the same work; the early-stopping speed-up on an attackable model is reported separately.

    .venv/bin/python bench/attack_speed.py [--model resnet18] [--size 112] [--batch 16]
        [--steps 10] [--repeats 5] [--device cpu] [--threads 1]
Prints medians over ``repeats`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchattacks
import torchvision

from roz.attacks import create_attack


class Normalized(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net
        self.register_buffer("m", torch.tensor([0.485, 0.456, 0.406])[None, :, None, None])
        self.register_buffer("s", torch.tensor([0.229, 0.224, 0.225])[None, :, None, None])

    def forward(self, x):
        return self.net((x - self.m) / self.s)


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, dev):
    sync(dev)
    t = time.perf_counter()
    fn()
    sync(dev)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    torch.manual_seed(0)
    model = Normalized(getattr(torchvision.models, args.model)(weights=None)).eval().to(dev)
    x = torch.rand(args.batch, 3, args.size, args.size, device=dev)
    with torch.no_grad():
        y = model(x).argmax(1)  # clean-correct by construction
    eps, steps = 8 / 255, args.steps

    def fwd_bwd():
        xg = x.clone().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model(xg), y)
        torch.autograd.grad(loss, xg)

    bim = create_attack("bim", model, eps=eps, steps=steps, early_stop=False)
    pgd = create_attack("pgd", model, eps=eps, alpha=2 / 255, steps=steps, early_stop=False)
    pgd_es = create_attack("pgd", model, eps=eps, alpha=2 / 255, steps=steps)
    ta = torchattacks.PGD(model, eps=eps, alpha=2 / 255, steps=steps, random_start=True)
    runs = {
        "fwd+bwd": lambda: fwd_bwd(),
        "bim": lambda: bim.perturb(x, y),
        "pgd": lambda: pgd.perturb(x, y),
        "pgd(early-stop)": lambda: pgd_es.perturb(x, y),
        "torchattacks.PGD": lambda: ta(x, y),
    }
    for fn in runs.values():  # warm-up
        fn()
    res: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.repeats):
        for k, fn in runs.items():  # interleaved, so load changes hit every variant alike
            res[k].append(timed(fn, dev))
    med = {k: statistics.median(v) for k, v in res.items()}
    fb = med["fwd+bwd"]
    per_it = {k: med[k] / steps for k in ("bim", "pgd", "torchattacks.PGD", "pgd(early-stop)")}
    print(f"model={args.model} size={args.size} batch={args.batch} steps={steps} device={dev} "
          f"threads={torch.get_num_threads()} repeats={args.repeats} (medians)")
    print(f"one forward+backward: {fb * 1e3:.1f} ms")
    for k, v in per_it.items():
        print(f"{k:>18s}: {v * 1e3:7.1f} ms/iter  = {v / fb:.3f}x fwd+bwd")
    ratio_bim = per_it["bim"] / fb
    ratio_pgd = per_it["pgd"] / fb
    thr = med["torchattacks.PGD"] / med["pgd"]
    print(f"BIM per-iteration / fwd+bwd = {ratio_bim:.3f} (target <= 1.15): {'OK' if ratio_bim <= 1.15 else 'MISS'}")
    print(f"PGD per-iteration / fwd+bwd = {ratio_pgd:.3f} (target <= 1.15): {'OK' if ratio_pgd <= 1.15 else 'MISS'}")
    print(f"PGD throughput vs torchattacks.PGD = {thr:.3f}x (target >= 1.0): {'OK' if thr >= 1.0 else 'MISS'}")


if __name__ == "__main__":
    main()
