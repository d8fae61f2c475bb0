"""ROZ-Mini's CLIP-Auto models: AutoPrompt and CoOp prompts for the tiny CLIP, searched on mini-train.

``roz world prompts --out DIR`` reproduces the shipped artefacts (``src/roz/world/checkpoints/
roz-mini-clip-auto.json`` and ``roz-mini-clip-coop.json`` + ``.context.pt``) and their manifest
``PROMPTS.json``: per artefact its sha256, method, and top-1 of the prompted model vs the single
template "a photo of a {}." on the few-shot set (16 per class from mini-train) and on held-out
mini-val. The demo evaluates both as role ``zeroshot-auto`` (purple), paired with ``roz-mini-clip``.
Hyper-parameters are chosen to keep the search to minutes on 2 CPU cores (docs/prompts.md).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

CHECKPOINTS = Path(__file__).parent / "checkpoints"
PROMPTS_MANIFEST = "PROMPTS.json"
SHOTS = 16
# name -> (method, parameters)
WORLD_PROMPTS = {
    "roz-mini-clip-auto": ("autoprompt", {"n_trigger": 4, "candidates": 32, "steps": 40, "runs": 3, "top_k": 2,
                                          "batch_size": 256}),
    "roz-mini-clip-coop": ("coop", {"n_ctx": 4, "init": "a photo of a", "epochs": 10, "batch_size": 64,
                                    "lr": 0.002}),
}


def clip_spec(ckpt_dir: Path = CHECKPOINTS) -> str:
    return f"local:{Path(ckpt_dir) / 'roz-mini-clip.pt'}"


def search_world_prompts(out: str | Path, seed: int = 0, world: str | Path | None = None, log=print,
                         only: list[str] | None = None) -> dict:
    """Search every ROZ-Mini prompt artefact into ``out``; returns (and writes) the manifest."""
    from roz.files import sha256_file
    from roz.models.prompt_search import search_prompts
    from roz.world import register
    from roz.world.build import build_world

    register()  # the roz-mini class set the CLIP names
    world = Path(world) if world else build_world(verbose=False)
    out = Path(out)
    man_path = out / PROMPTS_MANIFEST
    manifest = json.loads(man_path.read_text()) if man_path.is_file() else {}
    for name, (method, params) in WORLD_PROMPTS.items():
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        art = search_prompts(clip_spec(), method, "imagefolder", world / "mini-train", out=out / f"{name}.json",
                             shots=SHOTS, seed=seed, params=params, log=log)
        portable(out / f"{name}.json", world)
        val = mini_val_top1(out / f"{name}.json", world / "mini-val")
        manifest[name] = {"file": f"{name}.json", "sha256": sha256_file(out / f"{name}.json"), "method": method,
                          "params": params, "seed": seed, "shots": SHOTS, "fewshot_top1": art["score"]["top1"],
                          "fewshot_photo_top1": art["baseline"]["top1"], **val,
                          "seconds": round(time.perf_counter() - t0, 1), "threads": torch.get_num_threads(),
                          "command": f"roz world prompts --out DIR --seed {seed}"}
        if method == "coop":
            manifest[name]["context"] = {"file": art["context"]["file"], "sha256": art["context"]["sha256"]}
        man_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        log(f"{name}: mini-val top-1 {val['mini_val_top1']:.2f}% vs 'a photo of a {{}}.' {val['mini_val_photo_top1']:.2f}%")
    return manifest


def portable(artefact: Path, world: Path, ckpt_dir: Path = CHECKPOINTS) -> None:
    """Replace this machine's paths in a shipped artefact by placeholders (``<roz-checkpoints>``,
    ``<roz-mini-world>``): they are provenance only (loading checks the base weights' sha256,
    and the demo passes the base spec itself), and a shipped file must not carry a build
    machine's directories. Rewritten atomically; the manifest hashes the result."""
    from roz.engine.store import atomic_write_json

    text = artefact.read_text()
    for real, mark in ((str(Path(ckpt_dir).resolve()), "<roz-checkpoints>"),
                       (str(Path(world).resolve()), "<roz-mini-world>")):
        text = text.replace(json.dumps(real)[1:-1], mark)
    atomic_write_json(artefact, json.loads(text))


def mini_val_top1(artefact: Path, root: Path) -> dict:
    """Top-1 (%) on mini-val of the prompted CLIP and of the CLIP with "a photo of a {}."."""
    from roz.models.adapters import create_model
    from roz.models.prompted import prompted_spec

    models = {"mini_val_top1": create_model(prompted_spec(artefact, clip_spec())),
              "mini_val_photo_top1": create_model(clip_spec(), templates="photo")}
    return {k: round(_top1(m, root), 2) for k, m in models.items()}


def _top1(model, root: Path, batch: int = 256) -> float:
    from roz.datasets.registry import create_dataset

    ds = create_dataset("imagefolder", root)
    ds.transform = model.transform()
    wnid = {w: i for i, w in enumerate(model.classes.wnids)}
    target = [wnid[ds.labels.groups[y][0]] for _, y in ds.samples]
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(ds), batch):
            x = torch.stack([ds[j][0] for j in range(i, min(i + batch, len(ds)))])
            pred = model(x).argmax(1)
            correct += int((pred == torch.tensor(target[i:i + len(x)])).sum())
    return 100.0 * correct / max(1, len(ds))


def shipped_prompted(ckpt_dir: Path = CHECKPOINTS) -> list[dict]:
    """Demo model entries for the shipped prompt artefacts (role zeroshot-auto); [] if none."""
    from roz.models.prompted import prompted_spec

    man = Path(ckpt_dir) / PROMPTS_MANIFEST
    if not man.is_file():
        return []
    entries = json.loads(man.read_text())
    return [{"spec": prompted_spec(Path(ckpt_dir) / e["file"], clip_spec(ckpt_dir)), "name": name,
             "role": "zeroshot-auto"} for name, e in sorted(entries.items())]


def prompt_files(ckpt_dir: Path = CHECKPOINTS) -> set[str]:
    """File names the prompts manifest lists (artefacts and CoOp context tensors)."""
    man = Path(ckpt_dir) / PROMPTS_MANIFEST
    if not man.is_file():
        return set()
    entries = json.loads(man.read_text())
    return {f for e in entries.values() for f in (e.get("file"), (e.get("context") or {}).get("file")) if f}
