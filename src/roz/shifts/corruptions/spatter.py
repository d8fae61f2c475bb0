"""Spatter (extra corruption): water droplets (severities 1-3) or mud (severities 4-5).

Parameters follow Hendrycks & Dietterich (2019) as packaged in ``imagecorruptions`` 1.1.5.

Mud (4-5) is an exact port. Water (1-3) chains OpenCV operations; ours are batched torch
equivalents: ``Canny`` is replaced by the inner boundary of the thresholded liquid mask (the mask
jumps from 0 to >= 0.65 * 255, far above Canny's thresholds 50/150, while the smooth interior stays
far below them, so Canny finds exactly these contours up to which side of the step its
non-maximum suppression keeps); ``distanceTransform(DIST_L2, 5)`` (a 5x5 chamfer approximation)
is replaced by the exact Euclidean distance, truncated at 20 like the reference; box blurs,
``equalizeHist``, the saturating emboss filter and the uint8 roundings are reproduced.
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
    inside = l8 > 0
    outside_near = F.max_pool2d(pad2d((~inside).float(), 1, 1, 1, 1, "nearest"), 3, stride=1) > 0
    edges = inside & outside_near
    dist = _distance_to(edges)
    dist = torch.floor(filter2d(dist, _BOX3, "reflect101"))
    dist = _equalize_hist(dist)
    dist = filter2d(dist, _EMBOSS, "reflect101").round().clamp(0, 255)
    dist = filter2d(dist, _BOX3, "reflect101").round()
    m = l8 * dist
    m = m / m.amax(dim=(2, 3), keepdim=True).clamp_min(1e-12) * strength
    color = torch.tensor(WATER, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return x + m * color
