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
import torch.nn.functional as F

from roz.shifts.corruptions._common import fill, gaussian_blur

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


def elastic_transform(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    """Smooth random displacement, then bilinear resampling with half-sample symmetric borders.

    ``grid_sample(bilinear, padding_mode="reflection", align_corners=False)`` reflects coordinates
    about -0.5 and size - 0.5 and clamps indices, which is exactly scipy's
    ``map_coordinates(order=1, mode="reflect")`` used by the reference.
    """
    B, _, H, W = x.shape
    alpha = ELASTIC[severity - 1]
    max_d = H * 0.005
    u = fill(seeds, "elastic_transform", (2, H, W), lambda g, o: torch.rand(o.shape, generator=g, out=o))
    field = u.to(x.device).mul_(2 * max_d).sub_(max_d)  # U(-max_d, max_d): dx then dy
    d = gaussian_blur(field, (H * 0.01, W * 0.01), mode="symmetric", truncate=3.0) * alpha
    xx = torch.arange(W, device=x.device, dtype=x.dtype).view(1, 1, W)
    yy = torch.arange(H, device=x.device, dtype=x.dtype).view(1, H, 1)
    gx = (2 * (xx + d[:, 0]) + 1) / W - 1
    gy = (2 * (yy + d[:, 1]) + 1) / H - 1
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


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
    out = cs.index_select(dim, e - 1)
    out.sub_(cs.index_select(dim, (s - 1).clamp_min(0)).mul_((s > 0).to(x.dtype).view(_bcast(x.ndim, dim, n_out))))
    return out.div_((e - s).to(x.dtype).view(_bcast(x.ndim, dim, n_out)))


def _bcast(ndim: int, dim: int, n: int) -> list[int]:
    v = [1] * ndim
    v[dim] = n
    return v


@lru_cache(maxsize=None)
def _nearest_index(n_out: int, n_in: int) -> torch.Tensor:
    """PIL NEAREST: output pixel ``o`` reads input ``floor(0.5 * s + o * s)``, ``s = n_in / n_out``,
    with the position *accumulated* in double precision as Pillow's affine loop does (it decides
    exact ties such as 28.5 * 34 / 57)."""
    scale = n_in / n_out
    out, v = [], 0.5 * scale
    for _ in range(n_out):
        out.append(min(int(v), n_in - 1))
        v += scale
    return torch.tensor(out)


def pixelate(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    """PIL ``resize(BOX)`` to ``int(size * c)`` then ``resize(NEAREST)`` back, bit-exact on 8-bit input.

    Pillow resamples horizontally, then vertically, rounding to uint8 (half up) after each pass;
    we do the same in float (box windows and nearest indices from Pillow's own arithmetic), so
    on images on the 8-bit grid the output equals Pillow's exactly (tested).
    """
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    pixelate_into(x, severity, out)
    return out


def pixelate_into(x: torch.Tensor, severity: int, out: torch.Tensor) -> None:
    """:func:`pixelate` written into ``out`` (``x`` in any memory layout)."""
    c = PIXELATE[severity - 1]
    H, W = x.shape[-2:]
    h, w = max(int(H * c), 1), max(int(W * c), 1)
    pixelate_torch(x, h, w, out=out)


@lru_cache(maxsize=None)
def _box_taps(n_in: int, n_out: int, scale: float) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """PIL BOX windows as taps: for ``j < max window``, the index ``min(start + j, end - 1)`` and
    weight ``scale / size`` where ``start + j < end`` (else 0)."""
    s, e = _pil_box_windows(n_in, n_out)
    size = e - s
    return tuple((torch.minimum(s + j, e - 1), (s + j < e).float() * scale / size.float())
                 for j in range(int(size.max())))


def pixelate_torch(x: torch.Tensor, h: int, w: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """PIL's BOX-down (horizontal, then vertical, uint8 rounding after each) and NEAREST-up, in float.

    Why by hand: no torch resize uses Pillow's box windows and rounding (``interpolate(area)``
    windows overlap differently). Column passes use ``gather`` and row passes ``index_select``,
    the fastest torch gathers along each axis.
    """
    B, C, H, W = x.shape
    dev = x.device
    a = None
    for idx, wgt in _box_taps(W, w, 255.0):  # horizontal pass, in 0..255 units
        g = torch.gather(x, 3, idx.to(dev).view(1, 1, 1, -1).expand(B, C, H, -1))
        a = g.mul_(wgt.to(dev)) if a is None else a.addcmul_(g, wgt.to(dev))
    a.add_(0.5).floor_()  # Pillow rounds half up to uint8
    b = None
    for idx, wgt in _box_taps(H, h, 1.0):  # vertical pass
        g = a.index_select(2, idx.to(dev))
        wv = wgt.to(dev).view(-1, 1)
        b = g.mul_(wv) if b is None else b.addcmul_(g, wv)
    b.add_(0.5).floor_().div_(255)
    # NEAREST-up: columns on the small image (a gather), then rows (whole-row copies, fast)
    wide = torch.gather(b, 3, _nearest_index(W, w).to(dev).view(1, 1, 1, -1).expand(B, C, h, -1))
    iy = _nearest_index(H, h).to(dev)
    return wide.index_select(2, iy) if out is None else torch.index_select(wide, 2, iy, out=out)


def jpeg_roundtrip(x: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode and decode every image [B, 3, H, W] uint8 as JPEG at ``quality``; uint8 out.

    torchvision's codec is libjpeg(-turbo) with libjpeg's defaults -- 4:2:0 chroma subsampling,
    the islow DCT, fancy upsampling -- exactly as Pillow uses it in the reference (outputs are
    byte-identical, tested). It works on interleaved pixels, so channels-last input is fastest
    (other layouts are permuted inside the codec call).
    """
    from torchvision.io import decode_jpeg, encode_jpeg

    src = x.detach().cpu()
    return torch.stack(decode_jpeg(encode_jpeg(list(src), quality=quality))).to(x.device)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float [0, 1] -> uint8, rounding to the nearest level (the 8-bit image the reference sees).

    Via int16: torch's direct float -> uint8 cast is not vectorised on the CPU (4x slower)."""
    return x.mul(255).add_(0.5).clamp_(0, 255).to(torch.int16).to(torch.uint8)


def jpeg_compression(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    out = torch.empty(x.shape, dtype=torch.float32, device=x.device)
    jpeg_compression_into(x, severity, out)
    return out.to(x.dtype)


def jpeg_compression_into(x: torch.Tensor, severity: int, out: torch.Tensor) -> None:
    """:func:`jpeg_compression` written into ``out``. The codec wants interleaved (HWC) pixels and
    permuting uint8 in torch is slow, so the float input is made channels-last first (a no-op
    for channels-last input) and stays so through the uint8 conversion."""
    from torchvision.io import decode_jpeg, encode_jpeg

    xc = x.cpu().contiguous(memory_format=torch.channels_last)
    # per image, so each conversion's temporaries stay in cache
    u8 = [to_uint8(xc[k]) for k in range(xc.shape[0])]
    for k, d in enumerate(decode_jpeg(encode_jpeg(u8, quality=JPEG[severity - 1]))):
        o = out[k]
        o.copy_(d.to(o.device))
        o.div_(255)
