"""ImageNet-P flip rates as effective-robustness axes (issue 14): perturbation units on a
reference dataset become ``<ref>~flip-<p>`` / ``<ref>~flip-mean`` columns holding
100 * (1 - flip probability), fitted against the reference's clean top-1 like an accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from roz.engine.record import UnitRecord
from roz.engine.tables import accuracy_table
from roz.metrics.effective import compute_effective_robustness, make_shifts

REF = "mini-val"
# model -> (role, clean top-1, flip probability per perturbation)
MODELS = {
    "base-a": ("standard", 20.0, {"gaussian_noise": 0.40, "rotate": 0.30}),
    "base-b": ("standard", 35.0, {"gaussian_noise": 0.30, "rotate": 0.21}),
    "base-c": ("standard", 50.0, {"gaussian_noise": 0.22, "rotate": 0.16}),
    "base-d": ("standard", 70.0, {"gaussian_noise": 0.12, "rotate": 0.09}),
    "clip": ("zeroshot", 55.0, {"gaussian_noise": 0.10, "rotate": 0.05}),
}
PARTIAL = "base-e"  # a standard model with gaussian_noise only: no mean
MEAN, NOISE = f"{REF}~flip-mean", f"{REF}~flip-gaussian_noise"


def _unit(uid, model, role, dataset, metrics, kind="eval", shift=None) -> UnitRecord:
    return UnitRecord.from_json({
        "unit_id": uid, "kind": kind, "model": {"name": model, "spec": f"fixture:{model}", "role": role, "identity": {}},
        "dataset": {"name": dataset, "root": "/nonexistent", "n": 100, "protocol": {}}, "shift": shift,
        "metrics": metrics, "protocol": {"seed": 0}, "timing": {"seconds": 1.0}})


def _records(models=MODELS, partial=True) -> list[UnitRecord]:
    out = []
    for i, (m, (role, clean, fps)) in enumerate(models.items()):
        out.append(_unit(f"e{i:02d}", m, role, REF, {"top1": clean}))
        for p, fp in fps.items():
            out.append(_unit(f"p{i:02d}{p}", m, role, REF, {"flip_prob": fp, "top5_dist": 1.0, "n": 33, "top1": clean},
                             kind="perturbation", shift={"name": "perturbation", "perturbation": p, "difficulty": 1}))
    if partial:
        out.append(_unit("e99", PARTIAL, "standard", REF, {"top1": 40.0}))
        out.append(_unit("p99", PARTIAL, "standard", REF, {"flip_prob": 0.2, "n": 33}, kind="perturbation",
                         shift={"name": "perturbation", "perturbation": "gaussian_noise", "difficulty": 1}))
    return out


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_flip_rates_become_one_minus_fr_columns_with_complete_means():
    table = accuracy_table(_records())
    for m, (_, _, fps) in MODELS.items():
        assert table.value(m, f"{NOISE}:1-fr") == pytest.approx(100 * (1 - fps["gaussian_noise"]))
        assert table.value(m, f"{REF}~flip-rotate:1-fr") == pytest.approx(100 * (1 - fps["rotate"]))
        assert table.value(m, f"{MEAN}:1-fr") == pytest.approx(100 * (1 - np.mean(list(fps.values()))))
    assert table.value(PARTIAL, f"{NOISE}:1-fr") == pytest.approx(80.0)
    assert math.isnan(table.value(PARTIAL, f"{MEAN}:1-fr"))  # lacks rotate: no mean over fewer cells
    assert table.derived[f"{MEAN}:1-fr"] == ["perturbation:gaussian_noise:1", "perturbation:rotate:1"]
    assert not any(c.endswith(":top1") and "~flip" in c for c in table.acc.columns)


def test_flip_axes_are_fitted_scored_and_kept_out_of_the_synthetic_average():
    er = compute_effective_robustness(accuracy_table(_records()), n_boot=50, seed=0)
    for shift, fp_of in ((MEAN, lambda f: np.mean(list(f.values()))), (NOISE, lambda f: f["gaussian_noise"])):
        assert shift in er.fits, er.skipped
        base = [m for m in MODELS if MODELS[m][0] == "standard"] + ([PARTIAL] if shift == NOISE else [])
        full = {**MODELS, PARTIAL: ("standard", 40.0, {"gaussian_noise": 0.2})}
        xs = [_logit(full[m][1] / 100) for m in base]
        ys = [_logit(1 - fp_of(full[m][2])) for m in base]
        slope, intercept = np.polyfit(xs, ys, 1)
        want = 100 * (1 - fp_of(MODELS["clip"][2])) - 100 / (1 + math.exp(-(slope * _logit(0.55) + intercept)))
        assert er.er("clip", shift) == pytest.approx(want, abs=1e-9)
        row = er.per_shift[(er.per_shift["model"] == "clip") & (er.per_shift["shift"] == shift)].iloc[0]
        assert row["er_lo"] <= row["er"] <= row["er_hi"]
    assert er.er("clip", MEAN) > 0  # the fixture's CLIP flips less than the line predicts
    kinds = {s["name"]: (s["kind"], s["y"], s.get("breakdown")) for s in er.protocol["shifts"]}
    assert kinds[MEAN] == ("synthetic", f"{MEAN}:1-fr", True)
    assert MEAN not in er.protocol.get("synthetic_shifts", [])
    assert "1 - ImageNet-P flip probability" in next(s.definition for s in er.shifts if s.name == MEAN)


def test_released_imagenet_p_units_are_placed_against_imagenet_val():
    recs = [_unit("e1", "r50", "standard", "imagenet-val", {"top1": 76.1}),
            _unit("p1", "r50", "standard", "imagenet-p", {"flip_prob": 0.25, "n": 10}, kind="perturbation")]
    recs[1] = recs[1].replace(dataset=recs[1].dataset.__class__.from_json(
        {"name": "imagenet-p", "root": "/x", "n": 10, "protocol": {"perturbation": "tilt", "difficulty": 1}}))
    table = accuracy_table(recs)
    assert table.value("r50", "imagenet-val~flip-tilt:1-fr") == pytest.approx(75.0)
    (s,) = [s for s in make_shifts(None, datasets=[c.split(":")[0] for c in table.acc.columns])
            if s.name == "imagenet-val~flip-tilt"]
    assert (s.x_key(), s.y_key, s.natural) == ("imagenet-val:top1", "imagenet-val~flip-tilt:1-fr", False)


def test_a_flip_axis_named_in_a_mapping_keeps_its_metric():
    (s,) = make_shifts({MEAN: REF})
    assert (s.name, s.y_key, s.kind, s.natural, s.breakdown) == (MEAN, f"{MEAN}:1-fr", "synthetic", False, True)


def test_one_severity_gives_no_severity_axis_that_would_repeat_the_corruption_mean():
    recs = []
    for i, (m, (role, clean, _)) in enumerate(MODELS.items()):
        recs.append(_unit(f"e{i}", m, role, REF, {"top1": clean}))
        for c in ("fog", "contrast"):
            recs.append(_unit(f"c{i}{c}", m, role, REF, {"top1": clean / 2},
                              shift={"name": "corruption", "corruption": c, "severity": 3}))
    cols = set(accuracy_table(recs).acc.columns)
    assert {f"{REF}~corruption-mean:top1", f"{REF}~corruption-fog:top1"} <= cols
    assert f"{REF}~severity-3:top1" not in cols
    recs.append(_unit("c9", "clip", "zeroshot", REF, {"top1": 20.0},
                      shift={"name": "corruption", "corruption": "fog", "severity": 5}))
    assert f"{REF}~severity-3:top1" in set(accuracy_table(recs).acc.columns)


def test_derived_means_do_not_depend_on_the_hash_seed():
    """The cells of a mean are summed in a fixed order: a set's order follows PYTHONHASHSEED, and
    float sums follow the order (two demo runs differed in the last bits before)."""
    import os
    import subprocess
    import sys

    code = ("from roz.engine.tables import _complete_means\n"
            "vals = [0.1, 0.7, 1e16, 0.3, -1e16, 0.2, 3.3, 1e-3, 5.5, 2.2, 7.1, 0.9, 4.4, 6.6, 8.8]\n"
            "per = {(f'c{i:02d}', 3): v for i, v in enumerate(vals)}\n"
            "print(repr(_complete_means({'m': per}, lambda c: 'mean')[0]['m']['mean']))\n")
    outs = set()
    for seed in range(6):
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)
    want = sum(v for _, v in sorted(((f"c{i:02d}", v) for i, v in enumerate(
        [0.1, 0.7, 1e16, 0.3, -1e16, 0.2, 3.3, 1e-3, 5.5, 2.2, 7.1, 0.9, 4.4, 6.6, 8.8])))) / 15
    assert outs == {repr(want) + "\n"}
