"""Spatter (extra corruption): water droplets (severities 1-3) or mud (severities 4-5).

Parameters follow Hendrycks & Dietterich (2019) as packaged in ``imagecorruptions`` 1.1.5.

Mud (4-5) is an exact port. Water (1-3) chains OpenCV operations; ours are batched torch
equivalents: ``Canny(50, 150)`` is re-implemented with OpenCV's integer rules (same edges as
OpenCV, tested); ``distanceTransform(DIST_L2, 5)`` (a 5x5 chamfer approximation) is replaced by
the exact Euclidean distance, truncated at 20 like the reference; box blurs, ``equalizeHist``, the
saturating emboss filter and the uint8 roundings are reproduced.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from roz.shifts.corruptions._common import draw, filter2d, gaussian_blur, pad2d

SPATTER = (
    (0.65, 0.3, 4, 0.69, 0.6, 0),
    (0.65, 0.3, 3, 0.68, 0.6, 0),
    (0.65, 0.3, 2, 0.68, 0.5, 0),
    (0.65, 0.3, 1, 0.65, 1.5, 1),
    (0.67, 0.4, 1, 0.65, 1.5, 1),
)  # mean, std, blur sigma, threshold, mix strength / mud blur sigma, mud?
WATER = (175 / 255, 238 / 255, 238 / 255)
MUD = (63 / 255, 42 / 255, 20 / 255)
_BOX3 = torch.full((3, 3), 1 / 9)
_EMBOSS = torch.tensor([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])


def _distance_to(edges: torch.Tensor, cap: int = 20) -> torch.Tensor:
    """Euclidean distance to the nearest True pixel of ``edges`` [B, 1, H, W], capped at ``cap``."""
    big = torch.tensor(float(4 * cap * cap), device=edges.device)
    d = torch.where(edges, torch.zeros((), device=edges.device), big)
    H, W = d.shape[-2:]
    p = F.pad(d, (cap, cap, 0, 0), value=float(big))
    row = d.clone()
    for k in range(1, cap + 1):
        row = torch.minimum(row, torch.minimum(p[..., cap + k:cap + k + W], p[..., cap - k:cap - k + W]) + k * k)
    p = F.pad(row, (0, 0, cap, cap), value=float(big))
    out = row.clone()
    for k in range(1, cap + 1):
        out = torch.minimum(out, torch.minimum(p[..., cap + k:cap + k + H, :], p[..., cap - k:cap - k + H, :]) + k * k)
    return out.sqrt().clamp(max=float(cap))


_TG22 = int(0.4142135623730950488016887242097 * (1 << 15) + 0.5)  # OpenCV's tan(22.5 deg) << 15


def canny(img: torch.Tensor, low: float = 50, high: float = 150) -> torch.Tensor:
    """OpenCV ``Canny(img, low, high)`` (aperture 3, L1 gradient) on integer-valued float
    [B, 1, H, W] in 0..255; returns a bool edge map.

    Why by hand: no torch library has Canny; this follows OpenCV's integer rules so the edges are
    OpenCV's: 3x3 Sobel with replicated borders, ``|dx| + |dy|``, non-maximum suppression with the
    direction quantised by ``tan(22.5)`` in fixed point and OpenCV's strict / non-strict
    comparisons (zero magnitude outside the image), then hysteresis over 8-neighbours.
    """
    p = pad2d(img, 1, 1, 1, 1, "nearest")
    dx = (p[..., :-2, 2:] - p[..., :-2, :-2]) + 2 * (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]) \
        + (p[..., 2:, 2:] - p[..., 2:, :-2])
    dy = (p[..., 2:, :-2] - p[..., :-2, :-2]) + 2 * (p[..., 2:, 1:-1] - p[..., :-2, 1:-1]) \
        + (p[..., 2:, 2:] - p[..., :-2, 2:])
    dxi, dyi = dx.to(torch.int64), dy.to(torch.int64)
    mag = dxi.abs() + dyi.abs()
    H, W = img.shape[-2:]
    mp = F.pad(mag, (1, 1, 1, 1))  # zero magnitude outside the image

    def at(oy: int, ox: int) -> torch.Tensor:
        return mp[..., 1 + oy:1 + oy + H, 1 + ox:1 + ox + W]

    ax, ay = dxi.abs(), dyi.abs() << 15
    tg22x = ax * _TG22
    tg67x = tg22x + (ax << 16)
    horiz = ay < tg22x
    vert = ay > tg67x
    s_neg = (dxi ^ dyi) < 0  # s = -1: neighbours (-1, +1) and (+1, -1); else (-1, -1) and (+1, +1)
    keep_h = (mag > at(0, -1)) & (mag >= at(0, 1))
    keep_v = (mag > at(-1, 0)) & (mag >= at(1, 0))
    keep_d = torch.where(s_neg, (mag > at(-1, 1)) & (mag > at(1, -1)), (mag > at(-1, -1)) & (mag > at(1, 1)))
    nms = torch.where(horiz, keep_h, torch.where(vert, keep_v, keep_d))
    cand = (mag > int(low)) & nms
    edges = cand & (mag > int(high))
    while True:  # hysteresis: grow strong edges through 8-connected candidates
        grown = cand & (F.max_pool2d(edges.float(), 3, stride=1, padding=1) > 0)
        if torch.equal(grown, edges):
            return edges
        edges = grown


def _equalize_hist(u8: torch.Tensor) -> torch.Tensor:
    """OpenCV ``equalizeHist`` per sample on integer-valued float [B, 1, H, W] in 0..255."""
    B = u8.shape[0]
    flat = u8.reshape(B, -1).long()
    hist = torch.zeros(B, 256, device=u8.device).scatter_add_(1, flat, torch.ones_like(flat, dtype=torch.float32))
    cdf = hist.cumsum(1)
    total = flat.shape[1]
    first = (hist > 0).float().argmax(1, keepdim=True)
    h0 = hist.gather(1, first)
    scale = 255.0 / (total - h0).clamp_min(1)
    lut = torch.round((cdf - h0) * scale).clamp(0, 255)
    lut = torch.where(h0 == total, first.float().expand_as(lut), lut)
    return lut.gather(1, flat).reshape(u8.shape)


def spatter(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    mean, std, sigma, thresh, strength, mud = SPATTER[severity - 1]
    H, W = x.shape[-2:]
    field = draw(seeds, "spatter", lambda g: torch.randn(1, H, W, generator=g), x.device)
    liquid = gaussian_blur(field * std + mean, float(sigma), "nearest")
    liquid = torch.where(liquid < thresh, torch.zeros_like(liquid), liquid)
    if mud:
        m = gaussian_blur((liquid > thresh).to(x.dtype), float(strength), "nearest")
        m = torch.where(m < 0.8, torch.zeros_like(m), m)
        color = torch.tensor(MUD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return x * (1 - m) + color * m
    l8 = torch.floor(liquid.clamp(0, 1) * 255)
    dist = _distance_to(canny(l8))
    dist = torch.floor(filter2d(dist, _BOX3, "reflect101"))
    dist = _equalize_hist(dist)
    dist = filter2d(dist, _EMBOSS, "reflect101").round().clamp(0, 255)
    dist = filter2d(dist, _BOX3, "reflect101").round()
    m = l8 * dist
    m = m / m.amax(dim=(2, 3), keepdim=True).clamp_min(1e-12) * strength
    color = torch.tensor(WATER, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return x + m * color
