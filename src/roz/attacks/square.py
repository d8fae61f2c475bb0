"""Square Attack, L-inf (Andriushchenko et al. 2020), following the auto-attack reference.

Init: vertical stripes x + eps * (+-1) per (channel, column) (1 query). Then up to
``n_queries - 1`` iterations: a random square of side s = round(sqrt(p * n_features / C)),
p from the reference schedule ``p_selection`` (not rescaled to n_queries, as in the
reference's AutoAttack; ``rescale_schedule=True`` for the standalone reference default),
gets a random sign per channel at +-2 eps from the current best, projected to the ball and
[0, 1]; kept if the margin drops. Stops per sample when the margin is <= 0.
Queries per sample, the init included, never exceed ``n_queries``.

Differences from the reference PyTorch code: (1) it draws one square position and one sign
vector per iteration for the whole batch; here each sample draws its own from its own
generator (seed, sample index) — as in the original NumPy code — so batched == per-sample;
(2) the reference runs n_queries iterations after the init query (n_queries + 1 queries);
here ``n_queries`` is the total budget.
"""

from __future__ import annotations

import math

import torch

from roz.attacks.base import Attack, margin
from roz.seeding import sample_generator


def p_selection(p_init: float, it: int, n_queries: int, rescale: bool = False) -> float:
    if rescale:
        it = int(it / n_queries * 10000)
    for bound, div in ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64),
                       (6000, 128), (8000, 256), (10000, 512)):
        if it <= bound:
            return p_init / div
    return p_init / 512


class Square(Attack):
    name = "square"
    uses_gradients = False
    randomized = True
    defaults = {"n_queries": 5000, "p_init": 0.8, "rescale_schedule": False}

    def loss_name(self) -> str:
        return "margin"

    def validate(self) -> None:
        self._need("n_queries", isinstance(self.p["n_queries"], int) and self.p["n_queries"] >= 1, "int >= 1")
        self._need("p_init", 0 < float(self.p["p_init"]) <= 1, "must be in (0, 1]")

    def _perturb(self, x, y, idx, e, eps_nominal):
        B, C, H, W = x.shape
        dev = x.device
        nq = int(self.p["n_queries"])
        # every random number a sample will use, drawn up front from its own generator
        u0, draws = [], []
        for sd in self.seeds(idx):
            g = sample_generator(sd)
            u0.append(torch.randint(0, 2, (C, 1, W), generator=g))
            draws.append(torch.rand(max(nq - 1, 1), 2 + C, generator=g))
        stripes = torch.stack(u0).to(dev).float() * 2 - 1
        draws = torch.stack(draws).to(dev)  # [B, nq-1, 2+C]
        x_best = self.project(x + e * stripes, x, e)
        m_min = margin(self.logits(x_best), y)
        self.count(None)
        n_feat = C * H * W
        rows_h = torch.arange(H, device=dev)[None, :, None]
        cols_w = torch.arange(W, device=dev)[None, None, :]
        for it in range(1, nq):
            act = (m_min > 0).nonzero()[:, 0]
            if act.numel() == 0:
                break
            p = p_selection(float(self.p["p_init"]), it - 1, nq, bool(self.p["rescale_schedule"]))
            s = min(max(int(round(math.sqrt(p * n_feat / C))), 1), min(H, W))
            u = draws[act, it - 1]
            vh = (u[:, 0] * (H - s)).long()  # as the reference: low + (high - low) * U[0, 1)
            vw = (u[:, 1] * (W - s)).long()
            sign = (u[:, 2:] < 0.5).float() * 2 - 1
            inside = ((rows_h >= vh[:, None, None]) & (rows_h < (vh + s)[:, None, None])
                      & (cols_w >= vw[:, None, None]) & (cols_w < (vw + s)[:, None, None]))
            xa, ea = x[act], e[act]
            new = x_best[act] + inside[:, None].float() * (2 * ea * sign[:, :, None, None])
            new = self.project(new, xa, ea)
            m = margin(self.logits(new), y[act])
            self.count(act.cpu())
            better = m < m_min[act]
            if better.any():
                b = act[better]
                x_best[b] = new[better]
                m_min[b] = m[better]
        return x_best
