"""Attack units through the engine (`roz run`): defaults, surrogate labels and bound fields recorded."""

from __future__ import annotations


import pytest


from roz import api  # noqa: E402
from roz.attacks import DEFAULT_EPS_GRID, DEFAULT_SURROGATE  # noqa: E402
from roz.engine.runner import RunOptions  # noqa: E402
from roz.errors import RozError  # noqa: E402


@pytest.fixture(scope="module")
def unitfx(seqfx):
    """The shared ImageFolder and its two tiny timm checkpoints (support.fixtures.seqfx)."""
    return {"data": seqfx["data"], "a": seqfx["model"], "b": seqfx["model_b"]}


def _run(fx, out, attacks):
    cfg = {"out": str(out), "models": [fx["a"]], "datasets": [{"name": "imagefolder", "root": str(fx["data"])}],
           "shifts": [], "attacks": attacks}
    return [r for r in api.run(cfg, options=RunOptions(batch_size=8)) if r.kind == "attack"]


def test_attack_units_record_defaults_labels_and_bounds(unitfx, tmp_path):
    (pgd, tr) = sorted(_run(unitfx, tmp_path / "r", [
        {"name": "pgd", "steps": 2, "min_eps": True, "min_eps_attack": "apgd-t",
         "min_eps_params": {"steps": 2, "n_target_classes": 2}, "min_eps_grid": [1 / 255, 4 / 255, 16 / 255]},
        {"name": "transfer-fgsm", "surrogate": unitfx["b"]}]), key=lambda r: r.attack["name"])
    p = pgd.attack  # the unit record keeps the attack protocol under "attack"
    assert p["eps"] == tuple(DEFAULT_EPS_GRID) and p["bounds"]["median_min_eps"] == "upper"
    assert p["bounds"]["robust_acc"] == "upper" and p["loss"] == "ce"
    assert p["min_eps_attack"] == "apgd-t" and p["min_eps_loss"] == "targeted-dlr"
    assert "median_min_eps" in pgd.metrics
    t = tr.attack
    assert t["surrogate"] == unitfx["b"] and t["params"]["label_map"] == "identity"
    assert t["loss"] == "ce on the surrogate" and set(t["bounds"]) == {"robust_acc", "success_rate"}
    with pytest.raises(RozError, match="label_map is not a run option"):
        _run(unitfx, tmp_path / "s", [{"name": "transfer-fgsm", "surrogate": unitfx["b"], "label_map": "wnid"}])
    assert DEFAULT_SURROGATE.endswith("@IMAGENET1K_V1")
