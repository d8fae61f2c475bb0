"""ImageNet-C corruptions as a fast, batched, per-sample-seeded torch engine.

The 15 benchmark corruptions and 4 extra ("validation") corruptions of Hendrycks & Dietterich,
"Benchmarking Neural Network Robustness to Common Corruptions and Perturbations", ICLR 2019
(arXiv:1903.12261), at the published five severities. Severity parameters and algorithms follow
the ``imagecorruptions`` package (Michaelis et al., "Benchmarking Robustness in Object Detection",
2019; the ``imagecorruptions-imaug`` 1.1.5 release), which is the reference the fidelity bench
(``bench/corruption_fidelity.py``) and the tests compare against. No reference code is copied;
everything is re-implemented with batched torch ops (CPU or GPU).

Contract (``roz.shifts.base.Shift``): ``x`` float32 [B, 3, H, W] in [0, 1], any size (>= 32 px
recommended, like the reference), one int64 seed per sample. The output has the same shape,
dtype, device and range. Random quantities are drawn per sample on the CPU from a generator
seeded by ``(seed, corruption name)`` -- so a sample is corrupted identically in any batch and
on any device, and the same seed gives the same noise pattern at every severity.

Documented approximations (details in each module and ``docs/corruptions.md``):

* glass_blur -- the reference's sequential in-place loop (whose aliased tuple "swap" really
  copies a random neighbour into each pixel) is computed exactly, in parallel, by pointer jumping
  over the chains of reads; only the random stream differs.
* frost -- the frost photographs are read from the installed ``imagecorruptions`` package at run
  time (never shipped by ROZ; missing -> RozError); synthetic textures only by the explicit
  option ``frost_textures="procedural"``, recorded in params().
* spatter (water, severities 1-3) -- OpenCV's chamfer distance transform is replaced by the
  exact Euclidean distance (Canny is ported exactly).
* Random streams differ from numpy's, so outputs match the reference in distribution, not
  pixel for pixel; the deterministic corruptions (brightness, contrast, saturate, gaussian_blur,
  defocus_blur, zoom_blur) match to float rounding, and pixelate and jpeg_compression are
  bit-identical to the reference on 8-bit input (Pillow's resize arithmetic ported to torch;
  libjpeg through torchvision). shot_noise draws exact Poisson variates at 8-bit rates.

``jpeg_roundtrip=True`` additionally quantises the result to uint8 (truncating, like
``np.uint8`` in the reference) and round-trips it through JPEG at quality 85, as the released
ImageNet-C files were saved.

On the CPU, batches are processed in cache-sized chunks (``CPU_CHUNK_VALUES``), or a few images
per thread for ``THREADED_ON_CPU``; on other devices in one go. Neither the chunking nor the input's
memory layout changes results (each sample depends only on its pixels and seed).
"""

from __future__ import annotations

import functools
from typing import Callable

import torch

from roz.datasets.release_names import CORRUPTIONS, EXTRA_CORRUPTIONS, SEVERITIES
from roz.errors import RozError
from roz.shifts.base import Shift
from roz.shifts.corruptions import blur, digital, noise, spatter as _spatter, weather
from roz.shifts.corruptions._common import run_chunks_threaded
from roz.shifts.corruptions.frost import check_textures, frost, texture_label

IMPLEMENTATION_VERSION = "roz-imagenet-c-2"
RELEASE_JPEG_QUALITY = 85
CPU_CHUNK_VALUES = 4 * 3 * 224 * 224  # on CPU, corrupt ~4 ImageNet-sized images at a time (cache)
CPU_THREAD_CHUNK_BY_NAME = {"fog": 8}  # fog's fractal is cheaper in bigger batches
CPU_THREAD_CHUNK = 4  # images per thread for the corruptions in THREADED_ON_CPU


# On the CPU these run a few images per thread with single-threaded torch ops (measured faster,
# bench/corruption_speed.py); the rest run batched with torch's intra-op threads.
THREADED_ON_CPU = frozenset((
    "gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "glass_blur", "gaussian_blur",
    "elastic_transform", "spatter", "jpeg_compression", "motion_blur", "snow", "fog"))

_FUNCS: dict[str, Callable[[torch.Tensor, int, torch.Tensor], torch.Tensor]] = {
    "gaussian_noise": noise.gaussian_noise,
    "shot_noise": noise.shot_noise,
    "impulse_noise": noise.impulse_noise,
    "speckle_noise": noise.speckle_noise,
    "defocus_blur": blur.defocus_blur,
    "glass_blur": blur.glass_blur,
    "motion_blur": blur.motion_blur,
    "zoom_blur": blur.zoom_blur,
    "gaussian_blur": blur.gaussian_blur,
    "snow": weather.snow,
    "frost": frost,
    "fog": weather.fog,
    "spatter": _spatter.spatter,
    "brightness": digital.brightness,
    "contrast": digital.contrast,
    "saturate": digital.saturate,
    "elastic_transform": digital.elastic_transform,
    "pixelate": digital.pixelate,
    "jpeg_compression": digital.jpeg_compression,
}


# Deterministic corruptions that take any memory layout and write [0, 1] values straight into
# the output (``fn(x, severity, out)``): on the CPU they are memory-bound, so every pass counts.
_WRITES_OUT: dict[str, Callable[[torch.Tensor, int, torch.Tensor], None]] = {
    "pixelate": digital.pixelate_into,
    "jpeg_compression": digital.jpeg_compression_into,
}


def check(name: str, severity: int) -> None:
    """Raise ``RozError`` unless ``name`` is a known corruption and ``severity`` is in 1..5."""
    if name not in _FUNCS:
        raise RozError(
            f"unknown corruption {name!r}",
            hint="valid corruptions: " + ", ".join(CORRUPTIONS)
            + "; extra: " + ", ".join(EXTRA_CORRUPTIONS),
        )
    if isinstance(severity, bool) or not isinstance(severity, int) or severity not in SEVERITIES:
        raise RozError(f"corruption severity {severity!r} is out of range for {name!r}",
                       hint="severity must be an integer in 1, 2, 3, 4, 5")


def corrupt(x: torch.Tensor, name: str, severity: int, seeds: torch.Tensor,
            jpeg_roundtrip: bool = False, out: torch.Tensor | None = None,
            frost_textures: str = "reference") -> torch.Tensor:
    """Apply corruption ``name`` at ``severity`` (1..5) to a batch ``x`` [B, 3, H, W] in [0, 1].

    ``seeds`` holds one integer per sample; the result depends on a sample's pixels and seed only.
    ``out`` (optional): a contiguous float32 tensor of ``x``'s shape and device to write the result
    into and return. Reusing one across calls saves the operating system's first-touch cost of a
    fresh output (on a 2-core VM ~8 ms per 64 ImageNet-sized images, as much as a cheap
    corruption itself); it must not alias ``x``. ``frost_textures`` (frost only): ``"reference"``
    (the ImageNet-C photographs; RozError if missing) or the explicit opt-in ``"procedural"``.
    """
    check(name, severity)
    if x.ndim != 4 or x.shape[1] != 3:
        raise RozError(f"corrupt: expected a batch [B, 3, H, W], got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise RozError(f"corrupt: expected a float tensor in [0, 1], got {x.dtype}",
                       hint="convert uint8 images with x.float() / 255")
    seeds = torch.as_tensor(seeds, dtype=torch.int64).reshape(-1)
    if seeds.shape[0] != x.shape[0]:
        raise RozError(f"corrupt: {seeds.shape[0]} seeds for a batch of {x.shape[0]}")
    if x.shape[0] == 0:
        return x.clone()
    dtype = x.dtype
    fn = _FUNCS[name]
    if name == "frost":  # the texture source is an explicit option, never a silent fallback
        check_textures(frost_textures)
        fn = functools.partial(frost, textures=frost_textures)
    with torch.no_grad():
        B, _, H, W = x.shape
        if out is None:
            y = torch.empty(x.shape, dtype=torch.float32, device=x.device)  # contiguous NCHW
        else:
            if (out.shape != x.shape or out.dtype != torch.float32 or out.device != x.device
                    or not out.is_contiguous()):
                raise RozError(f"corrupt: out must be a contiguous float32 tensor of shape "
                               f"{tuple(x.shape)} on {x.device}, got {out.dtype} {tuple(out.shape)} on {out.device}")
            if out.data_ptr() == x.data_ptr():
                raise RozError("corrupt: out must not be the input tensor", hint="pass a separate buffer")
            y = out

        into = _WRITES_OUT.get(name)

        def work(i: int, j: int) -> None:  # a sample's result never depends on its chunk
            if into is not None:  # any layout in, values already in [0, 1]: no extra passes
                into(x[i:j].float(), severity, y[i:j])
                return
            xi = x[i:j].float().contiguous()  # any input layout (e.g. channels-last) -> NCHW
            torch.clamp(fn(xi, severity, seeds[i:j]), 0, 1, out=y[i:j])

        if x.device.type != "cpu":
            work(0, B)
        elif name in THREADED_ON_CPU:
            run_chunks_threaded(work, B, CPU_THREAD_CHUNK_BY_NAME.get(name, CPU_THREAD_CHUNK))
        else:
            n = max(1, CPU_CHUNK_VALUES // (3 * H * W))
            for i in range(0, B, n):
                work(i, min(i + n, B))
        if jpeg_roundtrip:
            # np.uint8() truncates, as in the reference; channels-last is the codec's own layout
            u8 = torch.floor(y.contiguous(memory_format=torch.channels_last) * 255).to(torch.int16).to(torch.uint8)
            rt = digital.jpeg_roundtrip(u8, RELEASE_JPEG_QUALITY)
            y.copy_(rt).div_(255)
    return y if out is not None else y.to(dtype)


class Corruption(Shift):
    """An ImageNet-C corruption as a ``Shift``: ``Corruption("fog", 3)``."""

    def __init__(self, name: str, severity: int, jpeg_roundtrip: bool = False,
                 frost_textures: str = "reference"):
        check(name, severity)
        if name == "frost":
            check_textures(frost_textures)  # fail before a run, not in its middle
        self.corruption = name
        self.severity = severity
        self.jpeg_roundtrip = bool(jpeg_roundtrip)
        self.frost_textures = frost_textures
        self.name = f"corruption:{name}:{severity}"

    def params(self) -> dict:
        p = {
            "corruption": self.corruption,
            "severity": self.severity,
            "jpeg_roundtrip": self.jpeg_roundtrip,
            "implementation": IMPLEMENTATION_VERSION,
        }
        if self.corruption == "frost":
            p["frost_textures"] = texture_label(self.frost_textures)
        return p

    def apply(self, x: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        return corrupt(x, self.corruption, self.severity, seeds, jpeg_roundtrip=self.jpeg_roundtrip,
                       frost_textures=self.frost_textures)

    def __repr__(self) -> str:
        return f"Corruption({self.corruption!r}, {self.severity}, jpeg_roundtrip={self.jpeg_roundtrip})"


__all__ = ["CORRUPTIONS", "EXTRA_CORRUPTIONS", "SEVERITIES", "IMPLEMENTATION_VERSION",
           "Corruption", "corrupt", "check"]
