"""The report's three-way contrast (issue 14): ER figures grouped by kind with a grid of each kind's
averaged shifts, and the console summary (what ``roz report`` / ``roz demo`` print) with the
natural, synthetic and adversarial averages and their intervals."""

from __future__ import annotations

import pytest

from roz.engine.record import UnitRecord
from roz.engine.store import ResultStore
from roz.report import build_report

REF = "imagenet-val"
# model -> (role, clean, natural-shift top-1, corruption top-1, robust acc, typographic top-1, flip probability)
MODELS = {
    "b1": ("standard", 20.0, 15.0, 10.0, 6.0, 12.0, 0.30),
    "b2": ("standard", 40.0, 31.0, 22.0, 15.0, 27.0, 0.22),
    "b3": ("standard", 60.0, 49.0, 37.0, 25.0, 44.0, 0.15),
    "b4": ("standard", 75.0, 64.0, 50.0, 33.0, 58.0, 0.11),
    "clip": ("zeroshot", 55.0, 52.0, 40.0, 8.0, 30.0, 0.08),
}


def _unit(uid, model, role, dataset, metrics, kind="eval", shift=None, attack=None) -> UnitRecord:
    return UnitRecord.from_json({
        "unit_id": uid, "kind": kind, "model": {"name": model, "spec": f"fixture:{model}", "role": role, "identity": {}},
        "dataset": {"name": dataset, "root": "/nonexistent", "n": 100, "protocol": {}}, "shift": shift,
        "attack": attack, "metrics": metrics, "protocol": {"seed": 0}, "timing": {"seconds": 1.0}})


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds") / "run"
    store = ResultStore(root, config={"models": list(MODELS)})
    for i, (m, (role, clean, nat, cor, rob, typo, fp)) in enumerate(MODELS.items()):
        units = [_unit(f"{i}a", m, role, REF, {"top1": clean}), _unit(f"{i}b", m, role, "imagenetv2-matched-frequency", {"top1": nat}),
                 _unit(f"{i}c", m, role, REF, {"top1": cor}, shift={"name": "corruption", "corruption": "fog",
                                                                   "severity": 3}),
                 _unit(f"{i}d", m, role, REF, {"top1": typo}, shift={"name": "typographic", "n_words": 3}),
                 _unit(f"{i}e", m, role, REF, {"clean_top1": clean, "robust_acc@1/255": rob}, kind="attack",
                       attack={"name": "fgsm", "eps": [1 / 255], "eps_space": "pixel"}),
                 _unit(f"{i}f", m, role, REF, {"flip_prob": fp, "top5_dist": 1.0, "n": 33}, kind="perturbation",
                       shift={"name": "perturbation", "perturbation": "rotate", "difficulty": 1})]
        for u in units:
            store.write_unit(u, None)
    return build_report(root, root / "report", n_boot=50, formats=("svg",)).parent


def test_er_figures_are_grouped_by_kind_with_a_grid_per_kind(report):
    figs = report / "figures"
    for kind in ("natural", "synthetic", "adversarial"):
        assert (figs / f"grid_{kind}_shifts.svg").is_file(), kind
    for axis in ("corruption-mean", "typographic", "fgsm_1_255", "flip-rotate", "flip-mean"):
        assert (figs / f"shift_{REF}_{axis}.svg").is_file(), axis
    html = (report / "index.html").read_text()
    at = [html.index(f"<h3>{t}</h3>") for t in ("Natural shifts", "Synthetic shifts", "Adversarial attacks")]
    assert at == sorted(at)
    # the flip-rate axis is drawn under the synthetic kind, after the averaged shifts
    assert at[1] < html.index(f"<h4>{REF} rotate: 1 - flip rate</h4>") < at[2]
    assert html.index(f"<h4>{REF} corruptions (mean)</h4>") < html.index(f"<h4>{REF} rotate: 1 - flip rate</h4>")


def test_console_summary_has_the_three_averages_with_intervals(report):
    text = (report / "summary.txt").read_text()
    assert "ER averaged per kind of shift (95% bootstrap CI; never across kinds):" in text
    table = text.split("never across kinds):\n", 1)[1].splitlines()
    assert table[0].split() == ["model", "role", "natural", "ER", "natural", "CI", "synthetic", "ER", "synthetic",
                                "CI", "adversarial", "ER", "adversarial", "CI"]
    clip = next(line for line in table if line.startswith("clip "))
    assert clip.count("[") == 3 and "–" not in clip  # three intervals, none missing
