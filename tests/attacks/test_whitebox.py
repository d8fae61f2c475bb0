"""White-box attacks: monotone robust accuracy, ~0 at large eps, strength vs torchattacks."""

from __future__ import annotations

import pytest
import torch
import torchattacks

from roz.attacks import create_attack, evaluate_attack

GRID = (1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255, 64 / 255)
WHITE_BOX = {
    "fgsm": {}, "bim": {}, "mim": {}, "dim": {}, "deepfool": {}, "pgd": {"restarts": 2},
    "apgd-ce": {"steps": 20}, "apgd-t": {"steps": 10, "n_target_classes": 3},
    "fab-t": {"steps": 10, "n_target_classes": 2},
    "autoattack": {"apgd_steps": 10, "fab_steps": 10, "square_queries": 50, "n_target_classes": 2},
}


@pytest.mark.parametrize("name", sorted(WHITE_BOX))
def test_robust_acc_monotone_and_vanishes(tiny, data, name):
    x, y, idx = data
    slow = name in ("fab-t", "autoattack", "apgd-t", "dim")
    n = 24 if slow else 48
    grid = GRID[1:] if slow else GRID
    batches = [(x[:n // 2], y[:n // 2], idx[:n // 2]), (x[n // 2:n], y[n // 2:n], idx[n // 2:n])]
    rows, m = evaluate_attack(tiny, batches, name, eps_grid=grid, params=WHITE_BOX[name])
    assert m["clean_top1"] >= 0.9
    accs = [m[f"robust_acc@{k}"] for k in ("1/255", "2/255", "4/255", "8/255", "16/255", "64/255")[-len(grid):]]
    assert all(b <= a + 1e-9 for a, b in zip(accs, accs[1:])), accs
    assert accs[-1] <= 0.02, accs
    assert m["robust_acc@8/255"] < m["clean_top1"]  # 8/255 already breaks some points
    assert m["success_rate@64/255"] >= 0.98
    assert len(rows) == n and {"adv_pred@8/255", "robust@8/255", "queries"} <= set(rows[0])


def test_pgd_at_least_as_strong_as_torchattacks(tiny):
    from support.attacks_fixtures import make_data

    x, y = make_data(192, seed=11)
    idx = torch.arange(192)
    eps, alpha, steps = 6 / 255, 1.5 / 255, 10
    accs = {}
    for rs in (False, True):
        xo = create_attack("pgd", tiny, eps=eps, alpha=alpha, steps=steps, random_start=rs).perturb(x, y, idx)
        torch.manual_seed(0)
        xt = torchattacks.PGD(tiny, eps=eps, alpha=alpha, steps=steps, random_start=rs)(x, y)
        with torch.no_grad():
            ok_o, ok_t = tiny(xo).argmax(1) == y, tiny(xt).argmax(1) == y
        accs[rs] = (ok_o.float().mean().item(), ok_t.float().mean().item())
        if not rs:  # same trajectory until we stop early on success: dominance per sample
            assert not (ok_o & ~ok_t).any()
    acc_o, acc_t = accs[True]
    assert 0.05 < acc_t < 0.98  # the budget is informative
    assert acc_o <= acc_t + 0.01, accs


def test_apgd_at_least_as_strong_as_torchattacks_port(tiny, data):
    x, y, idx = data
    eps = 6 / 255
    xo = create_attack("apgd-ce", tiny, eps=eps, steps=20).perturb(x, y, idx)
    xt = torchattacks.APGD(tiny, eps=eps, steps=20, loss="ce", seed=0)(x, y)
    with torch.no_grad():
        acc_o = (tiny(xo).argmax(1) == y).float().mean().item()
        acc_t = (tiny(xt).argmax(1) == y).float().mean().item()
    assert acc_o <= acc_t + 0.02, (acc_o, acc_t)


def test_schedules_follow_the_paper(tiny):
    assert create_attack("bim", tiny, eps=8 / 255).resolved()["steps_resolved"] == 10
    assert create_attack("bim", tiny, eps=1 / 255).resolved()["steps_resolved"] == 1
    p = create_attack("mim", tiny, eps=8 / 255).params()
    assert p["steps"] == 19 and p["momentum"] == 1.0 and abs(p["alpha_resolved"] - 0.15 * 8 / 255) < 1e-12
    assert create_attack("transfer-mim", tiny, surrogate=tiny).params()["steps"] == 9
    assert create_attack("deepfool", tiny).params()["max_iter"] == 50
    nes = create_attack("nes", tiny, eps=8 / 255).params()
    assert nes["q"] == 100 and nes["sigma"] == 0.001 and nes["steps_resolved"] == 10
    assert nes["max_queries"] == 10 * 201 + 1
    aa = create_attack("autoattack", tiny).params()
    assert aa["apgd_steps"] == 100 and aa["n_target_classes"] == 9 and aa["square_queries"] == 5000
    assert list(aa["stages"]) == ["apgd-ce", "apgd-t", "fab-t", "square"]


def test_fgsm_is_one_full_step(tiny, data):
    x, y, idx = data
    xa = create_attack("fgsm", tiny, eps=4 / 255, early_stop=False).perturb(x, y, idx)
    d = (xa - x).abs()
    inner = (x > 4 / 255) & (x < 1 - 4 / 255)
    assert torch.allclose(d[inner], torch.full_like(d[inner], 4 / 255), atol=1e-6)


def test_autocast_does_not_change_gradients(tiny, data):
    x, y, idx = data
    a = create_attack("bim", tiny, eps=8 / 255)
    ref = a.perturb(x, y, idx)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        amp = a.perturb(x, y, idx)
    assert torch.equal(ref, amp)


def test_autoattack_stages_only_attack_robust_points(tiny, data, monkeypatch):
    from roz.attacks.square import Square

    x, y, idx = data
    x, y, idx = x[:32], y[:32], idx[:32]
    seen = []
    orig = Square._perturb

    def spy(self, xs, ys, ids, e, en):
        seen.append(xs.shape[0])
        return orig(self, xs, ys, ids, e, en)

    monkeypatch.setattr(Square, "_perturb", spy)
    aa = create_attack("autoattack", tiny, eps=5 / 255, apgd_steps=10, fab_steps=10, square_queries=30,
                       n_target_classes=2)
    xa = aa.perturb(x, y, idx)
    before_square = sum(1 for s in aa.last_stage if s in ("", "square"))
    clean_wrong = int((tiny(x).argmax(1) != y).sum())
    assert seen == [before_square - clean_wrong] or (not seen and before_square == clean_wrong)
    fooled = (tiny(xa).argmax(1) != y)
    assert [bool(s) for s in aa.last_stage] == [bool(f) and ok for f, ok in zip(fooled, tiny(x).argmax(1) == y)]
    assert set(aa.last_stage) <= {"", "apgd-ce", "apgd-t", "fab-t", "square"}
