"""Standard AutoAttack, L-inf (Croce & Hein 2020): APGD-CE -> APGD-T -> FAB-T -> Square.

Each stage runs only on the points still robust after the previous ones (clean-misclassified
points are never attacked), exactly like ``autoattack.AutoAttack(version='standard')``.
Per-stage settings default to the reference standard version (100 iterations, 1 restart,
9 target classes, Square 5,000 queries with p_init 0.8) and are overridable
(``apgd_steps``, ``n_target_classes``, ``fab_steps``, ``square_queries``, ``stages``).
``last_stage`` records, per sample, the stage that broke it ('' if robust / clean wrong).
See docs/attacks.md for every difference from the reference and from torchattacks.
"""

from __future__ import annotations

import torch

from roz.attacks.apgd import APGD, APGDT
from roz.attacks.base import Attack
from roz.attacks.fab import FABT, require_torchattacks
from roz.attacks.square import Square

STAGES = ("apgd-ce", "apgd-t", "fab-t", "square")
STAGE_LOSSES = {"apgd-ce": "ce", "apgd-t": "targeted-dlr", "fab-t": "fab-minimal", "square": "margin"}


class AutoAttack(Attack):
    name = "autoattack"
    randomized = True
    defaults = {"version": "standard", "stages": STAGES, "apgd_steps": 100, "n_target_classes": 9,
                "fab_steps": 100, "square_queries": 5000, "square_p_init": 0.8}

    def validate(self) -> None:
        self._need("version", self.p["version"] == "standard", "only 'standard' is implemented")
        st = tuple(self.p["stages"])
        self._need("stages", len(st) >= 1 and set(st) <= set(STAGES), f"a non-empty subset of {STAGES}")
        if "fab-t" in st:  # fail before hours of APGD, not at the FAB stage
            require_torchattacks(self.name, "its FAB-T stage; or drop 'fab-t' from stages")

    def loss_name(self) -> str:
        return "ensemble: " + ", ".join(STAGE_LOSSES[s] for s in self.p["stages"])

    def stage(self, name: str) -> Attack:
        kw = dict(eps=self.eps, eps_space=self.eps_space, seed=self.seed)
        if name == "apgd-ce":
            return APGD(self.model, steps=int(self.p["apgd_steps"]), restarts=1, loss="ce", **kw)
        if name == "apgd-t":
            return APGDT(self.model, steps=int(self.p["apgd_steps"]), restarts=1,
                         n_target_classes=int(self.p["n_target_classes"]), **kw)
        if name == "fab-t":
            return FABT(self.model, steps=int(self.p["fab_steps"]), n_target_classes=int(self.p["n_target_classes"]),
                        restarts=1, **kw)
        return Square(self.model, n_queries=int(self.p["square_queries"]), p_init=float(self.p["square_p_init"]),
                      rescale_schedule=False, **kw)

    def _perturb(self, x, y, idx, e, eps_nominal):
        B, dev = x.shape[0], x.device
        out = x.clone()
        robust = (self.logits(x).argmax(1) == y).cpu()
        self.count(None)
        self.last_stage = [""] * B
        eps_arg = eps_nominal if not torch.all(eps_nominal == self.eps) else None
        for name in self.p["stages"]:
            todo = robust.nonzero()[:, 0]
            if todo.numel() == 0:
                break
            d = todo.to(dev)
            atk = self.stage(name)
            adv = atk.perturb(x[d], y[d], idx[todo], eps=None if eps_arg is None else eps_arg[todo])
            self.last_queries[todo] += atk.last_queries
            adv = self.project(adv, x[d], e[d])
            fooled = (self.logits(adv).argmax(1) != y[d]).cpu()
            self.count(todo)
            out[d[fooled.to(dev)]] = adv[fooled.to(dev)]
            robust[todo[fooled]] = False
            for i in todo[fooled].tolist():
                self.last_stage[i] = name
        return out
