"""Frost: the image blended with a crop of an ice-crystal texture.

The reference (Hendrycks & Dietterich 2019; ``imagecorruptions``) picks one of six photographs of
frost at random, rescales it (bicubic) so it covers the image with a 1.1 margin, crops at a random
position and returns ``clip(a * x + b * frost)``. ROZ ports those steps exactly; given the same
texture and crop it reproduces the reference to one uint8 step (tested). The texture source is an
explicit, recorded option (``frost_textures``):

* ``"reference"`` (default): the six photographs, read at run time from the installed
  ``imagecorruptions`` package (``imagecorruptions-imaug``, Apache-2.0, a runtime dependency of
  ROZ). ROZ does not ship them. If they are missing, frost raises ``RozError`` -- it never
  switches texture source silently.
* ``"procedural"`` (opt-in only): six synthetic textures (plasma-fractal haze plus streaks of
  motion-blurred sparse "crystals"), generated from fixed seeds at the reference photographs'
  sizes and matched to their per-channel mean and std. These look like frost but are *not* the
  ImageNet-C textures: numbers obtained with them are not comparable to published ImageNet-C
  frost numbers. ``Corruption.params()`` records ``procedural-v1``.
"""

from __future__ import annotations

import importlib.util
import math
import os
from functools import lru_cache

import torch
import torch.nn.functional as F
from PIL import Image

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
TEXTURE_SOURCES = ("reference", "procedural")


def _texture_dir() -> str | None:
    """The installed ``imagecorruptions`` package's ``frost`` folder, or None.

    Located with ``find_spec`` rather than by importing the package: importing it loads numba,
    OpenCV and scikit-image, none of which frost needs.
    """
    try:
        spec = importlib.util.find_spec("imagecorruptions")
    except (ImportError, ValueError):
        return None
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        path = os.path.join(root, "frost")
        if all(os.path.isfile(os.path.join(path, name)) for name in _FILES):
            return path
    return None


@lru_cache(maxsize=1)
def _reference_textures() -> tuple[torch.Tensor, ...] | None:
    root = _texture_dir()
    if root is None:
        return None
    out = []
    for name in _FILES:
        with Image.open(os.path.join(root, name)) as img:  # same pixels as the reference's cv2.imread
            rgb = img.convert("RGB")
        out.append(torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
                   .reshape(rgb.height, rgb.width, 3).permute(2, 0, 1).float() / 255)
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


def check_textures(textures: str) -> None:
    """Raise ``RozError`` unless ``textures`` is a texture source that can be used here."""
    if textures not in TEXTURE_SOURCES:
        raise RozError(f"frost_textures={textures!r} is not a frost texture source",
                       hint="use 'reference' (the ImageNet-C photographs) or 'procedural'")
    if textures == "reference" and _reference_textures() is None:
        raise RozError("frost needs the ImageNet-C frost photographs, which ship with the "
                       "imagecorruptions package, and it is not installed",
                       hint="pip install imagecorruptions-imaug, or opt in to synthetic textures "
                            "with frost_textures='procedural' (not comparable to ImageNet-C)")


def texture_label(textures: str) -> str:
    """What ``params()`` records for a texture source: ``reference`` or ``procedural-v1``."""
    check_textures(textures)
    return "reference" if textures == "reference" else PROCEDURAL_VERSION


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
    tex = (_reference_textures() if source == "reference" else _procedural_textures())[i]
    fh, fw = tex.shape[-2:]
    s = _scale(fh, fw, H, W)
    size = (int(math.ceil(fh * s)), int(math.ceil(fw * s)))
    out = F.interpolate(tex[None], size=size, mode="bicubic", align_corners=False)[0]
    return (torch.round(out.clamp(0, 1) * 255) / 255).to(device)  # OpenCV returns uint8


def crop_draws(seeds: torch.Tensor, sizes: list[tuple[int, int]], H: int, W: int) -> list[tuple[int, int, int]]:
    """Per sample: (texture index, top, left) of its crop -- uniform like the reference's
    ``randint(6)``, ``randint(0, th - H)``, ``randint(0, tw - W)`` (``sizes``: rescaled textures)."""
    r = draw(seeds, "frost", lambda g: torch.rand(3, generator=g, dtype=torch.float64), torch.device("cpu"))
    out = []
    for u in r.tolist():
        i = min(int(u[0] * len(sizes)), len(sizes) - 1)
        th, tw = sizes[i]
        out.append((i, int(u[1] * max(th - H, 1)), int(u[2] * max(tw - W, 1))))
    return out


def frost(x: torch.Tensor, severity: int, seeds: torch.Tensor, textures: str = "reference") -> torch.Tensor:
    a, b = FROST[severity - 1]
    H, W = x.shape[-2:]
    check_textures(textures)
    texs = [_rescaled(textures, i, H, W, str(x.device)) for i in range(len(_FILES))]
    draws = crop_draws(seeds, [tuple(t.shape[-2:]) for t in texs], H, W)
    crops = [texs[i][:, y0:y0 + H, x0:x0 + W] for i, y0, x0 in draws]
    return a * x + b * torch.stack(crops)
