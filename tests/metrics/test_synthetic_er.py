"""Effective robustness on the synthetic shifts and attacks a run measures itself (issue 14):
corruption units, typographic units and attack units on a reference dataset become shift axes
against its clean top-1 (``roz.engine.tables.accuracy_table``), fitted, scored and averaged per
kind (natural, synthetic, adversarial), never across kinds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from roz.engine.record import UnitRecord
from roz.engine.store import ResultStore
from roz.metrics.effective import compute_effective_robustness, make_shifts

REF = "imagenet-val"
# model -> (role, clean top-1, natural-shift top-1, corruption robustness factor, robust acc factor)
MODELS = {
    "resnet18": ("standard", 69.8, 57.3, 1.00, 0.30),
    "resnet34": ("standard", 73.3, 61.2, 0.95, 0.28),
    "resnet50": ("standard", 76.1, 63.3, 0.90, 0.33),
    "resnet101": ("standard", 77.4, 65.7, 0.85, 0.31),
    "clip-rn50": ("zeroshot", 59.8, 52.6, 0.40, 0.10),
}
DROPS = {"gaussian_noise": 30.0, "fog": 15.0}
SEVERITIES = (1, 3)
EPS = ("1/255", "4/255")
PARTIAL = "densenet121"  # a standard model without the (fog, 3) cell
ALL = {**MODELS, PARTIAL: ("standard", 74.4, 62.2, 0.92, 0.29)}
MEAN, FOG, ATTACK = f"{REF}~corruption-mean", f"{REF}~corruption-fog", f"{REF}~pgd@4/255"


def corruption_top1(clean: float, factor: float, corruption: str, severity: int) -> float:
    return clean - factor * DROPS[corruption] * severity / 3


def robust_acc(clean: float, factor: float, eps: str) -> float:
    return clean * factor / (1 + EPS.index(eps))


def _unit(uid, model, role, dataset, metrics, kind="eval", shift=None, attack=None) -> UnitRecord:
    return UnitRecord.from_json({
        "unit_id": uid, "kind": kind, "model": {"name": model, "spec": f"fixture:{model}", "role": role, "identity": {}},
        "dataset": {"name": dataset, "root": "/nonexistent", "n": 100, "protocol": {}}, "shift": shift,
        "attack": attack, "metrics": metrics, "protocol": {"seed": 0}, "skipped_files": [], "env": {},
        "timing": {"seconds": 1.0}})


def write_run(root, synthetic: bool = True) -> ResultStore:
    store = ResultStore(root, config={"models": list(ALL)})
    k = 0
    for model, (role, clean, nat, cf, af) in ALL.items():
        for ds, acc in ((REF, clean), ("imagenetv2-matched-frequency", nat)):
            k += 1
            store.write_unit(_unit(f"u{k:03d}", model, role, ds, {"top1": acc}), None)
        if not synthetic:
            continue
        for c in DROPS:
            for sev in SEVERITIES:
                if model == PARTIAL and (c, sev) == ("fog", 3):
                    continue
                k += 1
                store.write_unit(_unit(f"c{k:03d}", model, role, REF, {"top1": corruption_top1(clean, cf, c, sev)},
                                       shift={"name": "corruption", "corruption": c, "severity": sev}), None)
        k += 1
        store.write_unit(_unit(f"a{k:03d}", model, role, REF,
                               {"clean_top1": clean, **{f"robust_acc@{e}": robust_acc(clean, af, e) for e in EPS}},
                               kind="attack", attack={"name": "pgd", "eps": [1 / 255, 4 / 255], "eps_space": "pixel"}),
                         None)
    return store


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("synth"))


@pytest.fixture(scope="module")
def er(run):
    return compute_effective_robustness(run.accuracy_table(), n_boot=50, seed=0)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _hand_er(xs: dict, ys: dict, model: str) -> float:
    """OLS of logit(y) on logit(x) over the standard models having both, then ER of ``model``."""
    base = [m for m in ALL if ALL[m][0] == "standard" and m in xs and m in ys]
    slope, intercept = np.polyfit([_logit(xs[m] / 100) for m in base], [_logit(ys[m] / 100) for m in base], 1)
    return ys[model] - 100 / (1 + math.exp(-(slope * _logit(xs[model] / 100) + intercept)))


def test_corruption_and_attack_axes_are_fitted_and_scored(er):
    clean = {m: v[1] for m, v in MODELS.items()}
    mean = {m: np.mean([corruption_top1(clean[m], MODELS[m][3], c, s) for c in DROPS for s in SEVERITIES])
            for m in MODELS}
    fog = {m: np.mean([corruption_top1(clean[m], MODELS[m][3], "fog", s) for s in SEVERITIES]) for m in MODELS}
    clean[PARTIAL] = ALL[PARTIAL][1]  # it has the attack axis, not the corruption ones
    attack = {m: robust_acc(clean[m], ALL[m][4], "4/255") for m in ALL}
    for shift, ys in ((MEAN, mean), (FOG, fog), (ATTACK, attack)):
        assert shift in er.fits, shift
        assert er.er("clip-rn50", shift) == pytest.approx(_hand_er(clean, ys, "clip-rn50"), abs=1e-9), shift
    kinds = {s["name"]: s["kind"] for s in er.protocol["shifts"]}
    assert kinds[MEAN] == kinds[FOG] == kinds[f"{REF}~severity-3"] == "synthetic"
    assert kinds[ATTACK] == kinds[f"{REF}~pgd@1/255"] == "adversarial"
    rows = er.per_shift[er.per_shift["shift"].isin([MEAN, FOG, ATTACK])]
    assert len(rows) and not rows["natural"].any()
    assert er.protocol["natural_shifts"] == ["imagenetv2-matched-frequency"]


def test_headline_average_has_three_kinds_and_the_natural_one_is_unchanged(er, tmp_path):
    avg = er.average.set_index("model")
    clip = avg.loc["clip-rn50"]
    # synthetic: the corruption mean only (per-corruption and per-severity axes are breakdowns)
    assert er.protocol["synthetic_shifts"] == [MEAN] and clip["shifts_synthetic"] == MEAN
    assert clip["er_avg_synthetic"] == pytest.approx(er.er("clip-rn50", MEAN))
    assert clip["er_avg_synthetic_lo"] <= clip["er_avg_synthetic"] <= clip["er_avg_synthetic_hi"]
    adv = [f"{REF}~pgd@{e}" for e in EPS]
    assert sorted(clip["shifts_adversarial"].split(",")) == sorted(adv)
    assert clip["er_avg_adversarial"] == pytest.approx(np.mean([er.er("clip-rn50", s) for s in adv]))
    assert clip["er_avg_adversarial_lo"] <= clip["er_avg_adversarial"] <= clip["er_avg_adversarial_hi"]
    assert clip["shifts"] == "imagenetv2-matched-frequency"
    # the natural average is what it is on the same run without the synthetic and attack units
    plain = compute_effective_robustness(write_run(tmp_path / "plain", synthetic=False).accuracy_table(),
                                         n_boot=50, seed=0)
    want = plain.average.set_index("model")[["er_avg", "er_avg_lo", "er_avg_hi", "n_shifts", "shifts", "complete"]]
    got = avg[want.columns].loc[want.index]
    assert got.to_dict() == want.to_dict()


def test_a_model_missing_one_corruption_cell_gets_no_mean(run, er):
    table = run.accuracy_table()
    assert math.isnan(table.value(PARTIAL, f"{MEAN}:top1"))
    assert math.isnan(table.value(PARTIAL, f"{FOG}:top1"))
    assert math.isnan(table.value(PARTIAL, f"{REF}~severity-3:top1"))
    _, clean, _, factor, _ = ALL[PARTIAL]
    assert table.value(PARTIAL, f"{REF}~corruption-gaussian_noise:top1") == pytest.approx(
        np.mean([corruption_top1(clean, factor, "gaussian_noise", s) for s in SEVERITIES]))
    assert table.derived[f"{MEAN}:top1"] == [f"corruption:{c}:{s}" for c in sorted(DROPS) for s in SEVERITIES]
    assert math.isnan(er.er(PARTIAL, MEAN))
    assert not ((er.per_shift["model"] == PARTIAL) & (er.per_shift["shift"] == MEAN)).any()


def test_a_derived_axis_named_in_a_mapping_stays_out_of_the_natural_average():
    (s,) = make_shifts({MEAN: REF})
    assert (s.kind, s.natural, s.breakdown) == ("synthetic", False, False)
    (s,) = make_shifts({f"{REF}~severity-3": REF})
    assert (s.kind, s.natural, s.breakdown) == ("synthetic", False, True)
    (s,) = make_shifts({ATTACK: REF})
    assert (s.kind, s.natural) == ("adversarial", False)


def test_report_draws_the_synthetic_and_adversarial_shifts(run, tmp_path):
    from roz.report import build_report

    out = build_report(run.root, tmp_path / "report", n_boot=20, formats=("png",)).parent
    names = {p.name for p in out.rglob("*.png")}
    for shift in ("imagenet-val_corruption-mean", "imagenet-val_corruption-fog", "imagenet-val_pgd_4_255"):
        assert f"shift_{shift}.png" in names, sorted(names)
    page = (out / "index.html").read_text()
    assert "natural (mean of 1)" in page and "synthetic (mean of 1)" in page and "adversarial (mean of 2)" in page


def test_typographic_units_become_one_axis_per_setting(tmp_path):
    from roz.engine.tables import shift_axis_columns

    store = ResultStore(tmp_path / "typo", config={})
    for k, (model, font, top1) in enumerate((("resnet18", "arial", 40.0), ("clip-rn50", "arial", 30.0))):
        store.write_unit(_unit(f"t{k}", model, ALL[model][0], REF, {"top1": top1},
                               shift={"name": "typographic", "font": font}), None)
    cols, roles, derived = shift_axis_columns(store.records())
    assert cols == {"resnet18": {f"{REF}~typographic:top1": 40.0}, "clip-rn50": {f"{REF}~typographic:top1": 30.0}}
    assert roles["clip-rn50"] == "zeroshot" and derived[f"{REF}~typographic:top1"] == ["typographic(font=arial)"]
    store.write_unit(_unit("t9", "resnet18", "standard", REF, {"top1": 20.0},
                           shift={"name": "typographic", "font": "comic"}), None)
    cols, _, derived = shift_axis_columns(store.records())
    # settings numbered in the order of their labels: arial 1, comic 2
    assert cols["resnet18"] == {f"{REF}~typographic#1:top1": 40.0, f"{REF}~typographic#2:top1": 20.0}
    assert derived[f"{REF}~typographic#2:top1"] == ["typographic(font=comic)"]
    (s,) = make_shifts({f"{REF}~typographic#2": REF})
    assert (s.kind, s.natural, s.breakdown) == ("synthetic", False, False)
