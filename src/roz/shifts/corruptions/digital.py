"""Digital corruptions: brightness, contrast, elastic transform, pixelate, JPEG, (extra) saturate.

Parameters follow Hendrycks & Dietterich (2019) as packaged in ``imagecorruptions`` 1.1.5 (whose
``elastic_transform`` is the smooth random displacement field without the affine part of the
original ImageNet-C code; we follow the package, which is what the fidelity bench compares to).

brightness and saturate are done in closed form instead of an RGB->HSV->RGB round trip: with hue
fixed, every RGB channel is ``V * (1 - S * a)`` with ``a`` depending on hue only, so changing V
scales RGB by ``V'/V`` and changing S moves each channel to ``V - S'/S * (V - channel)``. Gray
pixels have hue 0 (red) in scikit-image's convention, so saturate turns them reddish when it
*adds* saturation (severities 4-5) -- the reference does the same.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from roz.shifts.corruptions._common import draw, gaussian_blur, map_samples

BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)  # added to HSV value
CONTRAST = (0.4, 0.3, 0.2, 0.1, 0.05)  # factor on the deviation from the per-channel mean
SATURATE = ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))  # S -> S * a + b
ELASTIC = (250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12)  # alpha
PIXELATE = (0.6, 0.5, 0.4, 0.3, 0.25)  # downscale factor
JPEG = (25, 18, 15, 10, 7)  # quality


def brightness(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    v = x.amax(dim=1, keepdim=True)
    v2 = (v + BRIGHTNESS[severity - 1]).clamp(max=1.0)
    return torch.where(v > 0, x * (v2 / v.clamp_min(1e-12)), v2)


def contrast(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    m = x.mean(dim=(2, 3), keepdim=True)
    return (x - m) * CONTRAST[severity - 1] + m


def saturate(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    a, b = SATURATE[severity - 1]
    v = x.amax(dim=1, keepdim=True)
    delta = v - x.amin(dim=1, keepdim=True)
    s = torch.where(v > 0, delta / v.clamp_min(1e-12), torch.zeros_like(v))
    s2 = (s * a + b).clamp(0, 1)
    gray_a = torch.tensor([0.0, 1.0, 1.0], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    frac = torch.where(delta > 0, (v - x) / delta.clamp_min(1e-12), gray_a)
    return v * (1 - s2 * frac)


def _bilinear_reflect(img: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor) -> torch.Tensor:
    """Sample ``img`` [B, C, H, W] at float coords [B, H, W] like scipy ``map_coordinates(order=1,
    mode='reflect')`` (half-sample symmetric extension)."""
    B, C, H, W = img.shape
    y0, x0 = torch.floor(cy), torch.floor(cx)
    wy, wx = (cy - y0)[:, None], (cx - x0)[:, None]
    y0, x0 = y0.long(), x0.long()

    def refl(i: torch.Tensor, n: int) -> torch.Tensor:
        i = i % (2 * n)
        return torch.where(i >= n, 2 * n - 1 - i, i)

    ya, yb = refl(y0, H), refl(y0 + 1, H)
    xa, xb = refl(x0, W), refl(x0 + 1, W)
    flat = img.reshape(B, C, H * W)

    def g(yi: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        idx = (yi * W + xi).reshape(B, 1, H * W).expand(B, C, H * W)
        return torch.gather(flat, 2, idx).reshape(B, C, H, W)

    top = g(ya, xa) * (1 - wx) + g(ya, xb) * wx
    bot = g(yb, xa) * (1 - wx) + g(yb, xb) * wx
    return top * (1 - wy) + bot * wy


def elastic_transform(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    B, _, H, W = x.shape
    alpha = ELASTIC[severity - 1]
    max_d = H * 0.005
    u = draw(seeds, "elastic_transform",
             lambda g: torch.rand((2, H, W), generator=g, dtype=torch.float64), x.device)
    field = ((2 * u - 1) * max_d).float()
    d = gaussian_blur(field, (H * 0.01, W * 0.01), mode="symmetric", truncate=3.0) * alpha
    yy = torch.arange(H, device=x.device, dtype=x.dtype).view(1, H, 1)
    xx = torch.arange(W, device=x.device, dtype=x.dtype).view(1, 1, W)
    return _bilinear_reflect(x, yy + d[:, 1], xx + d[:, 0])


@lru_cache(maxsize=None)
def _pil_box_windows(n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per output pixel, the [start, end) input range PIL's BOX filter averages (Pillow's
    ``precompute_coeffs``: centre ``(o + 0.5) * scale``, support ``scale / 2``, box test
    ``-0.5 < t <= 0.5`` on input pixel centres)."""
    scale = n_in / n_out
    fs = max(scale, 1.0)
    support = 0.5 * fs
    starts, ends = [], []
    for o in range(n_out):
        center = (o + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        inside = [i for i in range(lo, hi) if -0.5 < (i - center + 0.5) / fs <= 0.5]
        if not inside:  # degenerate; PIL leaves zero weights -- keep the nearest pixel
            inside = [min(int(center), n_in - 1)]
        starts.append(inside[0])
        ends.append(inside[-1] + 1)
    return torch.tensor(starts), torch.tensor(ends)


def _box_down(x: torch.Tensor, dim: int, n_out: int) -> torch.Tensor:
    n_in = x.shape[dim]
    s, e = _pil_box_windows(n_in, n_out)
    s, e = s.to(x.device), e.to(x.device)
    if bool(((e - s) == (e - s)[0]).all()) and bool((s == torch.arange(n_out, device=x.device) * (e - s)[0]).all()):
        k = int(e[0] - s[0])  # equal, contiguous windows: a reshape-mean
        shape = list(x.shape)
        shape[dim:dim + 1] = [n_out, k]
        return x.narrow(dim, 0, n_out * k).reshape(shape).mean(dim + 1)
    cs = torch.cumsum(x, dim=dim)
    cs = torch.cat([torch.zeros_like(cs.narrow(dim, 0, 1)), cs], dim=dim)
    count = (e - s).to(x.dtype)
    view = [1] * x.ndim
    view[dim] = n_out
    return (cs.index_select(dim, e) - cs.index_select(dim, s)) / count.view(view)


@lru_cache(maxsize=None)
def _nearest_index(n_out: int, n_in: int) -> torch.Tensor:
    """PIL NEAREST: output pixel ``o`` reads input ``floor((o + 0.5) * n_in / n_out)``."""
    return torch.tensor([min(int((o + 0.5) * n_in / n_out), n_in - 1) for o in range(n_out)])


def pixelate(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    c = PIXELATE[severity - 1]
    H, W = x.shape[-2:]
    h, w = max(int(H * c), 1), max(int(W * c), 1)
    small = _box_down(_box_down(x, 3, w), 2, h)
    iy = _nearest_index(H, h).to(x.device)
    ix = _nearest_index(W, w).to(x.device)
    return small.index_select(2, iy).index_select(3, ix)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round_().to(torch.uint8)


def jpeg_roundtrip(x: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode and decode every image with libjpeg (torchvision) at ``quality``; uint8 in and out."""
    from torchvision.io import decode_jpeg, encode_jpeg

    u8 = x.detach().cpu()
    out = map_samples(lambda i: decode_jpeg(encode_jpeg(u8[i], quality=quality)), u8.shape[0])
    return torch.stack(out).to(x.device)


def jpeg_compression(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    return jpeg_roundtrip(to_uint8(x), JPEG[severity - 1]).to(x.dtype) / 255

