"""ImageNet-P perturbation sequences, generated on the fly for any image batch.

Follows Hendrycks & Dietterich (2019), "Benchmarking Neural Network Robustness to Common
Corruptions and Perturbations" (ICLR), as built by ``ImageNet-P/create_p/make_imagenet_p.py`` of
``hendrycks/robustness``. Each clean image becomes a sequence of frames:

===============  =======  =====================================================================
perturbation     frames   frame ``i`` (reference parameters, 224-px frames)
===============  =======  =====================================================================
gaussian_noise   31       0: clean; 1..30: ``clip(x + N(0, s))``, i.i.d. draws; s = .03/.05/.08
shot_noise       31       0: clean; 1..30: ``Poisson(x * r) / r``, i.i.d.; r = 300/120/60
speckle_noise*   31       0: clean; 1..30: ``x + x * N(0, s)``, i.i.d.; s = .05/.10/.15
motion_blur      31       motion blur radius 10, sigma 3, angle ``(i - 30) * 4`` degrees
zoom_blur        31       0: clean; i: mean of zooms ``1 + 0.004 j`` for j = 0..i
snow             31       one snow layer per image, motion-blurred (radius 14, sigma 4) at angle
                          ``4 i - 150``, over the image whitened as ``0.85 x + 0.15 max(x, 1.5 g + .5)``
brightness       31       HSV value ``+ (i - 15) * 0.02``
translate        41       horizontal shift ``i - 20`` px (nearest)
rotate           31       rotation ``i - 15`` degrees (bilinear)
tilt             31       3-D tilt ``phi = theta = i - 15`` degrees (perspective warp)
scale            31       zoom ``(2.5 i + 40) / 100`` about the centre (bilinear)
gaussian_blur*   31       Gaussian blur sigma ``0.25 + 0.035 i``
shear*           31       shear ``i - 15`` degrees
===============  =======  =====================================================================

(* = the validation perturbations of the release.) ``difficulty`` 2 and 3 change only the noise
parameters (the released ``<noise>_2`` / ``<noise>_3`` folders); for the other perturbations the
difficulty is a frame *stride* in the metric (``roz.metrics.perturbation``).

Pixel-unit parameters (blur radii, translation) are defined for 224-px frames and scaled by
``frame_width / 224``. The reference applies the geometric perturbations (translate, rotate,
tilt, scale, shear, zoom blur) to the 256-px resized image and then centre-crops 224 px, so
content from outside the crop moves into view; pass the resized image with ``crop=(224, 224)``
to reproduce that (otherwise the area outside the image is black, as the reference's own fill).
The others are applied to the crop, as in the reference.

Randomness (noise draws, the snow layer) comes from a per-sample CPU generator seeded from the
sample seed, the perturbation name and the frame index, so a frame is identical whatever the batch,
the frames requested alongside it, or the device. Frames are quantised to 8 bits (``quantize``)
like the reference's PNG frames; video (x264) coding of the release is not reproduced.
"""

from __future__ import annotations

import hashlib
import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from roz.datasets.release_names import (ALL_PERTURBATIONS, EXTRA_PERTURBATIONS,  # noqa: F401  (re-exported)
                                        NOISE_PERTURBATIONS, PERTURBATIONS, base_name, is_noise, n_frames)
from roz.shifts.base import Shift


REF_SIZE = 224  # frame width the reference's pixel parameters are defined for

_GAUSSIAN_STD = {1: 0.03, 2: 0.05, 3: 0.08}
_SHOT_RATE = {1: 300.0, 2: 120.0, 3: 60.0}
_SPECKLE_STD = {1: 0.05, 2: 0.10, 3: 0.15}


def _check(name: str, difficulty: int) -> None:
    if name not in ALL_PERTURBATIONS:
        raise ValueError(f"unknown ImageNet-P perturbation {name!r}; choose from {', '.join(ALL_PERTURBATIONS)}")
    if difficulty not in (1, 2, 3):
        raise ValueError(f"ImageNet-P difficulty must be 1, 2 or 3, got {difficulty}")


# ----------------------------------------------------------------------------- randomness


def _generator(seed: int, *salt) -> torch.Generator:
    h = hashlib.blake2b(":".join(str(s) for s in (int(seed), "imagenet-p", *salt)).encode(), digest_size=8).digest()
    g = torch.Generator()
    g.manual_seed(int.from_bytes(h, "little") & ((1 << 63) - 1))
    return g


# ----------------------------------------------------------------------------- geometry


def _pixel_grid(H: int, W: int, dtype=torch.float64) -> torch.Tensor:
    """Homogeneous pixel-centre coordinates ``[H*W, 3]`` (x = column index, y = row index)."""
    ys, xs = torch.meshgrid(torch.arange(H, dtype=dtype), torch.arange(W, dtype=dtype), indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1), torch.ones(H * W, dtype=dtype)], dim=1)


def _warp(x: torch.Tensor, inv: np.ndarray, mode: str = "bilinear") -> torch.Tensor:
    """``out(p) = x(inv @ p)`` for a 3x3 homography ``inv`` in pixel coordinates; zero fill."""
    B, C, H, W = x.shape
    p = _pixel_grid(H, W) @ torch.as_tensor(inv, dtype=torch.float64).T
    src = p[:, :2] / p[:, 2:3]
    gx = (2 * src[:, 0] + 1) / W - 1
    gy = (2 * src[:, 1] + 1) / H - 1
    grid = torch.stack([gx, gy], dim=1).reshape(1, H, W, 2).to(x.device, x.dtype).expand(B, H, W, 2)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


def _centre(H: int, W: int) -> tuple[np.ndarray, np.ndarray]:
    cx, cy = (W - 1) / 2.0, (H - 1) / 2.0
    to = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], dtype=np.float64)
    back = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]], dtype=np.float64)
    return to, back


def _affine_inverse(H: int, W: int, angle: float = 0.0, scale: float = 1.0, tx: float = 0.0,
                    shear: float = 0.0) -> np.ndarray:
    """Inverse of the forward map of torchvision's ``affine`` (same angle, shear, scale, translate conventions)."""
    a, s = math.radians(angle), math.radians(shear)
    rot = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    sh = np.array([[1, -math.tan(s), 0], [0, 1, 0], [0, 0, 1]])
    sc = np.diag([scale, scale, 1.0])
    tr = np.array([[1, 0, tx], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
    to, back = _centre(H, W)
    fwd = tr @ back @ rot @ sh @ sc @ to
    return np.linalg.inv(fwd)


def _tilt_inverse(H: int, W: int, deg: float) -> np.ndarray:
    """The reference's perspective matrix ``P2 T RX RY P1`` (phi = theta = deg), inverted."""
    phi = theta = math.radians(deg)
    f = math.sqrt(W ** 2 + H ** 2)
    P1 = np.array([[1, 0, -W / 2], [0, 1, -H / 2], [0, 0, 1], [0, 0, 1]], dtype=np.float64)
    RX = np.array([[1, 0, 0, 0], [0, math.cos(theta), -math.sin(theta), 0],
                   [0, math.sin(theta), math.cos(theta), 0], [0, 0, 0, 1]])
    RY = np.array([[math.cos(phi), 0, -math.sin(phi), 0], [0, 1, 0, 0],
                   [math.sin(phi), 0, math.cos(phi), 0], [0, 0, 0, 1]])
    T = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, f], [0, 0, 0, 1]], dtype=np.float64)
    P2 = np.array([[f, 0, W / 2, 0], [0, f, H / 2, 0], [0, 0, 1, 0]], dtype=np.float64)
    return np.linalg.inv(P2 @ T @ RX @ RY @ P1)


def _zoom_about_centre(x: torch.Tensor, z: float) -> torch.Tensor:
    H, W = x.shape[-2:]
    return _warp(x, _affine_inverse(H, W, scale=z))


def centre_crop(x: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """torchvision ``CenterCrop`` on the last two dims."""
    if size is None:
        return x
    H, W = x.shape[-2:]
    ch, cw = size
    if ch > H or cw > W:
        raise ValueError(f"crop {size} is larger than the frame {(H, W)}")
    top, left = int(round((H - ch) / 2.0)), int(round((W - cw) / 2.0))
    return x[..., top:top + ch, left:left + cw]


# ----------------------------------------------------------------------------- filters


def _motion_taps(radius: int, sigma: float, angle: float, H: int, W: int) -> list[tuple[int, int, float]]:
    """ImageMagick-style motion blur taps ``(dy, dx, weight)`` as in ``imagecorruptions``."""
    width = 2 * radius + 1
    k = np.exp(-(np.arange(width) ** 2) / (2 * sigma ** 2))
    k = k / k.sum()
    py, px = width * math.sin(math.radians(angle)), width * math.cos(math.radians(angle))
    hyp = math.hypot(py, px)
    taps = []
    for i in range(width):
        dy = -math.ceil(i * py / hyp - 0.5)
        dx = -math.ceil(i * px / hyp - 0.5)
        if abs(dy) >= H or abs(dx) >= W:
            break
        taps.append((dy, dx, float(k[i])))
    return taps


def _motion_blur(x: torch.Tensor, radius: int, sigma: float, angle: float) -> torch.Tensor:
    """``sum_i k_i * x[y - dy_i, x - dx_i]`` with edge replication (same angle for the batch)."""
    H, W = x.shape[-2:]
    out = torch.zeros_like(x)
    ar_y, ar_x = torch.arange(H, device=x.device), torch.arange(W, device=x.device)
    for dy, dx, w in _motion_taps(radius, sigma, angle, H, W):
        iy = (ar_y - dy).clamp(0, H - 1)
        ix = (ar_x - dx).clamp(0, W - 1)
        out = out + w * x.index_select(-2, iy).index_select(-1, ix)
    return out


def _gaussian_blur(x: torch.Tensor, sigma: float, truncate: float = 6.0) -> torch.Tensor:
    """skimage ``gaussian`` (scipy ``nearest`` border) as a separable convolution."""
    r = int(truncate * sigma + 0.5)
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(x)
    B, C, H, W = x.shape
    z = F.pad(x.reshape(B * C, 1, H, W), (r, r, r, r), mode="replicate")
    z = F.conv2d(z, k.view(1, 1, -1, 1))
    z = F.conv2d(z, k.view(1, 1, 1, -1))
    return z.reshape(B, C, H, W)


def _brightness(x: torch.Tensor, c: float) -> torch.Tensor:
    """Add ``c`` to the HSV value channel (hue, saturation kept): scales RGB by ``V' / V``."""
    v = x.amax(dim=1, keepdim=True)
    v2 = (v + c).clamp(0, 1)
    ratio = torch.where(v > 0, v2 / v.clamp_min(1e-12), torch.zeros_like(v))
    return torch.where(v > 0, x * ratio, v2.expand_as(x))


def _gray(x: torch.Tensor) -> torch.Tensor:
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def _snow_layer(seed: int, H: int, W: int) -> torch.Tensor:
    """The reference's snow layer: N(0.05, 0.3), zoomed x3 about the centre, thresholded at 0.5."""
    g = _generator(seed, "snow")
    layer = 0.05 + 0.3 * torch.randn((1, 1, H, W), generator=g, dtype=torch.float64)
    ch, cw = int(math.ceil(H / 3.0)), int(math.ceil(W / 3.0))
    top, left = (H - ch) // 2, (W - cw) // 2
    z = F.interpolate(layer[..., top:top + ch, left:left + cw], size=(ch * 3, cw * 3), mode="bilinear",
                      align_corners=True)
    tt, tl = (z.shape[-2] - H) // 2, (z.shape[-1] - W) // 2
    z = z[..., tt:tt + H, tl:tl + W]
    z = torch.where(z < 0.5, torch.zeros_like(z), z).clamp(0, 1)
    return (torch.floor(z * 255) / 255).float()[0]  # saved as an 8-bit PNG in the reference


# ----------------------------------------------------------------------------- sequences


def _frames_arg(name: str, frames) -> list[int]:
    T = n_frames(name)
    if frames is None:
        return list(range(T))
    out = [int(f) for f in frames]
    bad = [f for f in out if not 0 <= f < T]
    if bad:
        raise ValueError(f"{name}: frame indices {bad} outside 0..{T - 1}")
    return out


def _noise_frames(name: str, src: torch.Tensor, idx: list, seeds_l: list, difficulty: int, dev) -> list:
    """Frames ``idx`` of a noise sequence: frame 0 clean, then i.i.d. draws per sample and frame."""
    def noise_frame(t: int, draw) -> torch.Tensor:
        if t == 0:
            return src
        return torch.stack([draw(i, _generator(s, name, difficulty, t)) for i, s in enumerate(seeds_l)]).to(dev)

    out = []
    if name == "gaussian_noise":
        std = _GAUSSIAN_STD[difficulty]
        for t in idx:
            n = noise_frame(t, lambda i, g: torch.randn(src.shape[1:], generator=g)) if t else None
            out.append(src if t == 0 else src + std * n)
    elif name == "shot_noise":
        rate = _SHOT_RATE[difficulty]
        cpu = src.detach().float().cpu()
        for t in idx:
            out.append(noise_frame(t, lambda i, g: torch.poisson(cpu[i] * rate, generator=g) / rate))
    elif name == "speckle_noise":
        std = _SPECKLE_STD[difficulty]
        for t in idx:
            n = noise_frame(t, lambda i, g: torch.randn(src.shape[1:], generator=g)) if t else None
            out.append(src if t == 0 else src * (1 + std * n))
    return out


def _frames(name: str, src: torch.Tensor, idx: list, seeds_l: list, r: float, dev) -> list:
    """Frames ``idx`` of a non-noise sequence (``r``: frame width / 224 for pixel parameters)."""
    H, W = src.shape[-2:]
    out = []
    if name == "motion_blur":
        radius, sigma = max(1, int(round(10 * r))), 3 * r
        for t in idx:
            out.append(_motion_blur(src, radius, sigma, (t - 30) * 4.0))
    elif name == "zoom_blur":
        acc, want = src.clone(), set(idx)
        cache = {0: src.clone()} if 0 in want else {}
        for j in range(1, max(idx) + 1):
            acc = acc + _zoom_about_centre(src, 1 + 0.004 * j)
            if j in want:
                cache[j] = acc / (j + 1)
        out = [cache[t] for t in idx]
    elif name == "snow":
        layers = torch.stack([_snow_layer(s, H, W) for s in seeds_l]).to(dev)  # [B, 1, H, W]
        base = 0.85 * src + 0.15 * torch.maximum(src, _gray(src) * 1.5 + 0.5)
        radius, sigma = max(1, int(round(14 * r))), 4 * r
        for t in idx:
            moving = _motion_blur(layers, radius, sigma, t * 4.0 - 150)
            out.append(base + moving + torch.rot90(moving, 2, dims=(-2, -1)))
    elif name == "brightness":
        for t in idx:
            out.append(_brightness(src, (t - 15) * 2 / 100.0))
    elif name == "translate":
        for t in idx:
            out.append(_warp(src, _affine_inverse(H, W, tx=float(round((t - 20) * r))), mode="nearest"))
    elif name == "rotate":
        for t in idx:
            out.append(_warp(src, _affine_inverse(H, W, angle=float(t - 15))))
    elif name == "tilt":
        for t in idx:
            out.append(_warp(src, _tilt_inverse(H, W, float(t - 15))))
    elif name == "scale":
        for t in idx:
            out.append(_warp(src, _affine_inverse(H, W, scale=(t * 2.5 + 40) / 100.0)))
    elif name == "shear":
        for t in idx:
            out.append(_warp(src, _affine_inverse(H, W, shear=float(t - 15))))
    elif name == "gaussian_blur":
        for t in idx:
            out.append(_gaussian_blur(src, (0.25 + 0.035 * t) * r))
    return out


def perturbation_sequence(x: torch.Tensor, name: str, seeds: torch.Tensor, difficulty: int = 1,
                          crop: tuple[int, int] | None = None, frames: Sequence[int] | None = None,
                          quantize: bool = True) -> torch.Tensor:
    """The ImageNet-P sequence of every image in ``x`` [B, 3, H, W] in [0, 1].

    Returns ``[B, T, 3, h, w]`` (``T = len(frames)``, default all ``n_frames(name)`` frames;
    ``(h, w) = crop`` or ``(H, W)``). ``seeds`` gives one seed per sample (noise draws, snow layer).
    """
    _check(name, difficulty)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{name}: expected a batch [B, 3, H, W], got shape {tuple(x.shape)}")
    if seeds.shape[0] != x.shape[0]:
        raise ValueError(f"{name}: {seeds.shape[0]} seeds for a batch of {x.shape[0]}")
    idx = _frames_arg(name, frames)
    seeds_l = [int(s) for s in seeds.detach().cpu().tolist()]
    geometric = name in ("translate", "rotate", "tilt", "scale", "shear", "zoom_blur")
    src = x if geometric else centre_crop(x, crop)
    out_w = crop[1] if crop is not None else x.shape[-1]
    r = out_w / REF_SIZE  # pixel parameters are defined for 224-px frames
    dev = x.device

    if name in NOISE_PERTURBATIONS:
        out = _noise_frames(name, src, idx, seeds_l, difficulty, dev)
    else:
        out = _frames(name, src, idx, seeds_l, r, dev)
    seq = torch.stack([o.to(x.dtype) for o in out], dim=1)
    if geometric:
        seq = centre_crop(seq, crop)
    seq = seq.clamp(0, 1)
    if quantize:
        seq = torch.floor(seq * 255 + 1e-4) / 255
    return seq.contiguous()


class PerturbationSequence:
    """A named ImageNet-P sequence generator: ``seq(x, seeds) -> [B, T, 3, h, w]``."""

    def __init__(self, name: str, difficulty: int = 1, crop: tuple[int, int] | None = None, quantize: bool = True):
        _check(name, difficulty)
        self.name, self.difficulty, self.crop, self.quantize = name, difficulty, crop, quantize

    @property
    def n_frames(self) -> int:
        return n_frames(self.name)

    @property
    def noise(self) -> bool:
        return is_noise(self.name)

    def params(self) -> dict:
        return {"perturbation": self.name, "difficulty": self.difficulty, "n_frames": self.n_frames,
                "crop": list(self.crop) if self.crop else None, "quantize": self.quantize,
                "comparison": "first-frame" if self.noise else "consecutive"}

    def spec(self) -> dict:
        return {"name": "imagenet-p", **self.params()}

    def __call__(self, x: torch.Tensor, seeds: torch.Tensor, frames: Sequence[int] | None = None) -> torch.Tensor:
        return perturbation_sequence(x, self.name, seeds, self.difficulty, self.crop, frames, self.quantize)


class PerturbationFrame(Shift):
    """One frame of an ImageNet-P sequence as a plain ``Shift`` (same shape in and out).

    Lets an engine that only knows shifts evaluate a sequence frame by frame (one unit per frame)
    and compute the metrics afterwards from the stored per-frame predictions.
    """

    def __init__(self, perturbation: str, frame: int, difficulty: int = 1, quantize: bool = True):
        _check(perturbation, difficulty)
        _frames_arg(perturbation, [frame])
        self.perturbation, self.frame, self.difficulty, self.quantize = perturbation, int(frame), difficulty, quantize
        self.name = f"imagenet-p/{perturbation}"

    def params(self) -> dict:
        return {"perturbation": self.perturbation, "frame": self.frame, "difficulty": self.difficulty,
                "quantize": self.quantize}

    def apply(self, x: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        return perturbation_sequence(x, self.perturbation, seeds, self.difficulty, None, [self.frame], self.quantize)[:, 0]
