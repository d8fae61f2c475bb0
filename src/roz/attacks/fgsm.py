"""FGSM (Goodfellow et al. 2015): one signed-gradient step of size eps."""

from __future__ import annotations

import torch

from roz.attacks.bim import BIM


class FGSM(BIM):
    name = "fgsm"
    defaults = {"early_stop": True, "loss": "ce"}

    def steps_for(self, eps_nominal: torch.Tensor) -> torch.Tensor:
        return torch.ones(eps_nominal.shape, dtype=torch.int64)

    def alpha_pixels(self, x, e):
        return e

    def resolved(self) -> dict:
        return {"steps_resolved": 1, "alpha_resolved": self.eps}
