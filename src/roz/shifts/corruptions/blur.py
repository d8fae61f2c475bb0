"""Blur corruptions: defocus, glass, motion, zoom and (extra) gaussian blur.

Parameters follow Hendrycks & Dietterich (2019) as packaged in ``imagecorruptions`` 1.1.5.

glass_blur: the reference blurs, then for every interior pixel, in descending raster order,
executes a tuple "swap" of two numpy/numba views, which -- because the views alias -- actually
*copies* the random neighbour into the pixel and leaves the neighbour unchanged. We implement
that (the published behaviour) exactly but in parallel: a pixel that copies from a neighbour
later in raster order (already overwritten in this pass) reads that neighbour's new value, so
reads form chains that are resolved by pointer jumping over the whole batch. The random
offsets come from torch instead of numba's generator, so outputs match in distribution only.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from roz.shifts.corruptions._common import (
    clipped_zoom,
    draw,
    fill,
    filter2d,
    gaussian_blur as _gaussian,
    motion_blur_batch,
    pad2d,
)

DEFOCUS = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))  # disk radius, anti-alias sigma
GLASS = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))  # sigma, max delta, passes
MOTION = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))  # radius, sigma
ZOOM = tuple(
    tuple(float(z) for z in np.arange(1, stop, step))
    for stop, step in ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03))
)
GAUSSIAN_BLUR = (1, 2, 3, 4, 6)  # sigma


@lru_cache(maxsize=None)
def disk_kernel(radius: int, alias_blur: float) -> torch.Tensor:
    """The reference ``disk``: a normalised aliased disk (at least 17x17), then a 3x3 (5x5 for
    radius > 8) Gaussian of std ``alias_blur`` with OpenCV's reflect-101 border."""
    half = 8 if radius <= 8 else radius
    ks = 3 if radius <= 8 else 5
    t = torch.arange(-half, half + 1, dtype=torch.float64)
    d = ((t[:, None] ** 2 + t[None, :] ** 2) <= radius**2).double()
    d = d / d.sum()
    g = torch.exp(-((torch.arange(ks, dtype=torch.float64) - (ks - 1) / 2) ** 2) / (2 * alias_blur**2))
    g = g / g.sum()
    p = ks // 2
    dp = pad2d(d[None, None], p, p, p, p, "reflect101")
    out = torch.nn.functional.conv2d(dp, torch.outer(g, g)[None, None])
    return out[0, 0].float()


def defocus_blur(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    r, a = DEFOCUS[severity - 1]
    return filter2d(x, disk_kernel(r, a), "reflect101")


def gaussian_blur(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    return _gaussian(x, float(GAUSSIAN_BLUR[severity - 1]), "nearest")


def motion_blur(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    radius, sigma = MOTION[severity - 1]
    angles = draw(seeds, "motion_blur", lambda g: torch.rand(1, generator=g, dtype=torch.float64),
                  torch.device("cpu"))
    angles = (angles[:, 0] * 90.0 - 45.0).tolist()
    return motion_blur_batch(x, radius, sigma, angles)


def zoom_blur(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    H, W = x.shape[-2:]
    acc = x.clone()  # corrupt() hands the CPU cache-sized chunks, so this stays in cache
    for z in ZOOM[severity - 1]:
        acc += clipped_zoom(x, z)[..., :H, :W]
    return acc.div_(len(ZOOM[severity - 1]) + 1)


def _glass_sources(H: int, W: int, delta: int, offsets: torch.Tensor) -> torch.Tensor:
    """Source index of every pixel after the reference's in-place neighbour copies.

    ``offsets`` [B, passes, nh, nw, 2] holds ``(dx, dy)`` for the visited pixels
    (rows/cols ``delta+1 .. size-delta``); see :func:`_glass_sources_flat`.
    """
    return _glass_sources_flat(H, W, delta, offsets[..., 1] * W + offsets[..., 0])


def _glass_sources_flat(H: int, W: int, delta: int, d: torch.Tensor) -> torch.Tensor:
    """:func:`_glass_sources` with flat offsets ``d = dy * W + dx`` [B, passes, nh, nw] (int64).

    Within a pass the copies run in descending raster order, so ``out[p] = cur[q]`` reads an
    already-updated ``q`` exactly when ``q`` is itself visited and lies later in raster order
    (``d > 0``, as ``|dx| < W``); such reads form chains to later pixels, resolved by pointer
    jumping.
    """
    B, passes, nh, nw = d.shape
    dev = d.device
    n = H * W
    r0 = delta + 1
    p = (torch.arange(r0, r0 + nh, device=dev)[:, None] * W + torch.arange(r0, r0 + nw, device=dev)).expand(B, nh, nw)
    visited = torch.zeros(n, dtype=torch.bool, device=dev)
    visited.view(H, W)[r0:r0 + nh, r0:r0 + nw] = True
    ident = torch.arange(n, device=dev).expand(B, n)
    src = None
    for k in range(passes):
        dk = d[:, k]
        q = p + dk
        chained = (dk > 0) & visited.index_select(0, q.view(-1)).view_as(q)
        target = ident.clone()
        target.view(B, H, W)[:, r0:r0 + nh, r0:r0 + nw] = q  # out[p] = current[target[p]]
        nxt = ident.clone()
        nxt.view(B, H, W)[:, r0:r0 + nh, r0:r0 + nw] = torch.where(chained, q, p)
        while True:  # pointer jumping to the end of each chain (chains only go up in raster order)
            jumped = torch.gather(nxt, 1, nxt)
            if torch.equal(jumped, nxt):
                break
            nxt = jumped
        read = torch.gather(target, 1, nxt)  # the end of a chain reads the previous pass's value
        src = read if src is None else torch.gather(src, 1, read)
    return src


def glass_blur(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    sigma, delta, passes = GLASS[severity - 1]
    B, C, H, W = x.shape
    y = _gaussian(x, sigma, "nearest")
    y = torch.floor(y.clamp(0, 1) * 255) / 255  # the reference stores the first blur as uint8
    nh, nw = max(H - 2 * delta, 0), max(W - 2 * delta, 0)
    if nh and nw:
        u = fill(seeds, "glass_blur", (passes, nh, nw, 2),
                 lambda g, o: torch.rand(o.shape, generator=g, out=o)).to(x.device)
        off = (u * (2 * delta)).floor_().sub_(delta)  # dx, dy uniform on -delta..delta-1
        d = torch.add(off[..., 0], off[..., 1], alpha=W).to(torch.int64)  # flat dy * W + dx (exact)
        idx = _glass_sources_flat(H, W, delta, d)
        y = torch.gather(y.reshape(B, C, H * W), 2, idx[:, None].expand(B, C, H * W)).reshape(B, C, H, W)
    return _gaussian(y, sigma, "nearest")
