"""Frost: the image blended with a crop of an ice-crystal texture.

The reference (Hendrycks & Dietterich 2019; ``imagecorruptions``) picks one of six photographs of
frost at random, rescales it (bicubic) so it covers the image with a 1.1 margin, crops at a random
position and returns ``clip(a * x + b * frost)``. Those photographs are third-party images that
ROZ does not ship. Texture source, decided once per process:

* ``"imagecorruptions"`` (default when the package is installed): the six photographs are read
  from the installed ``imagecorruptions`` package at run time -- an exact port of the reference
  apart from codec/resampler rounding.
* ``"procedural"`` (fallback, or forced with ``ROZ_FROST_TEXTURES=procedural``): six synthetic
  textures (plasma-fractal haze plus streaks of motion-blurred sparse "crystals"), generated from
  fixed seeds at the reference photographs' sizes and matched to their per-channel mean and std.
  These look like frost but are *not* the ImageNet-C textures: numbers obtained with them are
  not comparable to published ImageNet-C frost numbers.

``Corruption.params()`` records which source was used.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache

import torch
import torch.nn.functional as F

from roz.errors import RozError
from roz.shifts.corruptions._common import draw, motion_blur_batch

FROST = ((1.0, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))  # image weight, frost weight
_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")
# (height, width) of the reference photographs and their per-channel RGB mean / std, measured by us.
_SIZES = ((600, 900), (315, 560), (315, 560), (350, 527), (495, 660), (323, 485))
_MEAN = ((0.305, 0.585, 0.65), (0.787, 0.805, 0.841), (0.787, 0.805, 0.841),
         (0.54, 0.599, 0.648), (0.441, 0.484, 0.528), (0.28, 0.374, 0.41))
_STD = ((0.106, 0.065, 0.06), (0.084, 0.087, 0.089), (0.084, 0.087, 0.089),
        (0.112, 0.112, 0.117), (0.174, 0.17, 0.163), (0.138, 0.168, 0.186))
PROCEDURAL_VERSION = "procedural-v1"


@lru_cache(maxsize=1)
def _reference_textures() -> tuple[torch.Tensor, ...] | None:
    try:
        import importlib.resources

        import imagecorruptions  # noqa: F401
        from PIL import Image
    except ImportError:
        return None
    out = []
    root = importlib.resources.files("imagecorruptions") / "frost"
    for name in _FILES:
        with importlib.resources.as_file(root / name) as path:
            if not os.path.exists(path):
                return None
            img = Image.open(path).convert("RGB")
            out.append(torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
                       .reshape(img.height, img.width, 3).permute(2, 0, 1).float() / 255)
    return tuple(out)


def _procedural_texture(i: int) -> torch.Tensor:
    from roz.shifts.corruptions.weather import next_power_of_2, plasma_fractal

    h, w = _SIZES[i]
    g = torch.Generator()
    g.manual_seed(7919 * (i + 1))
    m = next_power_of_2(max(h, w))
    haze = plasma_fractal(torch.rand(1, m * m - 1, generator=g), m, 1.8)[:, None, :h, :w]
    crystals = torch.zeros(1, 1, h, w)
    for _ in range(4):  # four families of needles at random angles
        seeds = (torch.rand(1, 1, h, w, generator=g) < 0.004).float() * 6.0
        angle = float(torch.rand(1, generator=g)) * 360.0
        crystals = crystals + motion_blur_batch(seeds, 12, 6.0, [angle])
    tex = 0.6 * haze + crystals.clamp(0, 1.5)
    tex = (tex - tex.mean()) / tex.std()
    mean = torch.tensor(_MEAN[i]).view(1, 3, 1, 1)
    std = torch.tensor(_STD[i]).view(1, 3, 1, 1)
    return (mean + std * tex).clamp(0, 1)[0]


@lru_cache(maxsize=1)
def _procedural_textures() -> tuple[torch.Tensor, ...]:
    return tuple(_procedural_texture(i) for i in range(len(_FILES)))


def frost_source() -> str:
    """``"imagecorruptions"`` or ``"procedural"`` -- which textures :func:`frost` uses here."""
    want = os.environ.get("ROZ_FROST_TEXTURES", "auto")
    if want not in ("auto", "imagecorruptions", "procedural"):
        raise RozError(f"ROZ_FROST_TEXTURES={want!r} is not a frost texture source",
                       hint="use 'auto', 'imagecorruptions' or 'procedural'")
    if want == "procedural":
        return "procedural"
    if _reference_textures() is None:
        if want == "imagecorruptions":
            raise RozError("ROZ_FROST_TEXTURES=imagecorruptions but the imagecorruptions package "
                           "(which holds the frost photographs) is not installed",
                           hint="pip install imagecorruptions-imaug, or unset ROZ_FROST_TEXTURES")
        return "procedural"
    return "imagecorruptions"


def _scale(fh: int, fw: int, H: int, W: int) -> float:
    if fh >= H and fw >= W:
        s = 1.0
    elif fh < H and fw >= W:
        s = H / fh
    elif fh >= H and fw < W:
        s = W / fw
    else:
        s = max(H / fh, W / fw)
    return s * 1.1


@lru_cache(maxsize=64)
def _rescaled(source: str, i: int, H: int, W: int, device: str) -> torch.Tensor:
    tex = (_reference_textures() if source == "imagecorruptions" else _procedural_textures())[i]
    fh, fw = tex.shape[-2:]
    s = _scale(fh, fw, H, W)
    size = (int(math.ceil(fh * s)), int(math.ceil(fw * s)))
    out = F.interpolate(tex[None], size=size, mode="bicubic", align_corners=False)[0]
    return (torch.round(out.clamp(0, 1) * 255) / 255).to(device)  # OpenCV returns uint8


def frost(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    a, b = FROST[severity - 1]
    B, _, H, W = x.shape
    source = frost_source()
    texs = [_rescaled(source, i, H, W, str(x.device)) for i in range(len(_FILES))]
    r = draw(seeds, "frost", lambda g: torch.rand(3, generator=g, dtype=torch.float64), torch.device("cpu"))
    crops = []
    for u in r.tolist():
        i = min(int(u[0] * len(_FILES)), len(_FILES) - 1)
        t = texs[i]
        y0 = int(u[1] * max(t.shape[-2] - H, 1))
        x0 = int(u[2] * max(t.shape[-1] - W, 1))
        crops.append(t[:, y0:y0 + H, x0:x0 + W])
    return a * x + b * torch.stack(crops)
