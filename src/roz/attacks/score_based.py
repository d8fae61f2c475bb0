"""Score-based black-box attacks NES (Ilyas et al. 2018) and SPSA (Uesato et al. 2018).

They see only logits. Per step: evaluate the margin loss m(x) = z_y - max_{k != y} z_k at the
current point (1 query; a sample with m < 0 stops: early stopping), estimate its gradient with
``q`` antithetic directions (2q queries),
g = sum_k (m(x + sigma u_k) - m(x - sigma u_k)) u_k / (2 q sigma),
u Gaussian (NES) or Rademacher (SPSA), then x <- proj(x - alpha sign(g)), alpha = 0.15 eps.
``sigma`` (0.001, the paper's) is in the attack's eps space, like eps: in pixels for
``eps_space='pixel'``, and after the model's normalisation for ``eps_space='normalized'`` (where
the paper's code applied it: a pixel offset of sigma * std[c] per channel).
Steps follow the BIM schedule (10 at 8/255) unless ``steps`` is given. Queries are clipped to
[0, 1] (the model contract). Budget per sample: steps * (2q + 1) + 1 queries, never exceeded;
``last_queries`` holds the exact count. Directions come from (seed, sample index, step),
drawn on the input's device (reproducible per device type). The queries of several samples go
through the model together (as many samples as fit in ``chunk`` rows: 2 at q=100, chunk=400).
"""

from __future__ import annotations

import torch

from roz.attacks.base import margin
from roz.attacks.bim import BIM
from roz.seeding import sample_generator, sample_seed


class _ScoreBased(BIM):
    uses_gradients = False
    randomized = True
    defaults = {"q": 100, "sigma": 0.001, "alpha_factor": 0.15, "alpha": None, "steps": None,
                "chunk": 400, "early_stop": True}
    directions = "normal"

    def validate(self) -> None:
        super().validate()
        self._need("q", isinstance(self.p["q"], int) and self.p["q"] >= 1, "int >= 1")
        self._need("sigma", float(self.p["sigma"]) > 0, "must be > 0")
        self._need("chunk", isinstance(self.p["chunk"], int) and self.p["chunk"] >= 2, "int >= 2")

    def loss_name(self) -> str:
        return "margin"

    def budget(self, steps: int) -> int:
        return steps * (2 * int(self.p["q"]) + 1) + 1

    def resolved(self) -> dict:
        r = super().resolved()
        return {**r, "max_queries": self.budget(r["steps_resolved"]), "directions": self.directions,
                "sigma_space": self.eps_space}

    def draw(self, i: int, t: int, shape, device="cpu") -> torch.Tensor:
        """Directions for sample ``i`` at step ``t``, drawn on ``device`` (deterministic per device)."""
        device = torch.device(device)
        g = sample_generator(sample_seed(self.seed, i, f"{self.name}:{t}"), device)
        q = int(self.p["q"])
        if self.directions == "normal":
            return torch.randn((q, *shape), generator=g, device=device)
        return torch.randint(0, 2, (q, *shape), generator=g, device=device).float() * 2 - 1

    def margins(self, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        out = []
        n = int(self.p["chunk"])
        for k in range(0, xs.shape[0], n):
            out.append(margin(self.logits(xs[k:k + n].clamp(0, 1)), ys[k:k + n]))
        return torch.cat(out)

    def _perturb(self, x, y, idx, e, eps_nominal):
        steps = self.steps_for(eps_nominal)
        a = self.alpha_pixels(x, e)
        x_adv = x.clone()
        done = torch.zeros(x.shape[0], dtype=torch.bool)
        q, sig = int(self.p["q"]), float(self.p["sigma"])
        sig_px = self.eps_tensor(x[:1], sig)  # [1, C, 1, 1]: sigma in the eps space, as pixels
        for t in range(int(steps.max()) + 1):
            act = ((~done) & (steps >= t)).nonzero()[:, 0]
            if act.numel() == 0:
                break
            d = act.to(x.device)
            m = self.margins(x_adv[d], y[d])
            self.count(act)
            if self.p["early_stop"]:
                fooled = (m < 0).cpu()
                done[act[fooled]] = True
                act = act[~fooled]
            act = act[steps[act] > t]
            done[(steps <= t)] = True
            for group in self._groups(act.tolist(), q):
                self._step(x, x_adv, y, idx, group, t, a, e, sig_px)
        return x_adv


    def _groups(self, rows: list[int], q: int) -> list[list[int]]:
        """Samples whose 2q queries fit together in one forward of at most ``chunk`` rows."""
        per = max(1, int(self.p["chunk"]) // (2 * q))
        return [rows[k:k + per] for k in range(0, len(rows), per)]

    def _step(self, x, x_adv, y, idx, group: list[int], t: int, a, e, sig_px) -> None:
        """One gradient-estimation step for the samples ``group``, their queries in one forward
        (it was one forward per sample)."""
        q, sig = int(self.p["q"]), float(self.p["sigma"])
        us = [self.draw(int(idx[i]), t, x.shape[1:], x.device) for i in group]
        pts = torch.cat([torch.cat([x_adv[i:i + 1] + sig_px * u, x_adv[i:i + 1] - sig_px * u])
                         for i, u in zip(group, us)])
        rows = torch.tensor(group, device=y.device)
        mm = self.margins(pts, y[rows].repeat_interleave(2 * q)).view(len(group), 2 * q)
        self.count(torch.tensor(group), 2 * q)
        for k, (i, u) in enumerate(zip(group, us)):
            g = ((mm[k, :q] - mm[k, q:])[:, None, None, None] * u).sum(0, keepdim=True) / (2 * q * sig)
            xi = x_adv[i:i + 1]
            x_adv[i:i + 1] = self.project(xi - a[i:i + 1] * g.sign(), x[i:i + 1], e[i:i + 1])


class NES(_ScoreBased):
    name = "nes"
    directions = "normal"


class SPSA(_ScoreBased):
    name = "spsa"
    directions = "rademacher"
