"""MIM / MI-FGSM (Dong et al. 2018): momentum mu over L1-normalised gradients.

g_t = mu * g_{t-1} + grad / ||grad||_1 (per sample); x <- proj(x + alpha * sign(g_t)).
Paper: alpha = 0.15 eps, 19 updates white-box (9 in transfer, see ``transfer.py``).
"""

from __future__ import annotations

import torch

from roz.attacks.bim import BIM


class MIM(BIM):
    name = "mim"
    defaults = {"alpha_factor": 0.15, "alpha": None, "steps": 19, "momentum": 1.0, "early_stop": True,
                "loss": "ce"}

    def validate(self) -> None:
        super().validate()
        m = self.p["momentum"]
        self._need("momentum", isinstance(m, (int, float)) and m >= 0, "must be >= 0")

    def direction(self, g: torch.Tensor, act: torch.Tensor, state: dict) -> torch.Tensor:
        if "m" not in state:
            state["m"] = torch.zeros((state["B"], *g.shape[1:]), dtype=g.dtype, device=g.device)
        buf = state["m"]
        actd = act.to(g.device)
        l1 = g.abs().flatten(1).sum(1).clamp_min(1e-12)[:, None, None, None]
        buf[actd] = float(self.p["momentum"]) * buf[actd] + g / l1
        return buf[actd].sign()
