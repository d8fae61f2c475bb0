"""Shared pieces of ROZ-Mini model training: world loading, augmentation, schedules, rounding.

Everything here works on whole in-memory ``uint8`` tensors: a ROZ-Mini world is small
(64x64 images, a few thousand per split), so decoding the PNGs once and keeping them in RAM is
much faster on CPU than a per-epoch ``DataLoader``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from roz.errors import DataError

IMAGE_SIZE = 64
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLASS_SET_NAME = "roz-mini"
IMG_EXTS = (".png", ".jpg", ".jpeg", ".webp")


def preprocess_meta(mean, std) -> dict:
    """The sidecar ``preprocess`` block of every ROZ-Mini model: 64 px in, no crop."""
    return {"input_size": IMAGE_SIZE, "resize_size": IMAGE_SIZE, "interpolation": "bicubic",
            "mean": list(mean), "std": list(std)}


# ----------------------------------------------------------------------------- world loading

@dataclass
class WorldClasses:
    name: str
    wnids: list[str]
    names: list[str]

    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.wnids)}


def load_world_classes(world_root: str | os.PathLike) -> WorldClasses:
    p = Path(world_root) / "classes.json"
    try:
        data = json.loads(p.read_text())
        wnids, names = list(data["wnids"]), list(data["names"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise DataError(f"cannot read the world's class list {p}: {e}",
                        hint="point at a built ROZ-Mini world root (it holds classes.json)") from None
    if len(wnids) != len(names) or not wnids:
        raise DataError(f"{p}: {len(wnids)} wnids but {len(names)} names")
    return WorldClasses(str(data.get("name", CLASS_SET_NAME)), wnids, names)


def load_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (IMAGE_SIZE, IMAGE_SIZE):
                im = im.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BICUBIC)
            return np.asarray(im, dtype=np.uint8)
    except OSError as e:
        raise DataError(f"cannot read image {path}: {e}") from None


def stack_images(arrays: list[np.ndarray]) -> torch.Tensor:
    """list of HxWx3 uint8 -> N x 3 x H x W uint8 tensor."""
    if not arrays:
        return torch.zeros(0, 3, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8)
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def load_split(world_root: str | os.PathLike, split: str, classes: WorldClasses,
               limit_per_class: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``<root>/<split>/<wnid>/*.png`` -> (uint8 images N x 3 x 64 x 64, int64 labels)."""
    root = Path(world_root) / split
    if not root.is_dir():
        raise DataError(f"world split {root} not found", hint="build the ROZ-Mini world first")
    files, labels = [], []
    for i, w in enumerate(classes.wnids):
        d = root / w
        found = sorted(f for f in d.iterdir() if f.suffix.lower() in IMG_EXTS) if d.is_dir() else []
        if limit_per_class is not None:
            found = found[:limit_per_class]
        files += found
        labels += [i] * len(found)
    imgs = [load_image(f) for f in files]
    if not imgs:
        raise DataError(f"world split {root} holds no images for the world's classes")
    return stack_images(imgs), torch.tensor(labels, dtype=torch.long)


def load_corpus(world_root: str | os.PathLike, limit: int | None = None) -> tuple[torch.Tensor, list[str], list[dict]]:
    """``corpus/captions.jsonl`` + ``corpus/images/`` -> (uint8 images, captions, records)."""
    root = Path(world_root) / "corpus"
    cap = root / "captions.jsonl"
    if not cap.is_file():
        raise DataError(f"world corpus {cap} not found", hint="build the ROZ-Mini world first")
    recs = []
    with open(cap, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
                str(r["file"]), str(r["caption"])
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise DataError(f"{cap}:{ln}: bad caption record ({e})") from None
            recs.append(r)
    if limit is not None:
        recs = recs[:limit]
    paths = []
    for r in recs:
        p = Path(r["file"])
        if not p.is_absolute():
            cand = [root / "images" / p, root / p, Path(world_root) / p]
            p = next((c for c in cand if c.is_file()), cand[0])
        paths.append(p)
    imgs = [load_image(p) for p in paths]
    if not recs:
        raise DataError(f"world corpus {cap} is empty")
    return stack_images(imgs), [str(r["caption"]) for r in recs], recs


# ----------------------------------------------------------------------------- tensors & aug

def to_float(x_u8: torch.Tensor) -> torch.Tensor:
    return x_u8.float().div_(255.0)


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    m = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


def augment(x: torch.Tensor, gen: torch.Generator, flip: bool, scale=(0.8, 1.05), shift: float = 0.12,
            jitter: float = 0.15) -> torch.Tensor:
    """Cheap batched augmentation on [0,1] images: random zoom/translate (one affine warp),
    optional horizontal flip (never for the CLIP, whose images contain written words), and a
    brightness/contrast jitter."""
    n = x.shape[0]
    s = torch.empty(n).uniform_(scale[0], scale[1], generator=gen)
    tx = torch.empty(n).uniform_(-shift, shift, generator=gen)
    ty = torch.empty(n).uniform_(-shift, shift, generator=gen)
    sx = s.clone()
    if flip:
        sx = torch.where(torch.rand(n, generator=gen) < 0.5, -sx, sx)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = sx, s, tx, ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if jitter:
        b = torch.empty(n, 1, 1, 1).uniform_(-jitter, jitter, generator=gen)
        c = torch.empty(n, 1, 1, 1).uniform_(1 - jitter, 1 + jitter, generator=gen)
        mu = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mu) * c + mu + b).clamp_(0, 1)
    return x


def cosine_lr(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))


def wsd_lr(step: int, total: int, base: float, warmup: int, decay_frac: float = 0.4) -> float:
    """Warmup-stable-decay: linear warmup, constant, then a cosine to 0 over the last
    ``decay_frac`` of the steps (the tiny CLIP learns to read late; a full-length cosine
    decays its learning rate before reading sets in)."""
    if step < warmup:
        return base * (step + 1) / warmup
    start = int(total * (1 - decay_frac))
    return base if step < start else cosine_lr(step - start, total - start, base, 0)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """open_clip/timm convention: no weight decay on gains, biases, norms, embeddings' scales."""
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2 or "bn" in n or "ln" in n or "norm" in n or "bias" in n or "logit_scale" in n \
                or n.endswith("token") or "positional_embedding" in n or "pos_embed" in n:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@torch.no_grad()
def round_to_half_(model: torch.nn.Module) -> None:
    """Round floating params/buffers to float16 precision in place, so the in-memory model is
    exactly what ``save_checkpoint(half=True)`` ships (and what a reload gives back)."""
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            t.copy_(t.half().float())


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def code_version() -> str:
    """``roz-<version>+train.<sha8>``: the package version plus a hash of the training code."""
    import roz

    h = hashlib.sha256()
    here = Path(__file__).parent
    for name in ("train_common.py", "train_clip.py", "train_baselines.py", "train.py"):
        p = here / name
        if p.is_file():
            h.update(p.read_bytes())
    cfg = Path(__file__).parents[1] / "models" / "configs" / "roz-mini-clip.json"
    if cfg.is_file():
        h.update(cfg.read_bytes())
    return f"roz-{roz.__version__}+train.{h.hexdigest()[:8]}"


def set_threads(n: int | None) -> None:
    if n:
        torch.set_num_threads(n)
