"""`roz paper --dry-run`: units per kind, images, forward/backward passes and wall time per device count.

Images come from each dataset's published size (``DatasetInfo.expected_counts``) or, for a dataset
without one, a count of its files. Passes per image of an attack are *estimated* from its settings
(the upper bound: no early stop); a backward pass is counted as two forwards. Throughputs (images
per second of one forward per model) are *measured* here with ``--measure`` (this machine, this
device) or read from ``--throughput FILE.json``; otherwise one assumed figure per model is used and
the estimate says so. Wall time on N devices assumes perfect sharding (units spread evenly)."""

from __future__ import annotations

import math
import time

from roz.paper.preset import PaperPlan

#: Assumed forward throughput (images/s) of one large-batch fp32 forward on one data-centre GPU when
#: nothing was measured; a planning figure, labelled "assumed" wherever it is used.
ASSUMED_IMAGES_PER_S = 1000.0

_STEPS = {"fgsm": 1, "bim": 20, "mim": 19, "dim": 9, "pgd": 10, "apgd-ce": 100, "apgd-t": 900,
          "transfer-fgsm": 1, "transfer-bim": 20, "transfer-mim": 9, "transfer-dim": 9}
_QUERIES = {"nes": 20 * 200, "spsa": 20 * 200, "square": 5000}
_PAPER_K = {"fgsm": 9, "bim": 9, "mim": 9, "dim": 9, "nes": 10, "spsa": 30, "transfer-fgsm": 100, "transfer-bim": 600,
            "transfer-mim": 600, "transfer-dim": 600}


def attack_passes(attack: dict, n_classes: int = 1000) -> tuple[float, float]:
    """(forwards, backwards) per image of one attack entry: one run per eps, plus the minimal-eps
    binary search (log2 of the grid trials) when ``min_eps``; DeepFool: 50 iterations x all classes."""
    name = attack["name"]
    n_eps = len(attack.get("eps") or [0]) if isinstance(attack.get("eps"), list) else 1
    trials = n_eps + (math.ceil(math.log2(_PAPER_K.get(name, 11) + 1)) if attack.get("min_eps") else 0)
    if name == "deepfool":
        cands = n_classes if attack.get("candidates", "all") == "all" else int(attack["candidates"])
        return 50.0, 50.0 * cands
    if name in _QUERIES:
        return float(trials * _QUERIES[name]), 0.0
    steps = _STEPS.get(name, 10)
    return float(trials * (steps + 1)), float(trials * steps)


def dataset_sizes(plan: PaperPlan) -> dict[str, int]:
    """Published sizes; a dataset without one (a custom folder): its image files, counted."""
    from pathlib import Path

    from roz.datasets.registry import dataset_info

    out = {}
    for d in plan.config["datasets"]:
        counts = dataset_info(d["name"]).expected_counts or {}
        total = counts.get("total")
        total = max(total) if isinstance(total, (list, tuple)) else total  # several published sizes: the largest
        root = Path(d["root"])
        if not total and root.is_dir():
            total = sum(1 for p in root.rglob("*") if p.suffix.lower() in (".jpeg", ".jpg", ".png", ".webp", ".mp4"))
        out[d.get("label") or d["name"]] = int(total or 0)
    return out


def _shift_count(entry) -> int:
    from roz.shifts.registry import parse_shift

    return len(parse_shift(entry if isinstance(entry, str) else entry["shift"]))


def plan_cost(plan: PaperPlan, sizes: dict[str, int], throughput: dict[str, float] | None = None) -> dict:
    """Per kind: units, images, forwards, backwards, forward-equivalents; per model via throughput."""
    cfg, throughput = plan.config, throughput or {}
    rows = {k: {"units": 0, "images": 0, "forwards": 0.0, "backwards": 0.0, "seconds": 0.0}
            for k in ("prompt-search", "eval", "shift", "attack")}
    rate = {m["name"]: throughput.get(m["name"], throughput.get(m["spec"], ASSUMED_IMAGES_PER_S)) for m in cfg["models"]}

    def add(kind, model, images, fwd, bwd):
        r = rows[kind]
        r["units"] += 1
        r["images"] += images
        r["forwards"] += images * fwd
        r["backwards"] += images * bwd
        r["seconds"] += images * (fwd + 2 * bwd) / rate[model]

    for step in plan.prompt_steps:
        add("prompt-search", step["name"], step["shots"] * 1000, 1, 0)
    for m in cfg["models"]:
        for s in cfg["shifts"]:
            kind, names = ("eval", list(sizes)) if s == "none" else ("shift", s["datasets"] or list(sizes))
            for _ in range(1 if s == "none" else _shift_count(s)):
                for d in names:
                    add(kind, m["name"], sizes.get(d, 0), 1, 0)
        for a in cfg["attacks"]:
            for d in a.get("datasets") or list(sizes):
                fwd, bwd = attack_passes(a)
                add("attack", m["name"], min(sizes.get(d, 0), a.get("limit") or sizes.get(d, 0)), fwd, bwd)
    measured = bool(throughput) and all(m["name"] in throughput or m["spec"] in throughput for m in cfg["models"])
    return {"kinds": rows, "total_seconds": sum(r["seconds"] for r in rows.values()),
            "throughput": "measured" if measured else f"assumed {ASSUMED_IMAGES_PER_S:g} images/s per model "
                                                      "(pass --measure or --throughput for measured figures)"}


def measure_throughput(specs: dict[str, str], device: str = "cpu", batch: int = 8, repeats: int = 2) -> dict[str, float]:
    """Forward images/s of each model (name -> spec) on ``device``: a random batch at the model's input size."""
    import torch

    from roz.models.adapters import create_model

    out = {}
    for name, spec in specs.items():
        model = create_model(spec, device=device)
        size = getattr(model, "input_size", None) or 224
        size = size[-1] if isinstance(size, (tuple, list)) else int(size)
        x = torch.rand(batch, 3, size, size, device=device)
        with torch.no_grad():
            model(x)  # warm-up
            t0 = time.perf_counter()
            for _ in range(repeats):
                model(x)
        out[name] = batch * repeats / max(time.perf_counter() - t0, 1e-9)
    return out


def format_plan(plan: PaperPlan, cost: dict, devices=(1, 8, 64)) -> str:
    lines = [f"roz paper: {len(plan.config['models'])} models, {len(plan.datasets)} datasets present, "
             f"{len(plan.prompt_steps)} prompt searches, overlap: {'yes' if plan.overlap else 'no'}; out {plan.out}",
             f"{'kind':<14}{'units':>8}{'images':>14}{'forwards':>16}{'backwards':>16}"]
    for kind, r in cost["kinds"].items():
        lines.append(f"{kind:<14}{r['units']:>8}{r['images']:>14,}{r['forwards']:>16,.0f}{r['backwards']:>16,.0f}")
    lines.append(f"passes per attack image: estimated from the attack settings; throughput: {cost['throughput']}")
    for n in devices:
        lines.append(f"estimated wall time on {n} device(s): {cost['total_seconds'] / n / 3600:,.1f} h")
    lines += [f"MISSING: {m}" for m in plan.missing]
    return "\n".join(lines)
