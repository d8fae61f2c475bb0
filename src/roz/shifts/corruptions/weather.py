"""Weather corruptions: snow and fog (frost lives in ``frost.py``, spatter in ``spatter.py``).

Parameters follow Hendrycks & Dietterich (2019) as packaged in ``imagecorruptions`` 1.1.5.
Fog's plasma fractal (diamond-square) is computed for the whole batch at once; each sample's
random numbers come from its own generator in a fixed order, so the fractal is per-sample
deterministic (it is not bit-identical to numpy's stream, only identically distributed).
"""

from __future__ import annotations

import torch

from roz.shifts.corruptions._common import clipped_zoom, draw, draw_many, motion_blur_batch, rgb_to_gray

# mean, std of the snow field, zoom, threshold, motion radius, motion sigma, image weight
SNOW = (
    (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
    (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
    (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
    (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
    (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
)
FOG = ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))  # fog strength, wibble decay


def next_power_of_2(n: int) -> int:
    return 1 if n == 0 else 2 ** (n - 1).bit_length()


def plasma_fractal(uniforms: torch.Tensor, mapsize: int, wibbledecay: float) -> torch.Tensor:
    """Batched diamond-square heightmap in [0, 1] (the reference's ``plasma_fractal``).

    ``uniforms`` [B, mapsize**2 - 1] are U(0, 1) draws, consumed in the reference's order (per
    level: squares, then the two diamond sets). The reference's perturbation is
    ``wibble * U(-wibble, wibble)`` (amplitude ``wibble**2``), kept as published.
    """
    B = uniforms.shape[0]
    m = mapsize
    a = torch.zeros(B, m, m, dtype=torch.float32, device=uniforms.device)
    step, wibble, used = m, 100.0, 0

    def take(shape: tuple[int, int]) -> torch.Tensor:
        nonlocal used
        n = shape[0] * shape[1]
        u = uniforms[:, used:used + n].reshape(B, *shape)
        used += n
        return wibble * (wibble * (2 * u - 1))

    while step >= 2:
        h = step // 2
        corner = a[:, 0:m:step, 0:m:step]
        sq = corner + torch.roll(corner, -1, dims=1)
        sq = sq + torch.roll(sq, -1, dims=2)
        a[:, h:m:step, h:m:step] = sq / 4 + take(sq.shape[1:])
        dr = a[:, h:m:step, h:m:step]
        ul = a[:, 0:m:step, 0:m:step]
        lt = dr + torch.roll(dr, 1, dims=1) + ul + torch.roll(ul, -1, dims=2)
        a[:, 0:m:step, h:m:step] = lt / 4 + take(lt.shape[1:])
        tt = dr + torch.roll(dr, 1, dims=2) + ul + torch.roll(ul, -1, dims=1)
        a[:, h:m:step, 0:m:step] = tt / 4 + take(tt.shape[1:])
        step //= 2
        wibble /= wibbledecay
    a = a - a.amin(dim=(1, 2), keepdim=True)
    return a / a.amax(dim=(1, 2), keepdim=True)


def fog(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    strength, decay = FOG[severity - 1]
    H, W = x.shape[-2:]
    m = next_power_of_2(max(H, W, 3))
    u = draw(seeds, "fog", lambda g: torch.rand(m * m - 1, generator=g), x.device)
    plasma = plasma_fractal(u, m, decay)[:, None, :H, :W]
    max_val = x.amax(dim=(1, 2, 3), keepdim=True)
    return (x + strength * plasma) * max_val / (max_val + strength)


def snow(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    mean, std, zoom, thresh, radius, sigma, keep = SNOW[severity - 1]
    H, W = x.shape[-2:]
    field, angle = draw_many(
        seeds, "snow",
        lambda g: (torch.randn(1, H, W, generator=g), torch.rand(1, generator=g, dtype=torch.float64)),
        x.device)
    layer = clipped_zoom(field * std + mean, zoom)
    layer = torch.where(layer < thresh, torch.zeros_like(layer), layer).clamp(0, 1)
    angles = (angle[:, 0].cpu() * 90.0 - 135.0).tolist()
    layer = motion_blur_batch(layer, radius, sigma, angles)
    layer = torch.round(layer * 255) / 255
    layer = layer[..., :H, :W]
    x = keep * x + (1 - keep) * torch.maximum(x, rgb_to_gray(x) * 1.5 + 0.5)
    return x + layer + torch.flip(layer, dims=(-2, -1))
