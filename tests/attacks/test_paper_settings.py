"""Paper-faithful attack settings (Wang et al.'s code, wang-research-lab/roz): DeepFool over all
classes, NES/SPSA sigma in the eps space, the official minimal-eps search, BIM schedules."""

from __future__ import annotations

import math

import pytest
import torch

from roz.attacks import create_attack, evaluate_attack
from roz.errors import RozError


class _Linear3(torch.nn.Module):
    """Three classes on a 3x2x2 image, true class 0 at x = 0.5. Class 1 is the runner-up on the
    clean input but its boundary is far (a gentle slope); class 2 ranks last yet is 20x closer."""

    std = (1.0, 1.0, 1.0)

    def forward(self, x):
        m = (x - 0.5).flatten(1)
        z1 = -0.1 + 0.025 * m[:, 0:4].sum(1)  # boundary at L-inf distance 0.1 / 0.1 = 1.0 (beyond [0, 1])
        z2 = -0.5 + 2.5 * m[:, 4:8].sum(1)  # boundary at L-inf distance 0.5 / 10 = 0.05
        return torch.stack([torch.zeros_like(z1), z1, z2], 1)


def test_deepfool_searches_all_classes_by_default():
    model = _Linear3().eval()
    x, y, idx = torch.full((1, 3, 2, 2), 0.5), torch.tensor([0]), torch.tensor([0])
    full = create_attack("deepfool", model)
    assert full.params()["candidates"] == "all" and full.params()["candidates_resolved"] == "all classes"
    _, norm_all = full.minimal_perturb(x, y, idx)
    _, norm_top2 = create_attack("deepfool", model, candidates=2).minimal_perturb(x, y, idx)
    assert float(norm_all[0]) == pytest.approx(0.05 * 1.02, rel=1e-3)  # the closest boundary, class 2
    assert math.isinf(float(norm_top2[0]))  # top-2 sees only class 1, whose boundary lies outside [0, 1]
    for bad in (1, "some", True):
        with pytest.raises(RozError, match="candidates"):
            create_attack("deepfool", model, candidates=bad)


class _Recorder(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model, self.mean, self.std, self.seen = model, model.mean, model.std, []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.model(x)


@pytest.mark.parametrize("space,scale", [("pixel", 1.0), ("normalized", 0.25)])
def test_spsa_sigma_is_in_the_eps_space(tiny, data, space, scale):
    x, y, idx = data
    rec = _Recorder(tiny).eval()
    atk = create_attack("spsa", rec, eps=0.01, eps_space=space, q=3, steps=1, early_stop=False, sigma=0.004)
    atk.perturb(x[:1], y[:1], idx[:1])
    probes = next(s for s in rec.seen if s.shape[0] == 6)  # the 2q antithetic points around x
    inside = ((x[:1] > 0.01) & (x[:1] < 0.99)).expand_as(probes)  # queries are clipped to [0, 1]
    offset = (probes - x[:1]).abs()[inside]
    assert inside.float().mean() > 0.5
    # Rademacher directions: every pixel is offset by exactly sigma, in pixels sigma * std (0.25)
    assert torch.allclose(offset, torch.full_like(offset, 0.004 * scale), atol=1e-6)
    assert atk.params()["sigma_space"] == space


def test_paper_min_eps_search_is_the_official_grid(tiny, data):
    x, y, idx = data
    x, y, idx = x[:16], y[:16], idx[:16]
    rows, m = evaluate_attack(tiny, [(x, y, idx)], "bim", eps_grid=(8 / 255,), min_eps=True,
                              params={"min_eps_protocol": "paper"})
    p = m["protocol"]
    grid = [k / 1000 for k in range(1, 10)]
    assert p["min_eps_protocol"] == "paper" and p["min_eps_space"] == "normalized" and p["eps_space"] == "pixel"
    assert p["min_eps_grid"] == pytest.approx(grid)
    assert p["min_eps_params"]["steps"] == 20 and p["min_eps_params"]["alpha_factor"] == 0.15
    assert p["min_eps_params"]["eps_space"] == "normalized"
    trial = create_attack("bim", tiny, eps=grid[-1], eps_space="normalized", steps=20)
    ok = [r for r in rows if r["clean_correct"]]
    assert ok
    for r in ok:
        i = [int(v) for v in idx].index(r["index"])
        xi, yi, ii = x[i:i + 1], y[i:i + 1], idx[i:i + 1]

        def fooled(e):
            return bool(tiny(trial.perturb(xi, yi, ii, eps=torch.tensor([e]))).argmax(1) != yi)

        if math.isinf(r["min_eps"]):
            assert not fooled(grid[-1])
        else:
            j = grid.index(r["min_eps"])
            assert fooled(grid[j]) and (j == 0 or not fooled(grid[j - 1]))


def test_paper_min_eps_deepfool_in_normalized_units_and_errors(tiny, data):
    x, y, idx = data
    batch = [(x[:12], y[:12], idx[:12])]
    rows_roz, _ = evaluate_attack(tiny, batch, "deepfool", eps_grid=(8 / 255,), min_eps=True)
    rows_pap, m = evaluate_attack(tiny, batch, "deepfool", eps_grid=(8 / 255,), min_eps=True,
                                  params={"min_eps_protocol": "paper"})
    assert m["protocol"]["min_eps_space"] == "normalized"
    for a, b in zip(rows_roz, rows_pap):
        if a["clean_correct"] and math.isfinite(a["min_eps"]):
            assert b["min_eps"] == pytest.approx(a["min_eps"] / 0.25, rel=1e-4)  # tiny's std is 0.25
    with pytest.raises(RozError, match="fixes the search"):
        evaluate_attack(tiny, batch, "bim", min_eps=True, params={"min_eps_protocol": "paper", "min_eps_grid": [0.01]})
    with pytest.raises(RozError, match="no minimal-eps search for 'pgd'"):
        evaluate_attack(tiny, batch, "pgd", min_eps=True, params={"min_eps_protocol": "paper"})
    with pytest.raises(RozError, match="unknown min_eps_protocol"):
        evaluate_attack(tiny, batch, "bim", min_eps=True, params={"min_eps_protocol": "fast"})


def test_bim_schedules_and_the_weak_schedule_note(tiny, data):
    x, y, idx = data
    x, y, idx = x[:32], y[:32], idx[:32]
    e = 1 / 255
    paper = create_attack("bim", tiny, eps=e, early_stop=False)
    kurakin = create_attack("bim", tiny, eps=e, early_stop=False, schedule="kurakin")
    fgsm = create_attack("fgsm", tiny, eps=e, early_stop=False)
    assert paper.resolved() == {"steps_resolved": 1, "alpha_resolved": pytest.approx(0.15 * e)}
    assert kurakin.resolved() == {"steps_resolved": 1, "alpha_resolved": pytest.approx(1 / 255)}
    assert create_attack("bim", tiny, eps=4 / 255, schedule="kurakin").resolved()["steps_resolved"] == 5
    moved = (paper.perturb(x, y, idx) - x).abs().amax()
    assert float(moved) == pytest.approx(0.15 * e, rel=1e-3)  # the paper's BIM moves 0.15 eps at 1/255
    torch.testing.assert_close(kurakin.perturb(x, y, idx), fgsm.perturb(x, y, idx))  # Kurakin: a full step
    _, m = evaluate_attack(tiny, [(x, y, idx)], "bim", eps_grid=(e,))
    assert "weaker than FGSM" in m["protocol"]["note"]
    _, m = evaluate_attack(tiny, [(x, y, idx)], "transfer-bim", eps_grid=(e,), surrogate=tiny)
    assert "weaker than FGSM" in m["protocol"]["note"]
    _, m = evaluate_attack(tiny, [(x, y, idx)], "bim", eps_grid=(e,), params={"schedule": "kurakin"})
    assert "note" not in m["protocol"] and m["protocol"]["params"]["schedule"] == "kurakin"
    with pytest.raises(RozError, match="schedule"):
        create_attack("bim", tiny, schedule="fast")
