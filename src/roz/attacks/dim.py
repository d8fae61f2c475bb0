"""DIM / DI-FGSM (Xie et al. 2019): MIM with input diversity.

At each step, with probability ``prob`` (0.5) the input is resized (nearest neighbour, as in
the original) to a random size in [resize_min * s, s] and zero-padded back to s at a random
offset; the gradient flows through the transform. The random draws come from a generator
seeded by (seed, sample index, step), so batched == per-sample.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from roz.attacks.mim import MIM
from roz.seeding import sample_generator, sample_seed


class DIM(MIM):
    name = "dim"
    randomized = True
    defaults = {**MIM.defaults, "prob": 0.5, "resize_min": 0.9}

    def validate(self) -> None:
        super().validate()
        self._need("prob", 0.0 <= float(self.p["prob"]) <= 1.0, "must be in [0, 1]")
        self._need("resize_min", 0.0 < float(self.p["resize_min"]) <= 1.0, "must be in (0, 1]")

    def draws(self, i: int, t: int) -> torch.Tensor:
        return torch.rand(4, generator=sample_generator(sample_seed(self.seed, i, f"dim:{t}")))

    def make_transform(self, act, idx, t, shape):
        H, W = shape[-2:]
        prob, rmin = float(self.p["prob"]), float(self.p["resize_min"])
        plans = []
        for i in act.tolist():
            u = self.draws(int(idx[i]), t).tolist()
            if u[0] >= prob:
                plans.append(None)
                continue
            lo = max(1, math.floor(rmin * H))
            rh = min(H, lo + int(u[1] * (H - lo + 1)))
            rw = min(W, max(1, round(W * rh / H)))
            top = min(H - rh, int(u[2] * (H - rh + 1)))
            left = min(W - rw, int(u[3] * (W - rw + 1)))
            plans.append((rh, rw, top, left))

        def tf(xg: torch.Tensor) -> torch.Tensor:
            out = []
            for j, pl in enumerate(plans):
                xj = xg[j:j + 1]
                if pl is not None:
                    rh, rw, top, left = pl
                    xj = F.interpolate(xj, size=(rh, rw), mode="nearest")
                    xj = F.pad(xj, (left, W - rw - left, top, H - rh - top))
                out.append(xj)
            return torch.cat(out)

        return tf
