"""Shared building blocks for the batched ImageNet-C corruptions.

Everything here works on float32 tensors ``[N, C, H, W]`` on any device. Padding modes are named
after the library whose border rule they reproduce, because the reference implementation
(``imagecorruptions``, Michaelis et al. 2019, a port of Hendrycks & Dietterich 2019) mixes
scipy, scikit-image, OpenCV and PIL conventions:

* ``"nearest"``   -- repeat the edge pixel (scipy ``nearest``, torch ``replicate``);
* ``"symmetric"`` -- mirror including the edge pixel, ``dcba|abcd|dcba`` (scipy ``reflect``);
* ``"reflect101"`` -- mirror excluding the edge pixel, ``dcb|abcd|cba`` (OpenCV's default border);
* ``"wrap"``      -- periodic.

Randomness: every random quantity is drawn on the CPU from a ``torch.Generator`` seeded from the
sample's own seed and the corruption name, then moved to the input's device. So a sample is
corrupted identically whatever its batch, and identically on CPU and GPU (up to float rounding).
"""

from __future__ import annotations

import hashlib
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------- randomness


def mix_seed(seed: int, salt: str) -> int:
    """A 63-bit generator seed from a sample seed and a salt (the corruption name)."""
    h = hashlib.blake2b(f"{int(seed)}:{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & ((1 << 63) - 1)


def generators(seeds: torch.Tensor, salt: str) -> list[torch.Generator]:
    """One CPU generator per sample, independent of batch composition."""
    out = []
    for s in seeds.detach().cpu().tolist():
        g = torch.Generator()
        g.manual_seed(mix_seed(s, salt))
        out.append(g)
    return out


_POOL: ThreadPoolExecutor | None = None


def _single_threaded_worker(barrier: threading.Barrier) -> None:
    # torch's intra-op thread count is per thread (OpenMP), fixed at a thread's first query from a
    # process-wide default. Set this pool thread to 1 (no nested teams) and fix it now, then wait
    # until every pool thread has done so (see _pool, which restores the process-wide default).
    torch.set_num_threads(1)
    torch.get_num_threads()  # initialises this thread's setting
    barrier.wait()


def _pool(workers: int) -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None or _POOL._max_workers != workers:  # noqa: SLF001
        default = torch.get_num_threads()
        barrier = threading.Barrier(workers + 1)
        _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="roz-corrupt",
                                   initializer=_single_threaded_worker, initargs=(barrier,))
        for _ in range(workers):  # start every thread now (each submit finds none idle)
            _POOL.submit(int)
        barrier.wait()  # all pool threads are set to 1 thread ...
        torch.set_num_threads(default)  # ... so threads created later get the caller's default again
    return _POOL


def map_samples(fn: Callable[[int], object], n: int) -> list:
    """``[fn(0), ..., fn(n-1)]``, spread over ``torch.get_num_threads()`` threads.

    Used for per-sample work that torch cannot batch (seeded draws, codec calls); torch ops
    release the GIL, so this scales with cores. Results are independent of the thread count.
    """
    workers = max(1, torch.get_num_threads())
    if n <= 1 or workers == 1:
        return [fn(i) for i in range(n)]
    return list(_pool(workers).map(fn, range(n)))


def run_chunks_threaded(work: Callable[[int, int], None], n: int, chunk: int) -> None:
    """Call ``work(i, j)`` for the chunks ``[i, j)`` of ``range(n)``, one chunk per pool thread
    at a time (``torch.get_num_threads()`` threads), each running its torch ops single-threaded.

    Why: for per-sample pipelines of many small ops (seeded draws, gathers, small convolutions)
    a few images per core in cache beat splitting every op across cores (fork/join per op, data
    streamed from memory). torch ops release the GIL, so the threads run in parallel.
    """
    workers = max(1, torch.get_num_threads())
    starts = range(0, n, chunk)
    if workers == 1 or len(starts) == 1:
        for i in starts:
            work(i, min(i + chunk, n))
        return
    list(_pool(workers).map(lambda i: work(i, min(i + chunk, n)), starts))


def draw(seeds: torch.Tensor, salt: str, fn: Callable[[torch.Generator], torch.Tensor],
         device: torch.device) -> torch.Tensor:
    """Stack ``fn(generator_i)`` over samples and move the result to ``device``."""
    gens = generators(seeds, salt)
    parts = map_samples(lambda i: fn(gens[i]), len(gens))
    return torch.stack(parts).to(device)


def fill(seeds: torch.Tensor, salt: str, shape: tuple[int, ...],
         fn: Callable[[torch.Generator, torch.Tensor], object], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A CPU tensor ``[B, *shape]`` whose ``i``-th slice is filled in place by ``fn(generator_i, slice)``
    (e.g. ``torch.randn(..., out=slice)``) -- no per-sample temporaries or stacking copies."""
    gens = generators(seeds, salt)
    out = torch.empty((len(gens), *shape), dtype=dtype)
    map_samples(lambda i: fn(gens[i], out[i]), len(gens))
    return out


def draw_many(seeds: torch.Tensor, salt: str,
              fn: Callable[[torch.Generator], Sequence[torch.Tensor]],
              device: torch.device) -> list[torch.Tensor]:
    """Like :func:`draw` for a function returning several tensors per sample (drawn in order)."""
    gens = generators(seeds, salt)
    parts = map_samples(lambda i: fn(gens[i]), len(gens))
    return [torch.stack([p[k] for p in parts]).to(device) for k in range(len(parts[0]))]


# ----------------------------------------------------------------------------- padding


def pad_index(n: int, before: int, after: int, mode: str) -> torch.Tensor:
    """Indices into an axis of length ``n`` that realise padding by ``before``/``after``."""
    i = torch.arange(-before, n + after)
    if mode == "nearest":
        return i.clamp(0, n - 1)
    if mode == "wrap":
        return i % n
    if mode == "symmetric":
        if n == 1:
            return torch.zeros_like(i)
        i = i % (2 * n)
        return torch.where(i >= n, 2 * n - 1 - i, i)
    if mode == "reflect101":
        if n == 1:
            return torch.zeros_like(i)
        p = 2 * n - 2
        i = i % p
        return torch.where(i >= n, p - i, i)
    raise ValueError(f"unknown padding mode {mode!r}")


def pad2d(x: torch.Tensor, top: int, bottom: int, left: int, right: int, mode: str) -> torch.Tensor:
    """Pad the last two dims of ``x`` with any of the module's border rules (any pad size)."""
    H, W = x.shape[-2:]
    torch_mode = {"nearest": "replicate", "reflect101": "reflect", "wrap": "circular"}.get(mode)
    if torch_mode and x.ndim == 4 and max(top, bottom) < H and max(left, right) < W:
        return F.pad(x, (left, right, top, bottom), mode=torch_mode)
    if top or bottom:
        x = x.index_select(-2, pad_index(H, top, bottom, mode).to(x.device))
    if left or right:
        x = x.index_select(-1, pad_index(W, left, right, mode).to(x.device))
    return x


# ----------------------------------------------------------------------------- filtering


def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """scipy.ndimage's Gaussian: radius ``int(truncate * sigma + 0.5)``, normalised to sum 1."""
    r = int(truncate * float(sigma) + 0.5)
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).float()


def _fft_size(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (fast for pocketfft / cuFFT)."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def correlate_valid_fft(xp: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """'Valid' 2-D correlation of padded ``xp`` [N, C, Hp, Wp] with ``k`` [N|1, 1|C, kh, kw] via FFT.

    ``out[y, x] = sum_ij k[i, j] * xp[y + i, x + j]`` for ``y < Hp - kh + 1``; the zero-padding to a
    fast FFT size never wraps into the valid region. With one kernel for the whole batch, pairs of
    real images are packed into one complex image (``a + ib``): the kernel is real, so the real and
    imaginary parts of the result are the two correlations, and the slow complex-to-real inverse
    transform is avoided.
    """
    N, C, Hp, Wp = xp.shape
    kh, kw = k.shape[-2:]
    fh, fw = _fft_size(Hp), _fft_size(Wp)
    kf = torch.flip(k, dims=(-2, -1)).to(xp.dtype)
    if k.shape[0] == 1 and k.shape[1] == 1 and N * C >= 2:
        flat = xp.reshape(N * C, Hp, Wp)
        M = flat.shape[0]
        half = (M + 1) // 2
        b = flat[half:]
        if b.shape[0] < half:
            b = torch.cat([b, torch.zeros_like(flat[:1])])
        z = torch.complex(flat[:half], b)
        K = torch.fft.fft2(kf[0, 0], s=(fh, fw))
        y = torch.fft.ifft2(torch.fft.fft2(z, s=(fh, fw)) * K)[..., kh - 1:Hp, kw - 1:Wp]
        out = torch.cat([y.real, y.imag[: M - half]])
        return out.reshape(N, C, Hp - kh + 1, Wp - kw + 1)
    X = torch.fft.rfft2(xp, s=(fh, fw))
    K = torch.fft.rfft2(kf, s=(fh, fw))
    y = torch.fft.irfft2(X * K, s=(fh, fw))
    return y[..., kh - 1:Hp, kw - 1:Wp]


def filter2d(x: torch.Tensor, k: torch.Tensor, mode: str) -> torch.Tensor:
    """Same-size 2-D correlation with an odd kernel ``k`` [kh, kw] (or per sample [N, 1, kh, kw])."""
    if k.ndim == 2:
        k = k[None, None]
    kh, kw = k.shape[-2:]
    ph, pw = kh // 2, kw // 2
    xp = pad2d(x, ph, ph, pw, pw, mode)
    if kh * kw <= 25:
        N, C = x.shape[:2]
        if k.shape[0] == 1:
            w = k.to(x).expand(C, 1, kh, kw)
            return F.conv2d(xp, w, groups=C)
        w = k.to(x).expand(N, C, kh, kw).reshape(N * C, 1, kh, kw)
        return F.conv2d(xp.reshape(1, N * C, *xp.shape[-2:]), w, groups=N * C).reshape(x.shape)
    return correlate_valid_fft(xp, k.to(x.device))


def gaussian_blur(x: torch.Tensor, sigma: float | tuple[float, float], mode: str = "nearest",
                  truncate: float = 4.0) -> torch.Tensor:
    """Separable Gaussian blur matching ``skimage.filters.gaussian`` / scipy ``gaussian_filter``.

    ``sigma`` is one value or ``(sigma_rows, sigma_cols)``. Large kernels go through the FFT.
    """
    sy, sx = (sigma, sigma) if not isinstance(sigma, tuple) else sigma
    ky, kx = gaussian_kernel1d(sy, truncate), gaussian_kernel1d(sx, truncate)
    ry, rx = len(ky) // 2, len(kx) // 2
    xp = pad2d(x, ry, ry, rx, rx, mode)
    if max(len(ky), len(kx)) > SLICE_TAPS_MAX:
        return correlate_valid_fft(xp, torch.outer(ky, kx)[None, None].to(x.device))
    return correlate_separable(xp, ky.tolist(), kx.tolist())


SLICE_TAPS_MAX = 25  # up to this many taps per axis, shifted-slice sums beat conv2d and the FFT


def correlate_separable(xp: torch.Tensor, ky: Sequence[float], kx: Sequence[float]) -> torch.Tensor:
    """'Valid' separable correlation of padded ``xp`` [..., Hp, Wp] with taps ``ky`` then ``kx``.

    Why by hand: a depthwise ``conv2d`` with a 1-D kernel runs 3-6x slower on the CPU than these
    fused multiply-adds of shifted slices (bench/corruption_speed.py), for the same sums.
    """
    H, W = xp.shape[-2] - len(ky) + 1, xp.shape[-1] - len(kx) + 1
    z = xp[..., 0:H, :] * ky[0]
    for i in range(1, len(ky)):
        z.add_(xp[..., i:i + H, :], alpha=ky[i])
    out = z[..., 0:W] * kx[0]
    for i in range(1, len(kx)):
        out.add_(z[..., i:i + W], alpha=kx[i])
    return out


# ----------------------------------------------------------------------------- geometry


def clipped_zoom(x: torch.Tensor, z: float) -> torch.Tensor:
    """Centre crop of size ``ceil(n / z)`` zoomed by ``z`` with linear interpolation.

    Reproduces ``scipy.ndimage.zoom(order=1)`` (corner-aligned grid, output size
    ``round(n_crop * z)``) used by the reference's ``clipped_zoom``. The result can be a few pixels
    larger than the input; callers crop ``[:H, :W]`` like the reference.
    """
    H, W = x.shape[-2:]
    ch, cw = int(math.ceil(H / float(z))), int(math.ceil(W / float(z)))
    top, left = (H - ch) // 2, (W - cw) // 2
    crop = x[..., top:top + ch, left:left + cw]
    oh, ow = int(round(ch * z)), int(round(cw * z))
    if (oh, ow) == (ch, cw):
        return crop
    return F.interpolate(crop, size=(oh, ow), mode="bilinear", align_corners=True)


def motion_taps(radius: int, sigma: float, angle_deg: float, H: int, W: int) -> list[tuple[int, int, float]]:
    """The reference motion-blur taps ``(dy, dx, weight)``.

    The reference (imagecorruptions' numpy re-implementation of ImageMagick's ``-motion-blur``)
    sums ``kernel[i] * shift(img, dx_i, dy_i)`` over a half-Gaussian ``kernel`` of width
    ``2 * radius + 1`` along the direction ``angle``, with edge-replicating shifts, and stops at the
    first tap that leaves the image.
    """
    width = 2 * radius + 1
    k = np.exp(-(np.arange(width) ** 2) / (2 * sigma**2)) / (np.sqrt(2 * np.pi) * sigma)
    k = k / k.sum()
    py, px = width * np.sin(np.deg2rad(angle_deg)), width * np.cos(np.deg2rad(angle_deg))
    hyp = math.hypot(py, px)
    taps = []
    for i in range(width):
        dy = -math.ceil((i * py) / hyp - 0.5)
        dx = -math.ceil((i * px) / hyp - 0.5)
        if abs(dy) >= H or abs(dx) >= W:
            break
        taps.append((dy, dx, float(k[i])))
    return taps


def motion_kernel(taps: list[tuple[int, int, float]], P: int) -> torch.Tensor:
    """Dense ``[2P+1, 2P+1]`` correlation kernel for taps on an image padded by ``P``."""
    K = torch.zeros(2 * P + 1, 2 * P + 1)
    for dy, dx, w in taps:
        K[P - dy, P - dx] += w
    return K


def motion_blur_batch(x: torch.Tensor, radius: int, sigma: float, angles: Sequence[float],
                      method: str = "auto") -> torch.Tensor:
    """Per-sample motion blur (one angle per sample), edge-replicating.

    On the CPU each sample is a weighted sum of shifted slices of its padded image (the
    reference's own algorithm, ~2 radius taps, cache-resident); elsewhere one batched FFT with
    per-sample kernels (one kernel launch sequence instead of one per tap and sample).
    """
    H, W = x.shape[-2:]
    taps = [motion_taps(radius, sigma, a, H, W) for a in angles]
    P = max([max(abs(dy), abs(dx)) for t in taps for dy, dx, _ in t] + [1])
    xp = pad2d(x, P, P, P, P, "nearest")
    if method == "slices" or (method == "auto" and x.device.type == "cpu"):
        out = torch.empty_like(x)
        for b, t in enumerate(taps):
            o = out[b]
            dy, dx, w = t[0]
            torch.mul(xp[b, :, P - dy:P - dy + H, P - dx:P - dx + W], w, out=o)
            for dy, dx, w in t[1:]:
                o.add_(xp[b, :, P - dy:P - dy + H, P - dx:P - dx + W], alpha=w)
        return out
    K = torch.stack([motion_kernel(t, P) for t in taps])[:, None]
    return correlate_valid_fft(xp, K.to(x.device))


# ----------------------------------------------------------------------------- colour


def rgb_to_gray(x: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma (OpenCV ``COLOR_RGB2GRAY``), keeps a channel dim."""
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
