"""``search_prompts``: run AutoPrompt or CoOp for a CLIP on a few-shot set; write the artefact.

The artefact ``prompts.json`` (format in :mod:`roz.models.prompted`) records everything the result
depends on: the base model (spec, identity, weights sha256), the data (dataset, root, split, shots,
seed, the drawn sample indices and paths), the method and its hyper-parameters, the seed, a score per
prompt (cross-entropy and top-1 on the few-shot set) and the baseline "a photo of a {}." scored the
same way. CoOp's context goes to ``<stem>.context.pt`` beside it (a plain tensor, sha256 recorded).
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import fields
from pathlib import Path

import torch
import torch.nn.functional as F

from roz.errors import RozError
from roz.models import autoprompt, coop
from roz.models.prompted import PROMPTS_FORMAT

CONFIGS = {"autoprompt": autoprompt.AutoPromptConfig, "coop": coop.CoOpConfig}


def method_config(method: str, params: dict | None):
    """The method's config dataclass with ``params`` applied (unknown names -> RozError)."""
    if method not in CONFIGS:
        raise RozError(f"unknown prompt method {method!r}", hint=f"use one of {', '.join(CONFIGS)}")
    cls = CONFIGS[method]
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(params or {}) - known)
    if unknown:
        raise RozError(f"{method}: unknown parameter(s) {unknown}", hint=f"its parameters: {sorted(known)}")
    return cls(**(params or {}))


def score_head(head: torch.Tensor, scale: float, feats: torch.Tensor, targets: torch.Tensor) -> dict:
    """Cross-entropy and top-1 (%) of a head on the few-shot features."""
    logits = scale * feats @ head.t().to(feats.dtype)
    return {"loss": round(float(F.cross_entropy(logits, targets)), 6),
            "top1": round(100.0 * float((logits.argmax(1) == targets).float().mean()), 4)}


def search_prompts(model: str, method: str, dataset: str, root: str | Path, *, out: str | Path, shots: int = 16,
                   seed: int = 0, classes=None, dataset_options: dict | None = None, params: dict | None = None,
                   device: str = "cpu", log=None) -> dict:
    """Search prompts for ``model`` (a spec) and write ``out`` (prompts.json); returns the artefact."""
    from roz.models.adapters import create_model
    from roz.models.fewshot import few_shot_set
    from roz.models.prompt_towers import text_tower
    from roz.models.prompted import ids_head

    cfg = method_config(method, params)
    out = Path(out)
    if out.suffix != ".json":
        raise RozError(f"--out {out}: the artefact is a .json file", hint="e.g. --out prompts.json")
    torch.manual_seed(seed)
    base = create_model(model, classes=classes, templates="photo", device=device)
    tower = text_tower(base)
    data = few_shot_set(base, dataset, root, shots=shots, seed=seed, options=dataset_options)
    feats, targets = data.features.to(device), data.targets.to(device)
    names, scale = list(base.classes.names), tower.logit_scale()
    photo = (tower.token_ids(autoprompt.PHOTO[0]), tower.token_ids(autoprompt.PHOTO[1]))
    baseline = score_head(ids_head(tower, [photo], names).to(device), scale, feats, targets)
    t0 = time.perf_counter()
    art = {"roz_prompts": PROMPTS_FORMAT, "method": method, "seed": seed,
           "model": {"spec": model, "identity": base.identity.to_dict(), "weights_sha256": base.identity.weights_sha256,
                     "classes": base.classes.name, "n_classes": len(names)},
           "data": data.record, "baseline": {"text": "a photo of a {}.", **baseline}}
    if method == "autoprompt":
        found = autoprompt.search(tower, names, feats, targets, cfg, seed, log=log)
        art.update(_discrete(tower, found, cfg, photo, names, scale, feats, targets))
    else:
        ctx, record = coop.train(tower, names, feats, targets, cfg, seed, log=log)
        art.update(_continuous(out, ctx, record, cfg, base, tower, names, scale, feats, targets))
    art["seconds"] = round(time.perf_counter() - t0, 2)
    art["device"] = str(device)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(art, indent=1) + "\n")
    if log:
        log(f"{method}: few-shot top-1 {art['score']['top1']:.2f}% vs 'a photo of a {{}}.' {baseline['top1']:.2f}% "
            f"-> {out}")
    return art


def _discrete(tower, found, cfg, photo, names, scale, feats, targets) -> dict:
    from roz.models.prompted import ids_head

    kept = found["ranked"][:cfg.top_k]
    prompts = []
    for f in kept:
        head = ids_head(tower, [(f["triggers"], found["suffix_ids"])], names).to(feats.device)
        prompts.append({"prefix_ids": f["triggers"], "suffix_ids": found["suffix_ids"],
                        "text": tower.decode(f["triggers"]) + " {}" + cfg.suffix, "run": f["run"],
                        "score": score_head(head, scale, feats, targets)})
    prompts.append({"prefix_ids": photo[0], "suffix_ids": photo[1], "text": "a photo of a {}.", "run": None,
                    "score": score_head(ids_head(tower, [photo], names).to(feats.device), scale, feats, targets)})
    ensemble = ids_head(tower, [(p["prefix_ids"], p["suffix_ids"]) for p in prompts], names).to(feats.device)
    return {"hyper": found["config"], "prompts": prompts, "score": score_head(ensemble, scale, feats, targets),
            "runs": [{"run": f["run"], "prefix_ids": f["triggers"], "loss": round(f["loss"], 6)} for f in found["ranked"]],
            "cost": {"seconds_per_step": round(found["seconds_per_step"], 5), "steps_timed": found["steps_timed"],
                     "threads": torch.get_num_threads()}}


def _continuous(out: Path, ctx, record, cfg, base, tower, names, scale, feats, targets) -> dict:
    from roz.files import sha256_file
    from roz.models.checkpoint import atomic_write_bytes
    from roz.models.coop import ContextPrompts

    file = out.with_name(out.stem + ".context.pt")
    buf = io.BytesIO()
    torch.save(ctx, buf)
    atomic_write_bytes(file, buf.getvalue())
    file.chmod(0o644)  # mkstemp's 0600 would make a shipped artefact unreadable to others
    with torch.no_grad():
        head = ContextPrompts(tower, names, cfg.n_ctx, cfg.suffix).features(ctx.to(feats.device))
    context = {"file": file.name, "sha256": sha256_file(file), "shape": list(ctx.shape), "n_ctx": cfg.n_ctx,
               "class_specific": cfg.class_specific, "suffix": cfg.suffix, "dtype": str(ctx.dtype)}
    if cfg.class_specific:
        context["wnids"] = list(base.classes.wnids)
    return {"hyper": record["config"], "context": context, "loss_curve": record["loss_curve"],
            "score": score_head(head, scale, feats, targets),
            "cost": {"seconds_per_step": round(record["seconds_per_step"], 5), "steps": record["steps"],
                     "threads": torch.get_num_threads()}}
