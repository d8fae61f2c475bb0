"""DIM's resize + pad runs as one gather over the batch and gives exactly the per-image numbers
(values and gradients) of the interpolate + pad loop it replaced."""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F

from roz.attacks.dim import DIM, _batched_resize_pad


def _per_image(plans, H, W):
    """The replaced implementation: one nearest interpolate + zero pad per image."""

    def tf(xg):
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


def _plans(n, H, W, rng):
    out = []
    for _ in range(n):
        if rng.random() < 0.3:
            out.append(None)
            continue
        rh = rng.randint(max(1, int(0.5 * H)), H)
        rw = min(W, max(1, round(W * rh / H)))
        out.append((rh, rw, rng.randint(0, H - rh), rng.randint(0, W - rw)))
    return out


def test_batched_resize_pad_equals_per_image_values_and_gradients():
    rng = random.Random(0)
    for H, W in ((32, 32), (224, 224), (37, 29)):
        plans = _plans(12, H, W, rng)
        x = torch.rand(12, 3, H, W, dtype=torch.float32)
        xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        ya, yb = _batched_resize_pad(plans, H, W)(xa), _per_image(plans, H, W)(xb)
        assert torch.equal(ya, yb)
        w = torch.randn_like(ya)
        (ya * w).sum().backward()
        (yb * w).sum().backward()
        assert torch.equal(xa.grad, xb.grad)


def test_dim_transform_is_the_batched_one():
    dim = DIM(torch.nn.Identity(), eps_space="pixel", seed=3)
    act, idx = torch.arange(6), torch.arange(100, 106)
    x = torch.rand(6, 3, 40, 40)
    tf = dim.make_transform(act, idx, 2, x.shape)
    plans = []
    for i in idx.tolist():  # the plan DIM draws for (seed, sample, step), as documented
        u = dim.draws(i, 2).tolist()
        if u[0] >= 0.5:
            plans.append(None)
            continue
        rh = min(40, 36 + int(u[1] * 5))
        rw = min(40, max(1, round(40 * rh / 40)))
        plans.append((rh, rw, min(40 - rh, int(u[2] * (40 - rh + 1))), min(40 - rw, int(u[3] * (40 - rw + 1)))))
    assert any(p is not None for p in plans) and any(p is None for p in plans)
    assert torch.equal(tf(x), _per_image(plans, 40, 40)(x))
