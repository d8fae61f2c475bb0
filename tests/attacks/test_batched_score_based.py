"""NES/SPSA send the queries of several samples through the model in one forward (as many as fit
in ``chunk`` rows); with ``chunk = 2q`` every forward holds one sample's queries, as the per-image
loop did. Both give the same adversarial images and query counts."""

from __future__ import annotations

import pytest
import torch

from roz.attacks.registry import create_attack


class _Counting(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net, self.input_size, self.wnids, self.batches = net, net.input_size, net.wnids, []

    def forward(self, x):
        self.batches.append(x.shape[0])
        return self.net(x)


@pytest.mark.parametrize("name", ["nes", "spsa"])
def test_batched_queries_equal_per_image(tiny, data, name):
    x, y, idx = data
    x, y, idx = x[:12], y[:12], idx[:12]
    q = 5
    runs = {}
    for chunk in (2 * q, 16 * q):  # one sample per forward (the old loop) / eight samples per forward
        model = _Counting(tiny).eval()
        atk = create_attack(name, model, eps=4 / 255, q=q, steps=3, early_stop=False, chunk=chunk, seed=11)
        runs[chunk] = (atk.perturb(x, y, idx), atk.last_queries.clone(), model.batches)
    (xa, qa, ba), (xb, qb, bb) = runs[2 * q], runs[16 * q]
    assert torch.equal(xa, xb) and torch.equal(qa, qb)
    assert max(ba) == 2 * q and max(bb) == 16 * q and len(bb) < len(ba)  # fewer, larger forwards
