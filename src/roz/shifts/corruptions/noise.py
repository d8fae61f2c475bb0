"""Noise corruptions: gaussian, shot (Poisson), impulse (salt & pepper) and speckle noise.

Severity parameters are those of Hendrycks & Dietterich (2019), "Benchmarking Neural Network
Robustness to Common Corruptions and Perturbations", ICLR, as packaged in ``imagecorruptions``.
Noise is drawn per sample on the CPU (see ``_common``), so outputs do not depend on the batch or
the device. The same seed gives the same underlying noise at every severity, so distortion grows
monotonically with severity for a fixed seed.
"""

from __future__ import annotations

import torch

from roz.shifts.corruptions._common import draw, generators, map_samples

GAUSSIAN = (0.08, 0.12, 0.18, 0.26, 0.38)  # std of additive N(0, c)
SHOT = (60, 25, 12, 5, 3)  # photons per unit intensity: Poisson(x * c) / c
IMPULSE = (0.03, 0.06, 0.09, 0.17, 0.27)  # fraction of values set to 0 or 1
SPECKLE = (0.15, 0.2, 0.35, 0.45, 0.6)  # std of multiplicative N(0, c)


def gaussian_noise(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    c = GAUSSIAN[severity - 1]
    n = draw(seeds, "gaussian_noise", lambda g: torch.randn(x.shape[1:], generator=g), x.device)
    return x + c * n


def shot_noise(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    c = float(SHOT[severity - 1])
    rates = (x * c).detach().to("cpu", torch.float32)
    gens = generators(seeds, "shot_noise")
    out = map_samples(lambda i: torch.poisson(rates[i], generator=gens[i]), len(gens))
    return torch.stack(out).to(x.device) / c


def impulse_noise(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    """skimage ``random_noise(mode='s&p')``: each value independently replaced w.p. ``c``, half salt."""
    c = IMPULSE[severity - 1]
    u = draw(seeds, "impulse_noise", lambda g: torch.rand((2, *x.shape[1:]), generator=g), x.device)
    salt = (u[:, 1] < 0.5).to(x.dtype)
    return torch.where(u[:, 0] < c, salt, x)


def speckle_noise(x: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    c = SPECKLE[severity - 1]
    n = draw(seeds, "speckle_noise", lambda g: torch.randn(x.shape[1:], generator=g), x.device)
    return x + x * (c * n)
