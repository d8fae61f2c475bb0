"""Noise corruptions: gaussian, shot (Poisson), impulse (salt & pepper) and speckle noise.

Severity parameters are those of Hendrycks & Dietterich (2019), "Benchmarking Neural Network
Robustness to Common Corruptions and Perturbations", ICLR, as packaged in ``imagecorruptions``.
Noise is drawn per sample on the CPU (see ``_common``), so outputs do not depend on the batch or
the device. The same seed gives the same underlying noise at every severity, so distortion grows
monotonically with severity for a fixed seed.
"""

from __future__ import annotations

import torch

from roz.shifts.corruptions._common import fill, generators, map_samples

GAUSSIAN = (0.08, 0.12, 0.18, 0.26, 0.38)  # std of additive N(0, c)
SHOT = (60, 25, 12, 5, 3)  # photons per unit intensity: Poisson(x * c) / c
IMPULSE = (0.03, 0.06, 0.09, 0.17, 0.27)  # fraction of values set to 0 or 1
SPECKLE = (0.15, 0.2, 0.35, 0.45, 0.6)  # std of multiplicative N(0, c)


def gaussian_noise(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    c = GAUSSIAN[severity - 1]
    n = fill(seeds, "gaussian_noise", x.shape[1:], lambda g, o: torch.randn(o.shape, generator=g, out=o))
    n = n.to(x.device)
    return torch.add(x, n, alpha=c, out=n)


def shot_noise(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    c = float(SHOT[severity - 1])
    rates = (x * c).detach().to("cpu", torch.float32)
    gens = generators(seeds, "shot_noise")
    out = map_samples(lambda i: torch.poisson(rates[i], generator=gens[i]), len(gens))
    return torch.stack(out).to(x.device) / c


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
