"""PGD (Madry et al. 2018): uniform random start in the ball, signed steps, restarts.

Defaults: 10 steps, alpha = eps/4, 1 restart. Each restart attacks only samples not yet
fooled; the random start is drawn from (seed, sample index, restart), so seeded runs are
batched == per-sample.
"""

from __future__ import annotations

import torch

from roz.attacks.base import per_sample_rand
from roz.attacks.bim import BIM


class PGD(BIM):
    name = "pgd"
    randomized = True
    defaults = {"alpha_factor": 0.25, "alpha": None, "steps": 10, "restarts": 1, "random_start": True,
                "early_stop": True, "loss": "ce"}

    def validate(self) -> None:
        super().validate()
        r = self.p["restarts"]
        self._need("restarts", isinstance(r, int) and r >= 1, "must be an int >= 1")

    def start(self, x, idx, e, restart: int = 0):
        if not self.p["random_start"]:
            return x.clone()
        u = per_sample_rand(x.shape[1:], self.seeds(idx, f"start{restart}"), "uniform", x.device)
        return self.project(x + (2 * u - 1) * e, x, e)

    def _perturb(self, x, y, idx, e, eps_nominal):
        steps = self.steps_for(eps_nominal)
        a = self.alpha_pixels(x, e)
        best = x.clone()
        todo = torch.arange(x.shape[0])
        R = int(self.p["restarts"])
        for r in range(R):
            d = todo.to(x.device)
            xs, ys, es = x[d], y[d], e[d]
            x_adv, fooled = self._iterate(xs, ys, idx[todo], es, a[d], steps[todo], self.start(xs, idx[todo], es, r),
                                          rows=todo)
            best[d] = x_adv
            if r == R - 1:
                break
            rest = (~fooled).nonzero()[:, 0]
            if rest.numel():
                self.count(todo[rest])
                still = (self.logits(x_adv[rest.to(x.device)]).argmax(1) == ys[rest.to(x.device)]).cpu()
                fooled[rest[~still]] = True
            todo = todo[~fooled]
            if todo.numel() == 0:
                break
        return best
