"""Transfer attacks across label spaces: a surrogate with other classes is an error unless mapped."""

from __future__ import annotations

import copy

import pytest
import torch

from roz.attacks import DEFAULT_SURROGATE, create_attack, evaluate_attack
from roz.errors import RozError


class Permuted(torch.nn.Module):
    """The same network with its outputs in another order (and declaring the matching wnids)."""

    def __init__(self, net, perm):
        super().__init__()
        self.net, self.perm = net, torch.as_tensor(perm)
        self.input_size = net.input_size
        self.wnids = tuple(net.wnids[int(k)] for k in self.perm)
        self.eval()

    def forward(self, x):
        return self.net(x)[:, self.perm]


def _relabelled(net, wnids):
    m = copy.deepcopy(net)
    m.wnids = tuple(wnids)
    return m


def test_same_size_but_different_classes_is_an_error(tiny, data):
    x, y, idx = data
    other = _relabelled(tiny, [f"n9{k:07d}" for k in range(10)])  # 10 classes, none of the target's
    with pytest.raises(RozError, match="differ from the target"):
        create_attack("transfer-fgsm", tiny, surrogate=other)
    with pytest.raises(RozError, match="label_map"):
        evaluate_attack(tiny, [(x[:4], y[:4], idx[:4])], "transfer-bim", surrogate=other)
    with pytest.raises(RozError, match="no class for 10"):
        create_attack("transfer-fgsm", tiny, surrogate=other, label_map="wnid")
    shuffled = Permuted(tiny, list(range(9, -1, -1)))  # same classes, another order
    with pytest.raises(RozError, match="first difference at class 0"):
        create_attack("transfer-fgsm", tiny, surrogate=shuffled)


def test_wnid_map_attacks_the_true_label_through_the_surrogate(tiny, tiny24, data):
    from support.attacks_fixtures import make_data

    x, y = make_data(16, seed=5, size=24)
    idx = torch.arange(16)
    perm = [3, 7, 0, 9, 1, 5, 2, 8, 6, 4]
    ref = create_attack("transfer-bim", tiny24, eps=6 / 255, surrogate=tiny).perturb(x, y, idx)
    wn = create_attack("transfer-bim", tiny24, eps=6 / 255, surrogate=Permuted(tiny, perm), label_map="wnid")
    explicit = create_attack("transfer-bim", tiny24, eps=6 / 255, surrogate=Permuted(tiny, perm),
                             label_map=[perm.index(k) for k in range(10)])
    assert torch.equal(wn.perturb(x, y, idx), ref)  # same attack as the unpermuted surrogate
    assert torch.equal(explicit.perturb(x, y, idx), ref)
    assert "wnid" in wn.params()["label_mapping"]
    # mapping by position instead (what the old code did silently) attacks other labels
    wrong = create_attack("transfer-bim", tiny24, eps=6 / 255, surrogate=Permuted(tiny, perm), label_map="identity")
    assert not torch.equal(wrong.perturb(x, y, idx), ref)


def test_group_map_takes_the_max_over_surrogate_classes(tiny, data):
    x, y, idx = data
    groups = [[k, (k + 1) % 10] for k in range(10)]
    a = create_attack("transfer-fgsm", tiny, eps=4 / 255, surrogate=tiny, label_map=groups)
    z = tiny(x[:4])
    mapped = a.attack.model(x[:4])
    assert torch.allclose(mapped, torch.maximum(z, z.roll(-1, dims=1)))
    assert (a.perturb(x[:4], y[:4], idx[:4]) - x[:4]).abs().max() > 0
    for bad, msg in (([0] * 9, "9 entries"), ([[]] + [0] * 9, r"label_map\[0\]"), ("names", "not one of"),
                     ([12] * 10, "surrogate class 12")):
        with pytest.raises(RozError, match=msg):
            create_attack("transfer-fgsm", tiny, surrogate=tiny, label_map=bad).perturb(x[:2], y[:2], idx[:2])


def test_default_surrogate_is_v1_and_declares_imagenet_wnids(tiny, data, monkeypatch):
    """The default ResNet-152 (stubbed: no weights offline) against a 200-class target."""
    import torchvision
    from timm.data import ImageNetInfo

    asked = []

    def fake_get_model(arch, weights=None):
        asked.append((arch, weights))
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, 1000))

    monkeypatch.setattr(torchvision.models, "get_model", fake_get_model)
    imagenet = ImageNetInfo("imagenet-1k").label_names()
    target = _relabelled(tiny, imagenet[100:110])  # a subset of ImageNet classes (like ImageNet-R's 200)
    x, y, idx = data
    with pytest.raises(RozError, match="differ from the target"):
        evaluate_attack(target, [(x[:4], y[:4], idx[:4])], "transfer-fgsm")
    rows, m = evaluate_attack(target, [(x[:4], y[:4], idx[:4])], "transfer-fgsm", params={"label_map": "wnid"})
    assert asked[-1] == ("resnet152", torchvision.models.ResNet152_Weights.IMAGENET1K_V1)
    assert DEFAULT_SURROGATE == "torchvision:resnet152@IMAGENET1K_V1"
    assert m["protocol"]["params"]["surrogate"] == DEFAULT_SURROGATE
    atk = create_attack("transfer-fgsm", target, label_map="wnid")
    assert atk.groups == [[k] for k in range(100, 110)]
