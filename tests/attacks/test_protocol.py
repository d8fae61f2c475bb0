"""Protocol: batched == per-sample, eps spaces, minimal eps, registry errors, metrics."""

from __future__ import annotations

import math

import pytest
import torch

from roz.attacks import ATTACKS, PAPER_ATTACKS, create_attack, evaluate_attack
from roz.errors import RozError

CASES = {
    "fgsm": {}, "bim": {}, "mim": {}, "deepfool": {}, "dim": {}, "pgd": {"restarts": 2},
    "nes": {"q": 4}, "spsa": {"q": 4}, "square": {"n_queries": 60}, "apgd-ce": {"steps": 10},
    "apgd-t": {"steps": 5, "n_target_classes": 2}, "fab-t": {"steps": 5, "n_target_classes": 2},
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_batched_equals_per_sample(tiny, data, name):
    x, y, idx = data
    x, y, idx = x[:12], y[:12], idx[:12]
    a = create_attack(name, tiny, eps=6 / 255, **CASES[name])
    xb = a.perturb(x, y, idx)
    qb = a.last_queries.clone()
    xs, qs = [], []
    for i in range(12):
        xs.append(a.perturb(x[i:i + 1], y[i:i + 1], idx[i:i + 1]))
        qs.append(int(a.last_queries[0]))
    xs = torch.cat(xs)
    with torch.no_grad():
        assert torch.equal(tiny(xb).argmax(1), tiny(xs).argmax(1))
    assert (xb - xs).abs().max() <= 1e-5
    if name not in ("fab-t",):
        assert qb.tolist() == qs
    # and in another batch order / composition
    perm = torch.arange(11, -1, -1)
    xp = a.perturb(x[perm], y[perm], idx[perm])
    assert (xp - xb[perm]).abs().max() <= 1e-5


def test_seed_changes_randomized_attacks(tiny, data):
    x, y, idx = data
    a = create_attack("pgd", tiny, eps=6 / 255, seed=0).perturb(x[:8], y[:8], idx[:8])
    b = create_attack("pgd", tiny, eps=6 / 255, seed=1).perturb(x[:8], y[:8], idx[:8])
    assert not torch.equal(a, b)


def test_eps_space_normalized(tiny, data):
    x, y, idx = data
    eps = 8 / 255  # after normalisation with std 0.25: 2/255 in pixels
    a = create_attack("fgsm", tiny, eps=eps, eps_space="normalized", early_stop=False)
    xa = a.perturb(x, y, idx)
    d = (xa - x).abs()
    assert d.max() <= eps * 0.25 + 1e-6 and d.max() >= eps * 0.25 - 1e-6
    assert a.params()["eps_space"] == "normalized"
    rows, m = evaluate_attack(tiny, [(x, y, idx)], "fgsm", eps_grid=(eps,), params={"eps_space": "normalized"})
    rows_p, m_p = evaluate_attack(tiny, [(x, y, idx)], "fgsm", eps_grid=(eps * 0.25,))
    assert m["robust_acc@8/255"] == m_p["robust_acc@2/255"]
    assert m["eps_space"] == "normalized" and "normalized" in m["protocol"]["eps_unit"]
    nostd = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 10)).eval()
    with pytest.raises(RozError, match="std"):
        create_attack("fgsm", nostd, eps_space="normalized")


def test_min_eps_binary_search_and_deepfool(tiny, data):
    x, y, idx = data
    x, y, idx = x[:24], y[:24], idx[:24]
    grid = tuple(k / 255 for k in (1, 2, 4, 8, 16, 32))
    rows, m = evaluate_attack(tiny, [(x, y, idx)], "bim", eps_grid=(4 / 255,), min_eps=True,
                              params={"min_eps_grid": grid})
    ok = [r for r in rows if r["clean_correct"]]
    assert ok and all(r["min_eps"] in grid or math.isinf(r["min_eps"]) for r in ok)
    vals = sorted(r["min_eps"] for r in ok)
    assert m["median_min_eps"] == pytest.approx(vals[len(vals) // 2] if len(vals) % 2 else
                                                (vals[len(vals) // 2 - 1] + vals[len(vals) // 2]) / 2)
    # the attack succeeds at the found eps and fails one grid step below
    a = create_attack("bim", tiny, eps=4 / 255)
    for r in ok[:8]:
        i = [int(v) for v in idx].index(r["index"])
        j = grid.index(r["min_eps"])
        xi, yi, ii = x[i:i + 1], y[i:i + 1], idx[i:i + 1]
        assert tiny(a.perturb(xi, yi, ii, eps=torch.tensor([grid[j]]))).argmax(1) != yi
        if j > 0:
            assert tiny(a.perturb(xi, yi, ii, eps=torch.tensor([grid[j - 1]]))).argmax(1) == yi
    rows, m = evaluate_attack(tiny, [(x, y, idx)], "deepfool", eps_grid=(2 / 255, 8 / 255), min_eps=True)
    for r in rows:
        if r["clean_correct"]:
            assert r["robust@8/255"] == (r["min_eps"] > 8 / 255 + 1e-9)
    assert 0 < m["median_min_eps"] < 1


def test_evaluate_rows_metrics_and_protocol(tiny, data):
    x, y, idx = data
    y = y.clone()
    y[:3] = (y[:3] + 1) % 10  # three clean mistakes
    rows, m = evaluate_attack(tiny, [(x[:10], y[:10], idx[:10]), (x[10:20], y[10:20], idx[10:20])], "pgd",
                              eps_grid=(2 / 255, 8 / 255), params={"steps": 5}, seed=3)
    assert [r["index"] for r in rows] == idx[:20].tolist()
    assert not any(r["robust@2/255"] for r in rows[:3]) and all(r["queries"] == 0 for r in rows[:3])
    nc = sum(r["clean_correct"] for r in rows)
    assert m["clean_top1"] == nc / 20
    assert m["success_rate@8/255"] == pytest.approx((nc - 20 * m["robust_acc@8/255"]) / nc)
    p = m["protocol"]
    assert p["seed"] == 3 and p["eps_space"] == "pixel" and p["params"]["steps"] == 5
    assert p["params"]["alpha_factor"] == 0.25 and p["eps_grid"] == [2 / 255, 8 / 255]


def test_registry_and_user_errors(tiny, data):
    x, y, idx = data
    assert set(PAPER_ATTACKS) <= set(ATTACKS) and len(PAPER_ATTACKS) == 11
    assert {"pgd", "apgd-ce", "apgd-t", "square", "autoattack"} <= set(ATTACKS)
    with pytest.raises(RozError, match="unknown attack"):
        create_attack("cw", tiny)
    with pytest.raises(RozError, match="unknown parameter"):
        create_attack("bim", tiny, stepz=3)
    with pytest.raises(RozError, match="eps_space"):
        create_attack("bim", tiny, eps_space="lab")
    with pytest.raises(RozError, match="outside"):
        create_attack("bim", tiny, eps=8)
    with pytest.raises(RozError, match="steps"):
        create_attack("pgd", tiny, steps=0)
    with pytest.raises(RozError, match=r"\[0, 1\]"):
        create_attack("fgsm", tiny).perturb(x * 255, y)
    tiny.train()
    try:
        with pytest.raises(RozError, match="training mode"):
            create_attack("fgsm", tiny).perturb(x, y)
    finally:
        tiny.eval()
    with pytest.raises(RozError, match="eps_grid"):
        evaluate_attack(tiny, [(x, y, idx)], "fgsm", params={"eps": 0.1})
