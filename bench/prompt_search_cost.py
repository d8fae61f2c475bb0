"""Cost of one AutoPrompt search step (and one CoOp step) for an open_clip CLIP over C classes.

A step = one forward+backward over the C class prompts (the HotFlip gradient) + ``candidates``
forwards of C prompts (exact candidate losses). Image features are cached, so images cost nothing
per step. The script times both parts with ROZ's own search code (``roz.models.autoprompt``) on
random weights (the cost does not depend on the weights) and counts their FLOPs with
``torch.utils.flop_counter``; docs/prompts.md turns the FLOPs into a labelled GPU estimate.

    .venv/bin/python bench/prompt_search_cost.py --arch ViT-B-32 --classes 1000 --candidates 16 --threads 2
    .venv/bin/python bench/prompt_search_cost.py --spec local:src/roz/world/checkpoints/roz-mini-clip.pt \
        --class-set roz-mini
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="ViT-B-32")
    ap.add_argument("--spec", default=None, help="a model spec instead of ARCH@none")
    ap.add_argument("--class-set", default="imagenet-1k")
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--candidates", type=int, default=16)
    ap.add_argument("--n-trigger", type=int, default=4)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from roz.models.adapters import create_model
    from roz.models.autoprompt import _Problem
    from roz.models.prompt_text import text_tower
    from roz.world import register

    register()
    spec = args.spec or f"openclip:{args.arch}@none"
    model = create_model(spec, classes=args.class_set, templates="photo", head_cache=False).to(args.device)
    tower = text_tower(model)
    names = list(model.classes.names)[:args.classes]
    prob = _Problem(tower, names, args.n_trigger, ".")
    feats = F.normalize(torch.randn(args.batch, model.head.shape[1], device=args.device), dim=-1)
    targets = torch.randint(0, len(names), (args.batch,), device=args.device)
    trig = torch.tensor(tower.token_ids("a photo of a")[:args.n_trigger] * 2)[:args.n_trigger]
    cands = trig.repeat(args.candidates, 1)

    def grad():
        return prob.flip_scores(trig, feats, targets)

    def forward():
        return prob.losses(cands, feats, targets, 4096)

    out = {"spec": spec, "classes": len(names), "candidates": args.candidates, "tokens_per_prompt": prob.ids.shape[1],
           "threads": args.threads, "device": args.device}
    for what, fn in (("gradient", grad), ("candidates", forward)):
        fn()  # warm-up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        with FlopCounterMode(display=False) as counter:
            fn()
        out[f"{what}_seconds"] = round(statistics.median(times), 4)
        out[f"{what}_gflop"] = round(counter.get_total_flops() / 1e9, 2)
    out["step_seconds"] = round(out["gradient_seconds"] + out["candidates_seconds"], 4)
    out["step_gflop"] = round(out["gradient_gflop"] + out["candidates_gflop"], 2)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
