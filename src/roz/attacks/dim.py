"""DIM / DI-FGSM (Xie et al. 2019): MIM with input diversity.

At each step, with probability ``prob`` (0.5) the input is resized (nearest neighbour, as in
the original) to a random size in [resize_min * s, s] and zero-padded back to s at a random
offset; the gradient flows through the transform. The random draws come from a generator
seeded by (seed, sample index, step), so batched == per-sample. The resize + pad of a whole batch
is one gather (``_batched_resize_pad``), equal to the per-image interpolate + pad it replaced.
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

        return _batched_resize_pad(plans, H, W)


def _nearest_source(size: int, out: int) -> torch.Tensor:
    """Source index of each of ``out`` positions of a nearest resize from ``size`` — taken from
    ``F.interpolate`` itself (on an index ramp), so it is exactly the library's rounding."""
    ramp = torch.arange(size, dtype=torch.float64).view(1, 1, size)
    return F.interpolate(ramp, size=out, mode="nearest").view(-1).long()


def _batched_resize_pad(plans: list, H: int, W: int):
    """Every sample's resize + pad as one gather (was: one interpolate + pad per image).

    A nearest resize and a zero pad only copy pixels: output (r, c) of sample j is input
    (rows[j, r], cols[j, c]), or 0 outside the resized box. One indexed read does the whole batch
    and its gradient is the same copy backwards, so the numbers equal the per-image version's.
    """
    n = len(plans)
    rows, cols = torch.arange(H).repeat(n, 1), torch.arange(W).repeat(n, 1)
    inside_r, inside_c = torch.ones(n, H, dtype=torch.bool), torch.ones(n, W, dtype=torch.bool)
    for j, pl in enumerate(plans):
        if pl is None:
            continue
        rh, rw, top, left = pl
        rows[j], cols[j] = 0, 0
        rows[j, top:top + rh], cols[j, left:left + rw] = _nearest_source(H, rh), _nearest_source(W, rw)
        inside_r[j], inside_c[j] = False, False
        inside_r[j, top:top + rh], inside_c[j, left:left + rw] = True, True
    inside = inside_r[:, None, :, None] & inside_c[:, None, None, :]  # [n, 1, H, W]

    def tf(xg: torch.Tensor) -> torch.Tensor:
        dev = xg.device
        batch = torch.arange(n, device=dev)[:, None, None]
        out = xg[batch, :, rows.to(dev)[:, :, None], cols.to(dev)[:, None, :]].permute(0, 3, 1, 2)  # [n, C, H, W]
        return torch.where(inside.to(dev), out, torch.zeros((), dtype=out.dtype, device=dev))

    return tf
