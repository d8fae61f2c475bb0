"""The shift contract: a deterministic, batched transform in pixel space.

A ``Shift`` maps a batch ``x`` (float32, shape [B, 3, H, W], values in [0, 1], on any device)
and one integer seed per sample to a shifted batch of the same shape, dtype, device and range.
The engine derives each sample's seed from the run seed and the sample's dataset index, so a
sample is shifted identically whatever its batch, shard or worker (batched == per-sample).
"""

from __future__ import annotations

import torch

from roz.seeding import sample_generator, sample_seed  # noqa: F401  (re-exported for callers of roz.shifts.base)


class Shift:
    """Base class. Subclasses set ``name`` and implement ``apply`` and ``params``."""

    name: str = "identity"

    def params(self) -> dict:
        """Every parameter that changes the output, recorded with each result."""
        return {}

    def apply(self, x: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        return x

    def __call__(self, x: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{self.name}: expected a batch [B, 3, H, W], got shape {tuple(x.shape)}")
        if seeds.shape[0] != x.shape[0]:
            raise ValueError(f"{self.name}: {seeds.shape[0]} seeds for a batch of {x.shape[0]}")
        return self.apply(x, seeds)

    def spec(self) -> dict:
        return {"name": self.name, **self.params()}
