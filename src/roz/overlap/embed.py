"""Image embeddings for the embedding overlap detector.

Any ``torch.nn.Module`` (or object) that maps pixels in [0, 1] (``[N, 3, S, S]``) to features
works: if it has ``encode_image`` (ROZ zero-shot models expose it on [0, 1] pixels) that is
called, otherwise the module itself. A model that wants normalised inputs (a raw open_clip
model) gets them via ``mean``/``std``. Without a model, ``TinyImageEncoder`` is a generic,
training-free fallback ("tiny images": a 16x16 colour thumbnail, standardised per image).

Preprocessing for near-duplicate search: the *whole* image is resized (bicubic) to ``S x S``
(no centre crop — a crop would hide a border that a copy might share), ``S`` from the argument,
else the encoder's ``input_size`` / ``image_size`` / ``visual.image_size`` attribute, else 224.
Features are L2-normalised (cosine similarity = inner product).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F
from PIL import Image

from roz.errors import DataError, ModelError
from roz.overlap.hashing import default_workers, open_image_fast


class TinyImageEncoder(nn.Module):
    """Training-free fallback: ``[N, 3, H, W]`` in [0, 1] -> 768-d (16x16x3 area-pooled thumbnail,
    each channel standardised per image, so brightness/contrast shifts cancel)."""

    input_size = 64

    def __init__(self, side: int = 16):
        super().__init__()
        self.side = side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = F.adaptive_avg_pool2d(x.float(), self.side)
        t = t - t.mean(dim=(2, 3), keepdim=True)
        t = t / (t.std(dim=(2, 3), keepdim=True) + 1e-3)
        return t.flatten(1)


def encoder_input_size(encoder, default: int = 224) -> int:
    for obj, attr in ((encoder, "input_size"), (encoder, "image_size"), (getattr(encoder, "visual", None), "image_size")):
        v = getattr(obj, attr, None) if obj is not None else None
        if isinstance(v, int):
            return v
        if isinstance(v, (tuple, list)) and v and isinstance(v[0], int):
            return int(v[0])
    return default


def describe_encoder(encoder) -> dict:
    name = getattr(encoder, "name", None) or type(encoder).__name__
    return {"encoder": str(name), "input_size": encoder_input_size(encoder),
            "call": "encode_image" if hasattr(encoder, "encode_image") else "forward"}


def _to_tensor(img: Image.Image, size: int) -> torch.Tensor:
    a = np.asarray(img.resize((size, size), Image.Resampling.BICUBIC), dtype=np.uint8)
    return torch.from_numpy(a.copy()).permute(2, 0, 1)


@torch.no_grad()
def embed_tensor(x: torch.Tensor, encoder, *, mean=None, std=None) -> np.ndarray:
    """Pixels in [0, 1] -> L2-normalised float32 features."""
    if mean is not None:
        x = (x - torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)) / torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    f = encoder.encode_image(x) if hasattr(encoder, "encode_image") else encoder(x)
    if isinstance(f, (tuple, list)):
        f = f[0]
    f = f.float().flatten(1)
    return F.normalize(f, dim=1).cpu().numpy().astype(np.float32)


def embed_files(paths: Sequence[str | os.PathLike], encoder=None, *, input_size: int | None = None, mean=None,
                std=None, batch_size: int = 256, workers: int | None = None, device: str | torch.device = "cpu",
                on_bad_image: str = "skip") -> tuple[np.ndarray, np.ndarray]:
    """Embed image files: ``(features float32[N, D] L2-normalised, ok bool[N])`` (zeros where not ok)."""
    if on_bad_image not in ("fail", "skip"):
        raise DataError(f"on_bad_image must be 'fail' or 'skip', got {on_bad_image!r}")
    encoder = encoder if encoder is not None else TinyImageEncoder()
    if not (hasattr(encoder, "encode_image") or callable(encoder)):
        raise ModelError(f"overlap embedding: {type(encoder).__name__} has no encode_image and is not callable")
    if isinstance(encoder, nn.Module):
        encoder = encoder.eval().to(device)
    size = int(input_size or encoder_input_size(encoder))
    paths = [Path(p) for p in paths]
    n = len(paths)
    ok = np.zeros(n, dtype=bool)
    feats: np.ndarray | None = None

    def load(i):
        try:
            return _to_tensor(open_image_fast(paths[i], min_side=size), size)
        except DataError:
            if on_bad_image == "fail":
                raise
            return None

    workers = workers or default_workers()
    with ThreadPoolExecutor(max_workers=workers) as ex:
        for s in range(0, n, batch_size):
            ids = list(range(s, min(n, s + batch_size)))
            imgs = list(ex.map(load, ids))
            good = [i for i, t in zip(ids, imgs) if t is not None]
            if not good:
                continue
            x = torch.stack([t for t in imgs if t is not None]).float().div_(255.0).to(device)
            f = embed_tensor(x, encoder, mean=mean, std=std)
            if feats is None:
                feats = np.zeros((n, f.shape[1]), dtype=np.float32)
            feats[good] = f
            ok[good] = True
    if feats is None:
        feats = np.zeros((n, 1), dtype=np.float32)
    return feats, ok
