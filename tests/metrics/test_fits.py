"""The testbed's piecewise baseline fit (ImageNet-A) beside the linear one, and the fit choice."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest

from roz.errors import RozError
from roz.metrics.effective import AccuracyTable, Shift, compute_effective_robustness
from roz.metrics.fits import PiecewiseFit, fit_kinds, fit_piecewise
from roz.report.sections.fits import fits_frame

PIVOT = 91.86  # ResNet-50 on val-on-imagenet-a-classes: the testbed's split
LOW = (1.2, -2.0)  # (slope, intercept) in logit space below the pivot
HIGH = (3.0, -6.5)  # above it: a much steeper line (the kink)


def _lg(p):
    return np.log(p / (100 - p))


def _line(x, slope_intercept):
    slope, intercept = slope_intercept
    return 100 / (1 + np.exp(-(slope * _lg(x) + intercept)))


def _kinked(noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    lo = np.linspace(78, 91, 9)
    hi = np.linspace(92.5, 97, 7)
    y = np.concatenate([_line(lo, LOW), _line(hi, HIGH)])
    y = 100 / (1 + np.exp(-(_lg(y) + rng.normal(0, noise, len(y)))))
    return np.concatenate([lo, hi]), y


def _table(x, y, extra=None):
    names = [f"m{i}" for i in range(len(x))]
    acc = pd.DataFrame({"val-on-imagenet-a-classes:top1": x, "imagenet-a:top1": y}, index=names)
    roles = dict.fromkeys(names, "standard")
    if extra:
        for name, (xa, ya) in extra.items():
            acc.loc[name] = [xa, ya]
            roles[name] = "zeroshot"
    return AccuracyTable(acc=acc, roles=roles, source="synthetic")


SHIFTS = [Shift("imagenet-a", "val-on-imagenet-a-classes", label="ImageNet-A")]


def test_piecewise_recovers_both_lines():
    x, y = _kinked()
    f = fit_piecewise(x, y, pivot=PIVOT, n_boot=0, x_key="val-on-imagenet-a-classes:top1")
    assert (f.lower.slope, f.lower.intercept) == (pytest.approx(LOW[0]), pytest.approx(LOW[1]))
    assert (f.upper.slope, f.upper.intercept) == (pytest.approx(HIGH[0]), pytest.approx(HIGH[1]))
    assert f.lower.n_models == 9 and f.upper.n_models == 7 and f.r2 == pytest.approx(1.0)
    grid = np.array([80.0, 90.0, 93.0, 96.0])
    np.testing.assert_allclose(f.predict(grid), np.where(grid < PIVOT, _line(grid, LOW), _line(grid, HIGH)))


def test_er_above_the_split_uses_the_upper_line():
    x, y = _kinked(noise=0.02)
    clip = {"clip-above": (93.0, 40.0), "clip-below": (85.0, 40.0)}
    res = compute_effective_robustness(_table(x, y, clip), shifts=SHIFTS, n_boot=50, seed=0)
    fit = res.fits["imagenet-a"]
    assert isinstance(fit, PiecewiseFit) and res.protocol["fits"] == {"imagenet-a": "piecewise-testbed"}
    up, low = fit.upper, fit.lower
    assert res.er("clip-above", "imagenet-a") == pytest.approx(40.0 - up.predict(93.0))
    assert res.er("clip-below", "imagenet-a") == pytest.approx(40.0 - low.predict(85.0))
    # the single line through the kink predicts something else above it
    lin = compute_effective_robustness(_table(x, y, clip), shifts=SHIFTS, n_boot=0, fit="linear")
    assert lin.protocol["fits"] == {"imagenet-a": "linear"}
    assert abs(lin.er("clip-above", "imagenet-a") - res.er("clip-above", "imagenet-a")) > 1.0
    ps = res.per_shift
    assert ((ps.er_lo <= ps.er) & (ps.er <= ps.er_hi)).all()


def test_report_table_and_figure_show_both_fits_for_imagenet_a():
    from roz.report.figures import points_for, shift_figure

    x, y = _kinked(noise=0.02)
    res = compute_effective_robustness(_table(x, y), shifts=SHIFTS, n_boot=20, seed=0)
    fit = res.fits["imagenet-a"]
    assert 0.9 < fit.r2 <= 1.0
    fig = shift_figure(points_for(res.per_shift, "imagenet-a", fit=fit), fit, title="ImageNet-A")
    assert fig is not None  # the figure draws the piecewise fit and its band
    tab = fits_frame(res)
    assert list(tab["fit"]) == ["piecewise-testbed < 91.86", "piecewise-testbed >= 91.86", "linear (not used)"]
    assert list(tab["n_models"]) == [9, 7, 16]
    res = compute_effective_robustness(_table(x, y), shifts=SHIFTS, n_boot=0, fit={"imagenet-a": "linear"})
    assert list(fits_frame(res)["fit"]) == ["linear", "piecewise-testbed < 91.86 (not used)",
                                            "piecewise-testbed >= 91.86 (not used)"]


def test_default_falls_back_to_linear_when_a_side_is_thin_but_forced_piecewise_fails():
    x, y = _kinked()
    x, y = x[:11], y[:11]  # two models above the pivot: too few for a line there
    res = compute_effective_robustness(_table(x, y), shifts=SHIFTS, n_boot=0)
    assert res.fits["imagenet-a"].kind == "linear"
    assert res.protocol["fits"]["imagenet-a"].startswith("linear (default fell back to linear: piecewise fit")
    forced = compute_effective_robustness(_table(x, y), shifts=SHIFTS, n_boot=0, fit="piecewise-testbed")
    assert "imagenet-a" in forced.skipped and "above the pivot 91.86" in forced.skipped["imagenet-a"]


def test_fit_choice_parsing():
    assert fit_kinds(None) == {"*": "default"}
    assert fit_kinds(["linear", "imagenet-a=piecewise-testbed"]) == {"*": "linear", "imagenet-a": "piecewise-testbed"}
    with pytest.raises(RozError, match="unknown fit 'cubic'"):
        fit_kinds("cubic")
    t = AccuracyTable(acc=pd.DataFrame({"mini-val:top1": [50.0, 60, 70, 80], "mini-a:top1": [10.0, 20, 30, 45]},
                                       index=list("abcd")), roles=dict.fromkeys("abcd", "standard"))
    shifts = [Shift("mini-a", "mini-val", name="imagenet-a")]
    res = compute_effective_robustness(t, shifts=shifts, n_boot=0, fit="piecewise-testbed")
    assert "no testbed pivot" in res.skipped["imagenet-a"]  # forced: not made, and said why
    res = compute_effective_robustness(t, shifts=shifts, n_boot=0)  # default: the linear fit, noted
    assert res.protocol["fits"]["imagenet-a"] == "linear (default fell back to linear: the reference mini-val " \
                                                 "has no testbed pivot)"


def test_testbed_imagenet_a_piecewise_matches_hand_computation():
    """Independent: csv module + np.polyfit per side of 91.86 on the class-restricted axis."""
    from roz.metrics.effective import TESTBED_STANDARD_MODELS
    from roz.metrics.testbed import read_testbed

    import gzip

    from roz.metrics.testbed import shipped_table_path

    TESTBED = shipped_table_path()  # the table shipped with ROZ (no ../shared needed)
    with gzip.open(TESTBED, "rt", newline="") as f:
        rows = {r["model"]: r for r in csv.DictReader(f)}
    sides = {"lower": ([], []), "upper": ([], [])}
    for name in sorted(TESTBED_STANDARD_MODELS):
        r = rows.get(name)
        if r is None or not r["val-on-imagenet-a-classes"] or not r["imagenet-a"]:
            continue
        x, y = float(r["val-on-imagenet-a-classes"]), float(r["imagenet-a"])
        if 0 < x < 100 and 0 < y < 100 and x != PIVOT:
            xs, ys = sides["lower" if x < PIVOT else "upper"]
            xs.append(_lg(x))
            ys.append(_lg(y))
    res = compute_effective_robustness(read_testbed(TESTBED), baseline="testbed-standard", protocol="class-restricted",
                                       n_boot=0)
    fit = res.fits["imagenet-a"]
    assert fit.kind == "piecewise-testbed" and fit.pivot == PIVOT
    for side, line in (("lower", fit.lower), ("upper", fit.upper)):
        slope, intercept = np.polyfit(*sides[side], 1)
        assert line.n_models == len(sides[side][0])
        assert (line.slope, line.intercept) == (pytest.approx(slope, abs=1e-9), pytest.approx(intercept, abs=1e-9))
    for m in ("vit_b_32_clip_zeroshot", "resnet50_clip_zeroshot"):
        x, y = float(rows[m]["val-on-imagenet-a-classes"]), float(rows[m]["imagenet-a"])
        slope, intercept = np.polyfit(*sides["lower" if x < PIVOT else "upper"], 1)
        assert res.er(m, "imagenet-a") == pytest.approx(y - 100 / (1 + np.exp(-(slope * _lg(x) + intercept))), abs=1e-9)


def test_cli_report_fit_option(tmp_path):
    from typer.testing import CliRunner

    import roz.cli as cli
    from support.report_fixtures import make_run

    run = tmp_path / "run"
    run.mkdir()
    make_run(run)
    bad = CliRunner().invoke(cli.app, ["report", str(run), "--fit", "cubic", "--bootstrap", "0", "--no-svg"])
    assert isinstance(bad.exception, RozError) and "unknown fit 'cubic'" in bad.exception.what  # main() exits 2
    ok = CliRunner().invoke(cli.app, ["report", str(run), "--fit", "imagenet-r=piecewise-testbed", "--bootstrap", "20",
                                      "--no-svg"])
    assert ok.exit_code == 0, ok.output
    fits = pd.read_csv(run / "report" / "tables" / "fits.csv")
    # a forced piecewise fit on full val splits at 76.13: only resnet101 (77.4 %) is above it
    assert "imagenet-r" not in set(fits["shift"])
    report = json.loads((run / "report" / "report.json").read_text())
    assert "above the pivot 76.13" in report["skipped_shifts"]["imagenet-r"]

