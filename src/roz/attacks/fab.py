"""FAB-T (Croce & Hein 2020), L-inf, via torchattacks' port of the reference FAB.

torchattacks is an optional dependency (``pip install torchattacks``), imported only when FAB-T
(alone or as an AutoAttack stage) is created; every other attack works without it.

Configured as in the reference standard AutoAttack: multi-targeted over the
``n_target_classes`` (9) most likely other classes (torchattacks spells this
``n_classes = n_target_classes + 1``), 100 iterations, 1 restart (so no random start),
alpha_max 0.1, eta 1.05, beta 0.9. The result is projected to the eps ball (in pixels; per
channel for eps_space='normalized', where FAB itself runs with the largest per-channel
radius) and counted only if still misclassified — checked by the caller (AutoAttack/evaluate).
torchattacks re-seeds the global RNG; we fork it so the caller's RNG state is untouched.
FAB's internal forward passes are not counted in ``last_queries``.
"""

from __future__ import annotations

import torch

from roz.attacks.base import Attack
from roz.errors import RozError


def require_torchattacks(attack: str, why: str = "FAB-T"):
    """``torchattacks`` (an optional dependency: only FAB-T uses it), or a RozError naming ``attack``."""
    try:
        import torchattacks
    except ImportError:
        raise RozError(f"attack '{attack}' needs the optional package torchattacks ({why})",
                       hint="pip install torchattacks   (or pip install 'roz[attacks]'); "
                       "every other ROZ attack works without it") from None
    return torchattacks


class FABT(Attack):
    name = "fab-t"
    defaults = {"steps": 100, "n_target_classes": 9, "restarts": 1, "alpha_max": 0.1, "eta": 1.05, "beta": 0.9}

    def validate(self) -> None:
        for k in ("steps", "n_target_classes", "restarts"):
            self._need(k, isinstance(self.p[k], int) and self.p[k] >= 1, "int >= 1")
        require_torchattacks(self.name)

    def loss_name(self) -> str:
        return "fab-minimal"

    def _perturb(self, x, y, idx, e, eps_nominal):
        with torch.no_grad():
            C = self.logits(x[:1]).shape[1]
        n_t = min(int(self.p["n_target_classes"]), C - 1)
        fab = require_torchattacks(self.name).FAB(self.model, norm="Linf", eps=float(e.max()), steps=int(self.p["steps"]),
                               n_restarts=int(self.p["restarts"]), alpha_max=float(self.p["alpha_max"]),
                               eta=float(self.p["eta"]), beta=float(self.p["beta"]), seed=self.seed,
                               multi_targeted=True, n_classes=n_t + 1)
        fab.device = x.device
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.autocast(device_type=x.device.type, enabled=False):
            adv = fab.perturb(x, y)
        return self.project(adv.detach().float(), x, e)
