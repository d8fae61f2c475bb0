"""BIM (Kurakin et al. 2017) and the shared iterative L-inf engine used by FGSM/MIM/DIM/PGD.

Per step: one fp32 forward+backward on the samples still being attacked. With
``early_stop=True`` (default) a sample whose current iterate is already misclassified is
frozen there (its logits come from the same forward, so early stopping costs nothing); the
paper's code ran every step and returned the last iterate: ``early_stop=False`` reproduces it.
Every sample's trajectory depends only on itself, so batched == per-sample.

Step schedules (``schedule``): ``paper`` (default; Wang et al.'s code) takes alpha = 0.15 eps for
int(min(255 eps + 4, 1.25 * 255 eps)) steps, so it moves at most 0.15 eps / 0.3 eps / 0.75 eps in
total at 1 / 2 / 4 /255 and BIM reads *weaker than FGSM* (one step of eps) there; ``kurakin``
(Kurakin et al. 2017) takes alpha = 1/255 (in eps-space units) for the same number of steps, which
reaches the ball's surface at every eps. ``alpha`` / ``steps`` override either.
"""

from __future__ import annotations

import torch

from roz.attacks.base import LOSSES, Attack, bim_steps, summed_loss

SCHEDULES = ("paper", "kurakin")
KURAKIN_ALPHA = 1 / 255  # Kurakin et al.: one intensity level per step


class BIM(Attack):
    name = "bim"
    defaults = {"alpha_factor": 0.15, "alpha": None, "steps": None, "early_stop": True, "loss": "ce",
                "schedule": "paper"}
    momentum: bool = False

    craft_model: torch.nn.Module | None = None  # set by transfer attacks (the surrogate)

    def validate(self) -> None:
        p = self.p
        if "alpha_factor" in p:
            self._need("alpha_factor", isinstance(p["alpha_factor"], (int, float)) and p["alpha_factor"] > 0, "must be > 0")
        if p.get("alpha") is not None:
            self._need("alpha", isinstance(p["alpha"], (int, float)) and p["alpha"] > 0, "must be > 0 (eps units)")
        if p.get("steps") is not None:
            self._need("steps", isinstance(p["steps"], int) and p["steps"] >= 1, "must be an int >= 1")
        if "loss" in p:
            self._need("loss", p["loss"] in LOSSES, f"one of {LOSSES} (cross-entropy or the DLR margin)")
        if "schedule" in p:
            self._need("schedule", p["schedule"] in SCHEDULES, f"one of {SCHEDULES}")

    # ---- schedules --------------------------------------------------------------------
    def steps_for(self, eps_nominal: torch.Tensor) -> torch.Tensor:
        if self.p.get("steps") is not None:
            return torch.full(eps_nominal.shape, int(self.p["steps"]), dtype=torch.int64)
        return torch.tensor([bim_steps(float(e)) for e in eps_nominal], dtype=torch.int64)

    def _alpha_value(self) -> float | None:
        """A fixed step in eps-space units (``alpha``, or Kurakin's 1/255), else None (alpha_factor * eps)."""
        if self.p.get("alpha") is not None:
            return float(self.p["alpha"])
        if self.p.get("schedule") == "kurakin":
            return KURAKIN_ALPHA
        return None

    def alpha_pixels(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        alpha = self._alpha_value()
        if alpha is not None:
            return self.eps_tensor(x, alpha)
        return float(self.p["alpha_factor"]) * e

    def resolved(self) -> dict:
        steps = int(self.steps_for(torch.tensor([self.eps], dtype=torch.float64))[0])
        alpha = self._alpha_value()
        if alpha is None:
            alpha = float(self.p.get("alpha_factor", 1.0)) * self.eps
        return {"steps_resolved": steps, "alpha_resolved": alpha}

    def note(self) -> str | None:
        if self.p.get("schedule") != "paper" or self.p.get("alpha") is not None or "alpha_factor" not in self.p:
            return None
        if self.p.get("steps") is not None:
            return None
        return ("paper BIM schedule (alpha = 0.15 eps, int(min(255 eps + 4, 1.25 * 255 eps)) steps) moves at most "
                "0.15 eps / 0.3 eps / 0.75 eps in total at 1 / 2 / 4 /255, so BIM reads weaker than FGSM there; "
                "schedule='kurakin' (alpha = 1/255) reaches the ball at every eps")

    # ---- hooks for subclasses ---------------------------------------------------------
    def start(self, x, idx, e, restart: int = 0) -> torch.Tensor:
        return x.clone()

    def make_transform(self, act: torch.Tensor, idx: torch.Tensor, t: int, shape):
        return None

    def direction(self, g: torch.Tensor, act: torch.Tensor, state: dict) -> torch.Tensor:
        return g.sign()

    # ---- engine -----------------------------------------------------------------------
    def _perturb(self, x, y, idx, e, eps_nominal):
        steps = self.steps_for(eps_nominal)
        x_adv, _ = self._iterate(x, y, idx, e, self.alpha_pixels(x, e), steps, self.start(x, idx, e))
        return x_adv

    def _iterate(self, x, y, idx, e, a, steps, x_adv, rows=None):
        """Run up to ``steps[i]`` updates per sample; returns (x_adv, fooled-by-early-stop)."""
        dev = x.device
        B = x.shape[0]
        done = torch.zeros(B, dtype=torch.bool)
        state: dict = {"B": B}
        own_rows = rows is None
        rows = torch.arange(B) if rows is None else rows
        nq = 0 if self.craft_model is not None else 1  # surrogate calls are not target queries
        early = bool(self.p.get("early_stop", True))
        model = self.craft_model
        lo, hi = x - e, x + e  # the ball, computed once
        everyone = torch.arange(B)
        uniform = B > 0 and bool((steps == steps[0]).all())
        any_done = False
        n_full = 0  # queries spent while everyone was active (added once at the end)
        for t in range(int(steps.max()) if B else 0):
            if uniform and not any_done:  # fast path: nobody stopped yet
                act = everyone
            else:
                act = ((~done) & (steps > t)).nonzero()[:, 0]
            if act.numel() == 0:
                break
            full = act.numel() == B
            actd = None if full else act.to(dev)
            xa, ya = (x_adv, y) if full else (x_adv[actd], y[actd])
            tf = self.make_transform(act, idx, t, x.shape)
            logits, g = self.loss_grad(xa, summed_loss(self.p.get("loss", "ce"), ya), model=model, transform=tf)
            if full and own_rows:
                n_full += nq
            elif nq:
                self.count(rows[act], nq)
            if early:
                if tf is not None:
                    logits = self.logits(xa, model=model)
                    self.count(rows[act], nq)
                fooled = (logits.argmax(1) != ya).cpu()
                if fooled.any():
                    any_done = True
                    done[act[fooled]] = True
                    keep = ~fooled
                    full = False
                    act, xa, g = act[keep], xa[keep.to(dev)], g[keep.to(dev)]
                    actd = act.to(dev)
                    if act.numel() == 0:
                        continue
            d = self.direction(g, act, state)
            if act.numel() == B:  # everyone active: no gather/scatter copies
                x_adv = torch.minimum(torch.maximum(xa + a * d, lo), hi).clamp_(0.0, 1.0)
            else:
                x_adv[actd] = self.project(xa + a[actd] * d, x[actd], e[actd])
        if n_full:
            self.count(None, n_full)
        return x_adv, done
