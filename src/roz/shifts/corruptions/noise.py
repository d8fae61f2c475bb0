"""Noise corruptions: gaussian, shot (Poisson), impulse (salt & pepper) and speckle noise.

Severity parameters are those of Hendrycks & Dietterich (2019), "Benchmarking Neural Network
Robustness to Common Corruptions and Perturbations", ICLR, as packaged in ``imagecorruptions``.
Noise is drawn per sample on the CPU (see ``_common``), so outputs do not depend on the batch or
the device. The same seed gives the same underlying noise at every severity, so distortion grows
monotonically with severity for a fixed seed.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from roz.shifts.corruptions._common import fill

GAUSSIAN = (0.08, 0.12, 0.18, 0.26, 0.38)  # std of additive N(0, c)
SHOT = (60, 25, 12, 5, 3)  # photons per unit intensity: Poisson(x * c) / c
IMPULSE = (0.03, 0.06, 0.09, 0.17, 0.27)  # fraction of values set to 0 or 1
SPECKLE = (0.15, 0.2, 0.35, 0.45, 0.6)  # std of multiplicative N(0, c)


def gaussian_noise(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    c = GAUSSIAN[severity - 1]
    n = fill(seeds, "gaussian_noise", x.shape[1:], lambda g, o: torch.randn(o.shape, generator=g, out=o))
    n = n.to(x.device)
    return torch.add(x, n, alpha=c, out=n)


POISSON_LEVELS = 256  # shot noise acts on 8-bit intensities, as the reference's uint8 input does
POISSON_GUIDE = 1024  # guide-table bins per level (see poisson_8bit)


@lru_cache(maxsize=None)
def _poisson_tables(c: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inverse-CDF tables of Poisson(l * c / 255) for the 256 levels ``l``, flattened level-major.

    ``cdf[l * K + k] = P(N <= k)`` for ``k < K``, with ``K`` large enough that the tail beyond is
    below 1e-12 for every level, rounded *up* to the 2**-24 grid of float32 uniforms (so comparing
    a uniform with it in float32 decides ``u < P(N <= k)`` exactly as float64 would);
    ``guide[l * G + g]`` is the flat index of the smallest ``k`` with ``cdf > g / G``, the exact
    inverse-CDF answer at the bin's left edge; ``value[l * K + k] = k / c``; ``shifted`` is
    ``cdf + 2 l`` in float64 (monotone over the whole table, for ``searchsorted``).
    """
    lam = torch.arange(POISSON_LEVELS, dtype=torch.float64) * (c / (POISSON_LEVELS - 1))
    K = int(c + 12 * c**0.5 + 20)
    k = torch.arange(K, dtype=torch.float64)
    logp = k * torch.log(lam.clamp_min(1e-300))[:, None] - lam[:, None] - torch.lgamma(k + 1)
    logp[0] = float("-inf")
    logp[0, 0] = 0.0  # level 0: Poisson(0) is 0 with probability 1
    cdf = torch.ceil(torch.cumsum(torch.exp(logp), dim=1) * 2.0**24) / 2.0**24
    cdf[:, -1] = 2.0  # beyond the table (probability < 1e-12): stop at the last entry
    edges = torch.arange(POISSON_GUIDE, dtype=torch.float64) / POISSON_GUIDE
    guide = torch.searchsorted(cdf.contiguous(), edges.expand(POISSON_LEVELS, -1).contiguous(), right=True)
    levels = torch.arange(POISSON_LEVELS)[:, None]
    value = (k / c).float().expand(POISSON_LEVELS, -1).reshape(-1)
    shifted = (cdf + 2.0 * levels).reshape(-1)
    return cdf.float().reshape(-1), (guide + levels * K).reshape(-1).int(), value, shifted


def poisson_8bit(x: torch.Tensor, u: torch.Tensor, c: float) -> torch.Tensor:
    """Exact ``Poisson(round(255 x) * c / 255) / c`` draws by inversion of float32 uniforms ``u``.

    Why by hand: ``torch.poisson`` and numpy draw one value at a time (~30 ns each, most of
    shot noise's cost); with 8-bit rates there are only 256 distributions, so an inverse-CDF
    table with a guide table (Devroye's "indexed search") needs two gathers and, for the few
    values whose guide bin spans several counts, a binary search -- vectorised, and still an
    exact Poisson sample (``u`` must be on torch.rand's 2**-24 grid, as torch's float32 draws are).
    """
    cdf, guide, value, shifted = (t.to(u.device) for t in _poisson_tables(float(c)))
    # flat guide index level * G + bin, formed in float32 (exact below 2**24), one int conversion
    level = torch.round(x * (POISSON_LEVELS - 1)).clamp_(0, POISSON_LEVELS - 1)
    f = torch.floor(u * POISSON_GUIDE).add_(level, alpha=POISSON_GUIDE)
    pos = guide.index_select(0, f.view(-1).int())  # flat int32 index into cdf: level * K + k
    further = cdf.index_select(0, pos).view_as(u) <= u  # inverse CDF lies right of the bin start
    active = further.view(-1).nonzero().squeeze(1)
    if active.numel():
        q = u.reshape(-1)[active].double() + 2.0 * level.reshape(-1)[active].double()
        pos[active] = torch.searchsorted(shifted, q, right=True).int()
    return value.index_select(0, pos).view_as(u)


def shot_noise(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    """``Poisson(x * c) / c`` with ``x`` quantised to 8 bits first -- the reference draws from its
    uint8 input, so the rates are the same; the draws are exact (see ``poisson_8bit``)."""
    c = float(SHOT[severity - 1])
    u = fill(seeds, "shot_noise", x.shape[1:], lambda g, o: torch.rand(o.shape, generator=g, out=o))
    return poisson_8bit(x, u.to(x.device), c)


def impulse_noise(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    """skimage ``random_noise(mode='s&p')``: each value independently replaced w.p. ``c``, half salt."""
    c = IMPULSE[severity - 1]
    u = fill(seeds, "impulse_noise", x.shape[1:], lambda g, o: torch.rand(o.shape, generator=g, out=o))
    u = u.to(x.device)
    # u < c: replaced (prob. c); u < c / 2: salt -- given replacement, salt or pepper with prob. 1/2
    return torch.where(u < c, (u < c / 2).to(x.dtype), x)


def speckle_noise(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    c = SPECKLE[severity - 1]
    n = fill(seeds, "speckle_noise", x.shape[1:], lambda g, o: torch.randn(o.shape, generator=g, out=o))
    n = n.to(x.device)
    return n.mul_(c).add_(1.0).mul_(x)
