"""mini-a: natural adversarial examples, filtered against a fixed set of baselines.

ImageNet-A kept photos that a ResNet-50 misclassified; here candidates are drawn with the
in-distribution (val) recipe under a fresh seed and kept when enough of the given classifiers
get them wrong.  It needs trained baselines, so it is built after the world (the lead wires
which baselines).  Output: ``mini-a/<wnid>/*.png`` plus ``mini-a/MINI_A.json``; classes with no
kept image have no folder (as ImageNet-A covers 200 of the 1000 classes).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from roz.errors import DataError


def _to_indices(pred, wnids: list[str]) -> list[int]:
    if hasattr(pred, "detach"):
        pred = pred.detach().cpu().numpy()
    if isinstance(pred, np.ndarray):
        if pred.ndim == 2:  # logits / probabilities
            pred = pred.argmax(1)
        pred = pred.tolist()
    idx = {w: i for i, w in enumerate(wnids)}
    return [idx.get(p, -1) if isinstance(p, str) else int(p) for p in pred]


def _filter_batch(ids: list[int], wnids: list[str], seed: int, predict_fns, min_wrong: int, staging: Path,
                  kept: list, hashes: dict) -> None:
    """Draw the candidates ``ids``, keep (write) those at least ``min_wrong`` classifiers get wrong."""
    import torch

    from roz.world import compose, splits

    imgs, labels = [], []
    for i in ids:
        w = wnids[i % len(wnids)]
        rng = splits.rng_for(seed, i, "mini-a")
        imgs.append(compose.in_dist(splits.sprite(splits.COLOR_STYLES[(i // len(wnids)) % 2], w), rng))
        labels.append(i % len(wnids))
    x = torch.from_numpy(np.stack([np.asarray(im, dtype=np.float32) / 255.0 for im in imgs])).permute(0, 3, 1, 2).contiguous()
    wrong = np.zeros(len(ids), dtype=np.int64)
    with torch.no_grad():
        for fn in predict_fns:
            pred = _to_indices(fn(x), wnids)
            wrong += np.array([p != y for p, y in zip(pred, labels)], dtype=np.int64)
    for j, i in enumerate(ids):
        if wrong[j] >= min_wrong:
            w = wnids[labels[j]]
            rel = f"{w}/{w}_{i:06d}.png"
            hashes[rel] = splits._write(staging, rel, imgs[j])
            kept.append({"file": rel, "wnid": w, "n_wrong": int(wrong[j])})


def build_mini_a(
    world_root: Path | str,
    predict_fns: Sequence[Callable],
    n_candidates: int = 4000,
    seed: int = 1,
    min_wrong: int | None = None,
    batch_size: int = 256,
    force: bool = False,
) -> Path:
    """Write ``<world_root>/mini-a`` and return its path.

    ``predict_fns``: classifiers; each maps a float tensor ``[B, 3, 64, 64]`` in [0, 1] to
    predictions over the roz-mini classes (``classes.json`` order): class indices, logits
    ``[B, C]``, or wnid strings.  A candidate is kept when at least ``min_wrong`` of them
    (default: all) misclassify it.  Deterministic given the seed and the classifiers.
    """
    from roz.world import splits
    from roz.world.assets import ensure_assets
    from roz.world.concepts import CONCEPTS
    from roz.world.files import load_sprites

    root = Path(world_root)
    try:
        classes = json.loads((root / "classes.json").read_text())
    except (OSError, json.JSONDecodeError):
        raise DataError(f"{root} is not a ROZ-Mini world (no classes.json)", hint="build it with roz.world.build.build_world()") from None
    if not predict_fns:
        raise DataError("build_mini_a needs at least one classifier")
    wnids = list(classes["wnids"])
    min_wrong = len(predict_fns) if min_wrong is None else int(min_wrong)
    out = root / "mini-a"
    params = {"seed": int(seed), "n_candidates": int(n_candidates), "n_classifiers": len(predict_fns), "min_wrong": min_wrong}
    if out.exists() and not force:
        try:
            if json.loads((out / "MINI_A.json").read_text())["params"] == params:
                return out
        except (OSError, json.JSONDecodeError, KeyError):
            pass

    if not splits.SPRITES:
        splits.SPRITES.update(load_sprites(ensure_assets()))
    splits.CODEPOINT.update({c.wnid: c.codepoint for c in CONCEPTS})

    staging = root / f".mini-a.partial{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    kept, hashes = [], {}
    for start in range(0, n_candidates, batch_size):
        ids = list(range(start, min(n_candidates, start + batch_size)))
        _filter_batch(ids, wnids, seed, predict_fns, min_wrong, staging, kept, hashes)
    counts: dict[str, int] = {}
    for k in kept:
        counts[k["wnid"]] = counts.get(k["wnid"], 0) + 1
    listing = "".join(f"{k} {hashes[k]}\n" for k in sorted(hashes))
    meta = {
        "params": params,
        "n_kept": len(kept),
        "counts": dict(sorted(counts.items())),
        "content_sha256": hashlib.sha256(listing.encode()).hexdigest(),
        "images": kept,
    }
    staging.mkdir(parents=True, exist_ok=True)
    (staging / "MINI_A.json").write_text(json.dumps(meta, indent=1) + "\n")
    if out.exists():
        shutil.rmtree(out)
    os.replace(staging, out)
    return out
