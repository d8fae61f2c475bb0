"""Eps validation, margin-loss minimal eps, bound flags, and attacks without torchattacks."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from roz.attacks import BOUNDS, create_attack, evaluate_attack
from roz.errors import RozError


@pytest.mark.parametrize("bad", [-1 / 255, 2.0, float("nan"), float("inf")])
def test_per_sample_eps_is_validated(tiny, data, bad):
    x, y, idx = data
    a = create_attack("pgd", tiny, eps=4 / 255, steps=2)
    eps = torch.tensor([4 / 255, bad, 4 / 255, 4 / 255])
    with pytest.raises(RozError, match="outside the valid range"):
        a.perturb(x[:4], y[:4], idx[:4], eps=eps)
    with pytest.raises(RozError, match="outside the valid range"):
        create_attack("bim", tiny, eps=bad)
    grid = (1 / 255, 2 / 255, bad) if not bad < 0 else (bad, 1 / 255)
    with pytest.raises(RozError, match="min_eps_grid"):
        evaluate_attack(tiny, [(x[:4], y[:4], idx[:4])], "fgsm", min_eps=True, params={"min_eps_grid": grid})
    with pytest.raises(RozError, match="eps"):
        evaluate_attack(tiny, [(x[:4], y[:4], idx[:4])], "fgsm", eps_grid=(1 / 255, bad))


def test_eps_range_follows_the_space(tiny, data):
    x, y, idx = data
    a = create_attack("fgsm", tiny, eps=1.0)  # the whole pixel cube: allowed
    assert a.eps_limit() == 1.0
    with pytest.raises(RozError, match="3 per-sample eps values for a batch of 4"):
        a.perturb(x[:4], y[:4], idx[:4], eps=torch.full((3,), 1 / 255))
    n = create_attack("fgsm", tiny, eps=4.0, eps_space="normalized")  # std 0.25: pixel radius 1
    assert n.eps_limit() == pytest.approx(4.0)
    with pytest.raises(RozError, match=r"eps \* std\[c\] must stay <= 1"):
        create_attack("fgsm", tiny, eps=4.5, eps_space="normalized")
    with pytest.raises(RozError, match="increasing"):
        evaluate_attack(tiny, [(x[:4], y[:4], idx[:4])], "fgsm", min_eps=True,
                        params={"min_eps_grid": (2 / 255, 1 / 255)})


def test_margin_loss_search_is_tighter_and_bounds_are_recorded(tiny, data):
    x, y, idx = data
    batches = [(x[:48], y[:48], idx[:48])]
    grid = tuple(k / 255 for k in (0.5, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32))
    rows_ce, m_ce = evaluate_attack(tiny, batches, "pgd", eps_grid=(4 / 255,), min_eps=True,
                                    params={"min_eps_grid": grid})
    rows_t, m_t = evaluate_attack(tiny, batches, "pgd", eps_grid=(4 / 255,), min_eps=True,
                                  params={"min_eps_grid": grid, "min_eps_attack": "apgd-t",
                                          "min_eps_params": {"steps": 10, "n_target_classes": 3}})
    ce = [r["min_eps"] for r in rows_ce if r["clean_correct"]]
    mt = [r["min_eps"] for r in rows_t if r["clean_correct"]]
    assert len(ce) >= 40 and all(math.isfinite(v) for v in ce + mt)
    assert m_t["median_min_eps"] <= m_ce["median_min_eps"]
    assert sum(mt) < sum(ce)  # strictly tighter on average (measured: 7.90/255 vs 8.19/255)
    assert m_t["robust_acc@4/255"] == m_ce["robust_acc@4/255"]  # the grid attack itself is unchanged
    p_ce, p_t = m_ce["protocol"], m_t["protocol"]
    assert p_ce["bounds"] == BOUNDS == {"robust_acc": "upper", "success_rate": "lower", "min_eps": "upper",
                                        "median_min_eps": "upper"}
    assert p_ce["loss"] == "ce" and p_ce["min_eps_attack"] == "pgd" and p_ce["min_eps_loss"] == "ce"
    assert p_t["min_eps_attack"] == "apgd-t" and p_t["min_eps_loss"] == "targeted-dlr"
    assert p_t["min_eps_params"]["steps"] == 10 and "apgd-t" in p_t["min_eps_method"]
    _, m_plain = evaluate_attack(tiny, batches, "fgsm", eps_grid=(4 / 255,))
    assert set(m_plain["protocol"]["bounds"]) == {"robust_acc", "success_rate"}
    with pytest.raises(RozError, match="min_eps is off"):
        evaluate_attack(tiny, batches, "pgd", params={"min_eps_attack": "apgd-t"})


def test_dlr_loss_option(tiny, data):
    x, y, idx = data
    ce = create_attack("pgd", tiny, eps=12 / 255, steps=5, early_stop=False)
    dlr = create_attack("pgd", tiny, eps=12 / 255, steps=5, early_stop=False, loss="dlr")
    assert dlr.params()["loss"] == "dlr" and dlr.loss_name() == "dlr" and ce.loss_name() == "ce"
    xd = dlr.perturb(x[:16], y[:16], idx[:16])
    assert not torch.equal(xd, ce.perturb(x[:16], y[:16], idx[:16]))
    with torch.no_grad():
        assert (tiny(xd).argmax(1) != y[:16]).float().mean() >= 0.5  # the DLR ascent breaks points
    with pytest.raises(RozError, match="loss"):
        create_attack("bim", tiny, loss="hinge")
    two = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 2)).eval()
    with pytest.raises(RozError, match=">= 3 classes"):
        create_attack("bim", two, loss="dlr").perturb(x[:2], torch.zeros(2, dtype=torch.long))


_NO_TORCHATTACKS = """
import sys
sys.modules["torchattacks"] = None  # import torchattacks -> ImportError
import torch
from roz.attacks import create_attack
from roz.errors import RozError
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 5)).eval()
x, y = torch.rand(4, 3, 8, 8), torch.zeros(4, dtype=torch.long)
for name in ("fgsm", "bim", "pgd", "mim", "deepfool", "apgd-ce", "square", "nes"):
    create_attack(name, net, eps=4 / 255, **({"q": 2} if name == "nes" else {})).perturb(x, y)
create_attack("autoattack", net, stages=("apgd-ce", "square"), apgd_steps=2, square_queries=5).perturb(x, y)
for name in ("fab-t", "autoattack"):
    try:
        create_attack(name, net)
    except RozError as e:
        assert "pip install torchattacks" in str(e) and name in str(e), str(e)
        print("clear error:", name)
"""


def test_attacks_work_without_torchattacks():
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", _NO_TORCHATTACKS], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split("\n")[:2] == ["clear error: fab-t", "clear error: autoattack"]
