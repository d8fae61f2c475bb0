"""Local executor vs Ray on a local cluster: wall time, overhead per unit, model-load reuse.

The same fixture matrix (tiny timm and open_clip checkpoints from tests/support × an ImageFolder ×
clean + corruptions) is run three ways on fresh run directories:

* ``local``: ``run_units`` in this process (models reused across units, one process), twice: the
  first run (``local_cold``) pays the imports and warm-up;
* ``ray``: one Ray task per unit on a local Ray instance with ``--cpus`` CPUs (started once,
  its start-up time reported apart); each worker keeps the models it built;
* ``ray_warm``: again on the same workers (their models already built);
* ``ray_sharded``: the same with ``shard_size`` (units split into shards, merged by the store).

It reports wall time, the overhead per unit of Ray over local ((ray - local) / units), and the
models built vs reused (the run view's counters). It then times building a ViT-B/32-sized
open_clip model (random weights) and encoding ``--prompts`` prompts of a zero-shot head — the
work a per-worker cache saves per unit —, and the per-image CPU throughputs docs/scale.md uses
(forward, corruption, attack step).

    python bench/ray_scaling.py --images 64 --cpus 2

Needs the repository checkout (tests/support) and Ray.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # a bench, not a test: reuse the tests' fixture builders

from support import tinymodels  # noqa: E402

SHIFTS = ["none", "corruption:fog:2", "corruption:contrast:3", "corruption:gaussian_noise:1"]


def _matrix(tmp: Path, n_images: int) -> dict:
    data = tinymodels.make_imagefolder(tmp / "val", n=max(1, n_images // len(tinymodels.WNIDS)))
    oc, _ = tinymodels.openclip_checkpoint(tmp / "oc")
    tm, _ = tinymodels.timm_checkpoint(tmp / "timm")
    return {"models": [{"spec": tm, "name": "vit"}, {"spec": oc, "name": "clip"}], "shifts": SHIFTS,
            "datasets": [{"name": "imagefolder", "root": str(data)}]}


def _run(units, out: Path, executor: str, **opts) -> dict:
    from roz.engine.options import RunOptions
    from roz.engine.runner import run_units

    logs: list[str] = []
    t0 = time.perf_counter()
    run_units(units, out, RunOptions(batch_size=16, workers=0, device="cpu", **opts), executor=executor,
              log=logs.append)
    wall = time.perf_counter() - t0
    last = [m for m in logs if m.startswith("units: ")][-1]
    built, reused = map(int, re.search(r"models built (\d+), reused (\d+)", last).groups())
    return {"wall_s": round(wall, 2), "models_built": built, "models_reused": reused}


def _model_build_s(prompts: int) -> dict:
    """Seconds to build a ViT-B/32-sized CLIP (random weights), and per prompt of its zero-shot head
    (the paper's head: 1000 classes x 80 templates = 80,000 prompts)."""
    import open_clip
    import torch

    t0 = time.perf_counter()
    model = open_clip.create_model("ViT-B-32", pretrained=None).eval()
    build = time.perf_counter() - t0
    tokens = open_clip.get_tokenizer("ViT-B-32")([f"a photo of a class {i}" for i in range(prompts)])
    t0 = time.perf_counter()
    with torch.inference_mode():
        for k in range(0, len(tokens), 256):
            model.encode_text(tokens[k:k + 256])
    per_prompt = (time.perf_counter() - t0) / prompts
    return {"vitb32_build_s": round(build, 2), "head_s_per_prompt": round(per_prompt, 4),
            "paper_head_80k_prompts_s": round(per_prompt * 80_000)}


def _throughputs(batch: int) -> dict:
    """Images/s on this CPU: ViT-B/32 forward, one corruption, one PGD step (forward + backward)."""
    import open_clip
    import torch

    from roz.shifts.registry import create_shift

    model = open_clip.create_model("ViT-B-32", pretrained=None).eval()
    x = torch.rand(batch, 3, 224, 224)
    with torch.inference_mode():
        model.encode_image(x[:2])
        t0 = time.perf_counter()
        model.encode_image(x)
        fwd = batch / (time.perf_counter() - t0)
    shift = create_shift({"name": "corruption", "corruption": "fog", "severity": 3})
    seeds = torch.arange(batch)
    t0 = time.perf_counter()
    shift(x, seeds)
    corr = batch / (time.perf_counter() - t0)
    xa = x.clone().requires_grad_(True)
    t0 = time.perf_counter()
    model.encode_image(xa).sum().backward()
    step = batch / (time.perf_counter() - t0)
    return {"forward_img_s": round(fwd, 1), "fog_img_s": round(corr, 1), "pgd_step_img_s": round(step, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--shard-size", type=int, default=32)
    ap.add_argument("--prompts", type=int, default=64, help="prompts encoded to time the zero-shot head")
    ap.add_argument("--batch", type=int, default=32, help="batch of the CPU throughput timings")
    ap.add_argument("--no-timings", action="store_true", help="only the executor comparison")
    args = ap.parse_args(argv)
    import ray
    import torch

    torch.set_num_threads(1)  # as each Ray task (1 CPU): the comparison is one core vs the cluster's

    from roz.engine.plan import plan_units

    tmp = Path(tempfile.mkdtemp(prefix="roz-ray-bench-"))
    units = plan_units(_matrix(tmp, args.images))
    res = {"units": len(units), "images_per_unit": args.images, "load": os.getloadavg()}
    res["local_cold"] = _run(units, tmp / "local-cold", "local")  # first imports and warm-up included
    res["local"] = _run(units, tmp / "local", "local")
    t0 = time.perf_counter()
    ray.init(num_cpus=args.cpus, _temp_dir=str(tmp / "ray"), include_dashboard=False, log_to_driver=False)
    res["ray_start_s"] = round(time.perf_counter() - t0, 2)
    res["ray"] = _run(units, tmp / "ray", "ray")
    res["ray_warm"] = _run(units, tmp / "ray-warm", "ray")  # the same workers again: models already built
    res["ray_sharded"] = _run(units, tmp / "ray-sharded", "ray", shard_size=args.shard_size, part_size=16)
    ray.shutdown()
    for k in ("ray", "ray_warm", "ray_sharded"):
        res[k]["overhead_per_unit_s"] = round((res[k]["wall_s"] - res["local"]["wall_s"]) / len(units), 3)
    if not args.no_timings:
        torch.set_num_threads(os.cpu_count() or 1)
        res["model_build"] = _model_build_s(args.prompts)
        res["cpu_throughput"] = _throughputs(args.batch)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
