"""Score-based and transfer attacks: success, query budgets, no gradient access to the target."""

from __future__ import annotations

import pytest
import torch

from roz.attacks import create_attack, evaluate_attack
from roz.attacks.transfer import resize


@pytest.mark.parametrize("name,params,budget", [
    ("nes", {}, lambda steps: steps * 201 + 1),
    ("spsa", {}, lambda steps: steps * 201 + 1),
    ("square", {"n_queries": 150}, lambda steps: 150),
])
def test_black_box_succeeds_within_budget(tiny, data, name, params, budget):
    x, y, idx = data
    x, y, idx = x[:16], y[:16], idx[:16]
    eps = 24 / 255
    if name != "square":
        params = {**params, "steps": 10}
    a = create_attack(name, tiny, eps=eps, **params)
    assert not a.uses_gradients
    with torch.no_grad():  # score-based: works with autograd disabled, i.e. never reads gradients
        xa = a.perturb(x, y, idx)
        fooled = (tiny(xa).argmax(1) != y).float().mean().item()
    assert fooled >= 0.5, fooled
    steps = a.resolved().get("steps_resolved", 0)
    assert int(a.last_queries.max()) <= budget(steps)
    assert int(a.last_queries.min()) >= 1
    assert (xa - x).abs().max() <= eps + 1e-6


def test_nes_spends_exactly_its_budget_without_early_stop(tiny, data):
    x, y, idx = data
    a = create_attack("nes", tiny, eps=2 / 255, q=3, early_stop=False)
    a.perturb(x[:4], y[:4], idx[:4])
    steps = a.resolved()["steps_resolved"]
    assert a.last_queries.tolist() == [steps * 7 + 1] * 4 == [a.resolved()["max_queries"]] * 4


class _Guard(torch.nn.Module):
    """Wraps the target; fails if anything asks for its gradients."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.input_size = net.input_size
        self.wnids = net.wnids
        self.calls = 0
        net.register_full_backward_hook(self._bw)

    @staticmethod
    def _bw(*_):
        raise AssertionError("backward through the target")

    def forward(self, x):
        self.calls += 1
        assert not torch.is_grad_enabled() and not x.requires_grad, "gradient-enabled call of the target"
        return self.net(x)


@pytest.mark.parametrize("name", ["transfer-fgsm", "transfer-bim", "transfer-mim", "transfer-dim"])
def test_transfer_never_queries_target_gradients(name, tiny, tiny24):
    from support.attacks_fixtures import make_data

    import copy

    surrogate = tiny  # 16 px
    target = _Guard(copy.deepcopy(tiny24)).eval()  # 24 px, trained separately
    x, y = make_data(32, seed=5, size=24)
    idx = torch.arange(32)
    atk = create_attack(name, target, eps=8 / 255, surrogate=surrogate)
    calls = target.calls
    xa = atk.perturb(x, y, idx)
    assert target.calls == calls  # crafting never calls the target, not even forward
    assert atk.last_queries.sum() == 0
    assert (xa - x).abs().max() <= 8 / 255 + 1e-6 and xa.shape == x.shape
    rows, m = evaluate_attack(target, [(x, y, idx)], name, eps_grid=(8 / 255, 48 / 255), surrogate=surrogate,
                              params={} if name == "transfer-fgsm" else {"steps": 8})
    assert m["robust_acc@48/255"] < m["clean_top1"] - 0.3  # transfers at large eps
    assert m["mean_queries"] == 0 and m["protocol"]["params"]["surrogate_input_size"] == [16, 16]


def test_transfer_mapping_is_faithful(tiny):
    x = torch.rand(2, 3, 24, 24)
    assert torch.equal(resize(x, (24, 24)), x)
    d = (torch.rand(2, 3, 16, 16) * 2 - 1) * 0.03
    up = resize(d, (24, 24))
    assert up.abs().max() <= 0.03 + 1e-7  # bilinear keeps the perturbation in the ball
    target = train_tiny_like(tiny)
    a = create_attack("transfer-bim", target, eps=0.0, surrogate=tiny)
    y = torch.zeros(2, dtype=torch.long)
    assert torch.equal(a.perturb(x, y), x)  # eps = 0: the target sees its own clean pixels


def train_tiny_like(net):
    import copy

    t = copy.deepcopy(net)
    t.input_size = (24, 24)
    return t


def test_transfer_label_map_and_errors(tiny, data):
    from roz.errors import RozError

    x, y, idx = data
    y5 = y % 5 + 5  # target classes 5..9; the surrogate only knows 5 classes
    with pytest.raises(RozError, match="label_map"):  # the 5-class surrogate declares no classes
        create_attack("transfer-fgsm", tiny, surrogate=lambda_model(tiny, 5))
    a = create_attack("transfer-fgsm", tiny, surrogate=lambda_model(tiny, 5), label_map="identity")
    with pytest.raises(RozError, match="outside the surrogate's 5 classes"):
        a.perturb(x[:4], y5[:4], idx[:4])
    b = create_attack("transfer-fgsm", tiny, surrogate=lambda_model(tiny, 5), label_map=[k % 5 for k in range(10)])
    assert (b.perturb(x[:4], y5[:4], idx[:4]) - x[:4]).abs().max() > 0
    with pytest.raises(RozError, match="surrogate"):
        create_attack("bim", tiny, surrogate=tiny)


def lambda_model(net, k):
    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x)[:, :k]

    return Head().eval()


def test_default_surrogate_missing_weights_is_actionable(tiny, data, monkeypatch):
    import torchvision

    from roz.errors import ModelError

    def offline(*a, **k):
        raise RuntimeError("no network")

    monkeypatch.setattr(torchvision.models, "get_model", offline)
    x, y, idx = data
    with pytest.raises(ModelError, match="surrogate"):
        evaluate_attack(tiny, [(x[:2], y[:2], idx[:2])], "transfer-fgsm")
