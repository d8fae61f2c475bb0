"""``roz demo``: the whole benchmark on ROZ-Mini, through the same code paths as a real run.

Steps: build (or reuse) the world; load the shipped checkpoints (tiny CLIP + supervised
baselines) with the normal adapters; build mini-A against the baselines if missing; write a run
config (natural shifts, cue-conflict, typographic, corruptions, perturbations, attacks -- each
synthetic and adversarial kind on every model, so each gets a baseline fit and effective
robustness) and execute it with the normal engine; run the data-overlap analysis against the
world's planted duplicates; render the report to ``runs/demo/report.html``; print a summary.

``quick`` (used in ``make test``) subsamples everything to finish in well under a minute;
``full`` evaluates the complete world (all images, all severities, more attacks).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from roz.errors import RozError

CHECKPOINTS = Path(__file__).parent / "checkpoints"

NATURAL = [  # (display name, registry loader, split folder, loader options)
    ("mini-val", "imagefolder", "mini-val", {}),
    ("mini-v2", "imagenetv2-matched-frequency", "mini-v2", {"restrict_classes": "roz-mini"}),
    ("mini-sketch", "imagefolder", "mini-sketch", {}),
    ("mini-r", "imagefolder", "mini-r", {}),
    ("mini-a", "imagefolder", "mini-a", {}),
    ("mini-objectnet", "objectnet", "mini-objectnet", {}),
    ("mini-vid", "imagenet-vid-robust", "mini-vid", {}),
    ("mini-ytbb", "ytbb-robust", "mini-ytbb", {}),
]
VIDEO = {"mini-vid", "mini-ytbb"}


def shipped_models(ckpt_dir: Path = CHECKPOINTS) -> list[dict]:
    """Model entries (spec, name, role) for every shipped checkpoint, CLIP first."""
    man = ckpt_dir / "MANIFEST.json"
    if not man.is_file():
        raise RozError(f"no shipped ROZ-Mini checkpoints in {ckpt_dir}",
                       hint="train them with `roz world train` (see docs/world-models.md)")
    manifest = json.loads(man.read_text())
    entries = manifest.get("models", manifest)
    out = []
    for name in sorted(entries, key=lambda n: (json.loads((ckpt_dir / f"{n}.json").read_text()).get("role") != "zeroshot", n)):
        side = json.loads((ckpt_dir / f"{name}.json").read_text())
        out.append({"spec": f"local:{ckpt_dir / (name + '.pt')}", "name": name, "role": side.get("role", "standard")})
    from roz.world.prompts import shipped_prompted

    return out + shipped_prompted(ckpt_dir)  # CLIP-Auto: the CLIP with shipped searched prompts (PROMPTS.json)


def _pick(models: list[dict], ckpt_dir: Path) -> dict:
    """Roles for the demo: the CLIP, the baseline closest to it in mini-val accuracy (the paper
    compares models of similar ImageNet accuracy), and the strongest baseline (transfer surrogate)."""
    man = json.loads((ckpt_dir / "MANIFEST.json").read_text())
    acc = {n: man.get(n, {}).get("mini_val_top1", 0.0) for n in (m["name"] for m in models)}
    clip = [m["name"] for m in models if m["role"] in ("zeroshot", "zeroshot-auto")]  # CLIP first, then CLIP-Auto
    std = [m["name"] for m in models if m["role"] == "standard"]
    ref = acc[clip[0]] if clip else 50.0
    matched = min(std, key=lambda n: abs(acc[n] - ref)) if std else None
    strongest = max(std, key=lambda n: acc[n]) if std else None
    return {"clip": clip, "matched": matched, "strongest": strongest}


#: Images per unit of the default demo (``None``: all). Natural splits and the typographic set: 198
#: (3 per class). Corruptions: 66 (1 per class) per (corruption, severity) cell -- the corruption
#: mean pools 15 cells, ~1000 images per model. Perturbations: 33 sequences of 10-31 frames. FGSM
#: (every model): 198 images; the other attacks (the focus models): 32.
DEFAULT_LIMITS = {"images": 198, "corruption": 66, "perturbation": 33, "fgsm": 132, "attack": 32, "nes": 16}
#: ``--quick`` (the world has 198 mini-val images): the fits need nonzero baseline accuracies.
QUICK_LIMITS = {"images": 66, "corruption": 66, "perturbation": 16, "fgsm": 66, "attack": 16, "nes": 8}
EPS = [1 / 255, 2 / 255, 4 / 255, 8 / 255]


def demo_config(world: Path, out: Path, models: list[dict], quick: bool, full: bool,
                ckpt_dir: Path = CHECKPOINTS) -> dict:
    """The demo's run config. Default: every model on every natural split (198 images per image
    split, whole video splits), cue-conflict, typographic, the 15 corruptions at severity 3, one
    ImageNet-P perturbation (Gaussian noise) and FGSM -- the synthetic and adversarial kinds on every model, so
    each has a baseline fit and ER -- plus BIM / PGD (with minimal ε) / NES (reduced budget) /
    transfer-BIM on the focus models (the CLIP and its accuracy-matched baseline); limits
    :data:`DEFAULT_LIMITS`. ``quick``: the CLIP and the four strongest baselines, four corruptions,
    one perturbation, FGSM / PGD / NES / transfer-FGSM (:data:`QUICK_LIMITS`). ``full``: everything
    on every image (perturbations: 132 sequences), the whole 15×5 corruption grid, all ten
    perturbations on every model and all of the paper's attacks at full budget on the focus models."""
    pick = _pick(models, ckpt_dir)
    focus = pick["clip"] + [pick["matched"]]
    if quick:
        models = _quick_models(models, focus, ckpt_dir)
    lim = None if full else dict(QUICK_LIMITS if quick else DEFAULT_LIMITS)
    datasets = []
    for label, loader, folder, opts in NATURAL:
        if (world / folder).is_dir():
            datasets.append({"name": loader, "root": str(world / folder), "label": label, "options": opts})
    datasets.append({"name": "imagefolder", "root": str(world / "mini-cueconflict"), "label": "mini-cueconflict"})
    sur = next(m["spec"] for m in models if m["name"] == pick["strongest"]) if pick["strongest"] else None
    return {"out": str(out), "seed": 0, "models": models, "datasets": datasets, "limit": lim and lim["images"],
            "shifts": _demo_shifts(quick, full, lim), "attacks": _demo_attacks(focus, pick, sur, quick, full, lim)}


def _quick_models(models: list[dict], focus: list[str], ckpt_dir: Path) -> list[dict]:
    """``--quick``: the focus models and the four strongest baselines (on 66-image samples the
    weakest baselines score 0 % under corruption or attack, a point a logit fit must drop)."""
    man = json.loads((ckpt_dir / "MANIFEST.json").read_text())
    std = sorted((m["name"] for m in models if m["role"] == "standard"),
                 key=lambda n: -man.get(n, {}).get("mini_val_top1", 0.0))
    keep = set(focus) | set(std[:4])
    return [m for m in models if m["name"] in keep]


def _demo_shifts(quick: bool, full: bool, lim: dict | None) -> list:
    """Synthetic shifts, all on mini-val. Without ``models`` an entry runs on every model."""
    # mini-T: 3 written words sized for 64-px images (ImageNet-T writes 8 at 224 px)
    shifts = ["none", {"shift": "typographic:n_words=3,size=0.16", "datasets": ["mini-val"]},
              {"shift": "word-cards", "datasets": ["mini-val"]}]  # reading accuracy beside the attack (issue 17)
    on = {"datasets": ["mini-val"]}
    if full:
        return shifts + [{"shift": "corruption:all", **on}, {"shift": "perturbation:all", **on, "limit": 132}]
    corruptions = "gaussian_noise,fog,contrast,jpeg_compression:3" if quick else "all:3"
    perturbations = "gaussian_noise"  # one ImageNet-P sequence type on every model (3-minute budget)
    return shifts + [{"shift": f"corruption:{corruptions}", **on, "limit": lim["corruption"]},
                     {"shift": f"perturbation:{perturbations}", **on, "limit": lim["perturbation"]}]


def _demo_attacks(focus: list[str], pick: dict, sur: str | None, quick: bool, full: bool, lim: dict | None) -> list:
    """FGSM on every model (the adversarial kind's fit); the other attacks on the focus models."""
    on = {"datasets": ["mini-val"], "models": focus, "limit": lim and lim["attack"]}
    fgsm = {"name": "fgsm", "eps": EPS, "datasets": ["mini-val"], "limit": lim and lim["fgsm"]}
    attacks = [fgsm, {"name": "pgd", "eps": EPS, "min_eps": True, **on}]
    clip_only = {**on, "models": pick["clip"]}
    if quick:
        attacks += [{"name": "nes", "eps": [8 / 255], "q": 5, "steps": 2, **{**on, "limit": lim["nes"]}}]
        if sur:
            attacks += [{"name": "transfer-fgsm", "eps": EPS, "surrogate": sur, **clip_only}]
    elif full:
        attacks += [{"name": a, "eps": EPS, **on} for a in ("bim", "mim", "dim", "deepfool")]
        attacks += [{"name": a, "eps": [8 / 255], **on} for a in ("nes", "spsa")]
        if sur:
            attacks += [{"name": f"transfer-{a}", "eps": EPS, "surrogate": sur, **clip_only}
                        for a in ("fgsm", "bim", "mim", "dim")]
    else:  # the default demo keeps to the 3-minute budget: one attack of each family
        attacks += [{"name": "bim", "eps": EPS, **on},
                    {"name": "nes", "eps": [8 / 255], "q": 20, "steps": 5, **{**on, "limit": lim["nes"]}}]
        if sur:
            attacks += [{"name": "transfer-bim", "eps": EPS, "surrogate": sur, **clip_only}]
    return attacks


def run_demo(out: str | Path = "runs/demo", quick: bool = False, full: bool = False, world: str | Path | None = None,
             force: bool = False, log=print, checkpoints: str | Path | None = None) -> dict:
    from roz.engine.options import RunOptions, default_device
    from roz.engine.plan import plan_units
    from roz.engine.runner import run_units
    from roz.engine.store import ResultStore
    from roz.world import register
    from roz.world.build import build_world

    register()
    t0 = time.perf_counter()
    _log = log
    log = lambda m: _log(f"[{time.perf_counter() - t0:6.1f}s] {m}")  # noqa: E731
    out = Path(out)
    # --quick runs on the quick world (same recipes, fewer images): a smoke test of every code path.
    world = Path(world) if world else build_world(quick=quick, verbose=False)
    log(f"world: {world}  ({time.perf_counter() - t0:.1f} s)")
    models = shipped_models(Path(checkpoints) if checkpoints else CHECKPOINTS)
    _ensure_mini_a(world, models, log, n_candidates=400 if quick else 2000)
    cfg = demo_config(world, out, models, quick, full, Path(checkpoints) if checkpoints else CHECKPOINTS)
    units = plan_units(cfg)
    # The video splits are scored as whole pm-sets: never subsample them.
    units = [u if u.dataset.display not in VIDEO else _unlimited(u) for u in units]
    opts = RunOptions(batch_size=128, workers=0, device=default_device())
    run_units(units, out, opts, force=force, config=cfg, log=log)
    log(f"evaluation done ({time.perf_counter() - t0:.1f} s)")
    overlap = _overlap(world, out, log)
    from roz.report import build_report

    index = build_report(out, out=out / "report", title="ROZ demo on ROZ-Mini")
    report = out / "report.html"
    _redirect(report, index)
    log(f"report: {report}  (total {time.perf_counter() - t0:.1f} s)")
    return {"out": out, "report": report, "overlap": overlap, "seconds": time.perf_counter() - t0,
            "results": ResultStore(out, create=False).metrics_table(paper_order=True)}


def _unlimited(u):
    from dataclasses import replace

    return replace(u, limit=None)


def _redirect(report: Path, index: Path) -> None:
    """runs/demo/report.html: the report itself, with links rebased onto report/."""
    html = index.read_text()
    rel = index.parent.name
    for attr in ('href="', "src=\""):
        html = html.replace(f'{attr}tables/', f'{attr}{rel}/tables/').replace(f'{attr}figures/', f'{attr}{rel}/figures/')
    report.write_text(html)


def _ensure_mini_a(world: Path, models: list[dict], log, n_candidates: int = 2000) -> None:
    """mini-A is filtered against the shipped baselines: rebuilt whenever those weights change."""
    from roz.models.adapters import create_model
    from roz.world.mini_a import build_mini_a

    # As ImageNet-A was filtered against a fixed strong model (ResNet-50), mini-A is filtered
    # against the three strongest shipped baselines (kept when at least two misclassify).
    man = json.loads((CHECKPOINTS / "MANIFEST.json").read_text()) if (CHECKPOINTS / "MANIFEST.json").is_file() else {}
    std = sorted((m for m in models if m["role"] == "standard"),
                 key=lambda m: -man.get(m["name"], {}).get("mini_val_top1", 0.0))[:3]
    base = [create_model(m["spec"]) for m in std]
    key = sorted(m.identity.weights_sha256 for m in base)
    marker = world / "mini-a" / "FILTER_MODELS.json"
    if marker.is_file() and json.loads(marker.read_text()).get("sha256") == key:
        return
    log(f"building mini-a against {len(base)} baselines (ImageNet-A-style adversarial filtering)")
    import torch

    def fn(m):
        def predict(x):
            with torch.inference_mode():
                return m(x).argmax(1)
        return predict

    build_mini_a(world, [fn(m) for m in base], n_candidates=n_candidates, seed=1, min_wrong=2, force=True)
    from roz.engine.store import atomic_write_json

    atomic_write_json(marker, {"models": [m.identity.spec for m in base], "sha256": key})


def _overlap(world: Path, out: Path, log) -> dict:
    """Overlap of every natural image split with the CLIP pretraining corpus, through ``roz overlap
    detect``'s path. pHash + pixel check defines the clean sets (on ROZ-Mini it recovers the planted
    duplicates: precision/recall 1.00 on mini-r, docs/overlap.md); the paper's detector — cosine of
    the shipped CLIP's image embeddings, calibrated threshold — runs beside it on the splits with
    planted duplicates, and both are scored against them. Every model is re-scored and its ER
    compared on full vs clean test sets. Video splits (pm-k sets) are not de-duplicated."""
    from roz.datasets.registry import create_dataset
    from roz.engine.store import ResultStore
    from roz.overlap.calibrate import load_ground_truth
    from roz.overlap.pipeline import detect
    from roz.overlap.runs import detect_run, detection_line

    t0 = time.perf_counter()
    # the engine's own loaders, so sample i here is sample i of the stored per-sample rows
    test_sets = {label: create_dataset(loader, world / folder, **opts) for label, loader, folder, opts in NATURAL
                 if label != "mini-val" and label not in VIDEO and (world / folder).is_dir()}
    corpus, truth = world / "corpus" / "images", world / "corpus" / "planted_duplicates.json"
    planted = set(load_ground_truth(truth)["split"]) if truth.is_file() else set()
    truth = truth if truth.is_file() else None
    quiet = lambda m: None  # noqa: E731
    summary = detect_run(out, test_sets, corpus, detector="phash", ground_truth=truth, n_boot=1000, er_boot=200,
                         log=quiet)
    t1 = time.perf_counter()
    clip = next((m["spec"] for m in shipped_models() if m["role"] == "zeroshot"), "tiny")
    emb = detect({s: d for s, d in test_sets.items() if s in planted}, corpus, detector="embedding", encoder=clip,
                 ground_truth=truth, log=quiet)
    summary["comparisons"] = {
        "phash": {s: {**(summary[s]["detection"] or {}), "threshold": summary["protocol"]["threshold"]}
                  for s in test_sets if s in planted},
        f"embedding ({clip.rsplit('/', 1)[-1]})": {s: {**(d or {}), "threshold": emb["protocol"]["threshold"]}
                                                   for s, d in emb["detection"].items()}}
    summary["protocol"]["demo"] = {"clean_sets": "phash", "comparison": "embedding, encoder " + clip,
                                   "embedding_protocol": {k: v for k, v in emb["protocol"].items() if k != "corpus"},
                                   "not_deduplicated": sorted(VIDEO), "phash_s": t1 - t0,
                                   "embedding_s": time.perf_counter() - t1}
    ResultStore(out).write_overlap(summary)
    for split in test_sets:
        e = emb["detection"].get(split) or {}
        log(f"overlap (pHash) {detection_line(split, summary[split])}"
            + (f"; CLIP embedding: precision {e.get('precision', float('nan')):.2f} recall "
               f"{e.get('recall', float('nan')):.2f}" if e else ""))
    log(f"overlap step: {time.perf_counter() - t0:.1f} s (pHash {t1 - t0:.1f} s, CLIP embedding "
        f"{time.perf_counter() - t1:.1f} s)")
    return summary
