"""Baseline fit and effective robustness: checked against an independent hand computation on
the published testbed table (the copy shipped with ROZ), plus bootstrap reproducibility and edge cases."""

from __future__ import annotations

import csv
import gzip
import math

import numpy as np
import pytest

from roz.errors import RozError
from roz.metrics.effective import (IMAGENET_SHIFTS, TESTBED_STANDARD_MODELS, AccuracyTable, Shift,
                                   compute_effective_robustness, effective_robustness, fit_baseline, make_shifts)
from roz.metrics.testbed import read_testbed, shipped_table_path


def shipped_rows() -> dict[str, dict[str, str]]:
    """The shipped table read with the csv module (independent of read_testbed's pandas path)."""
    with gzip.open(shipped_table_path(), "rt", newline="") as f:
        return {r["model"]: r for r in csv.DictReader(f)}

# testbed column of each shift checked by the issue, and its reference column
CHECK = {
    "imagenetv2-matched-frequency": "imagenetv2-matched-frequency-format-val",
    "imagenet-r": "imagenet-r",
    "imagenet-sketch": "imagenet-sketch",
    "objectnet": "objectnet-1.0-beta",
    "imagenet-a": "imagenet-a",
}
RESTRICTED = {"imagenet-r": "val-on-imagenet-r-classes", "objectnet": "val-on-objectnet-classes",
              "imagenet-a": "val-on-imagenet-a-classes"}
CLIPS = ("vit_b_32_clip_zeroshot", "resnet50_clip_zeroshot")


def _hand(column: str, ref: str = "val"):
    """Independent: read the CSV with the csv module, fit with np.polyfit on logits."""
    rows = shipped_rows()
    xs, ys = [], []
    for name in sorted(TESTBED_STANDARD_MODELS):  # the documented baseline list (data, not code)
        r = rows.get(name)
        if r is None or not r[ref] or not r[column]:
            continue
        x, y = float(r[ref]) / 100, float(r[column]) / 100
        if 0 < x < 1 and 0 < y < 1:
            xs.append(math.log(x / (1 - x)))
            ys.append(math.log(y / (1 - y)))
    slope, intercept = np.polyfit(xs, ys, 1)
    r2 = np.corrcoef(xs, ys)[0, 1] ** 2
    er = {}
    for m in CLIPS:
        x, y = float(rows[m][ref]) / 100, float(rows[m][column])
        pred = 100 / (1 + math.exp(-(slope * math.log(x / (1 - x)) + intercept)))
        er[m] = y - pred
    return slope, intercept, r2, len(xs), er


@pytest.fixture(scope="module")
def testbed():
    return read_testbed("testbed")


@pytest.mark.parametrize("protocol", ["standard", "class-restricted"])
def test_matches_hand_computation(testbed, protocol):
    res = compute_effective_robustness(testbed, baseline="testbed-standard", protocol=protocol, n_boot=200, seed=1,
                                       fit="linear")  # the hand computation is the linear fit (piecewise: test_fits)
    for shift, col in CHECK.items():
        ref = RESTRICTED.get(shift, "val") if protocol == "class-restricted" else "val"
        slope, intercept, r2, n, er = _hand(col, ref)
        fit = res.fits[shift]
        assert fit.n_models == n
        assert fit.slope == pytest.approx(slope, abs=1e-9)
        assert fit.intercept == pytest.approx(intercept, abs=1e-9)
        assert fit.r2 == pytest.approx(r2, abs=1e-9)
        for m in CLIPS:
            assert res.er(m, shift) == pytest.approx(er[m], abs=1e-9), (shift, m)
    # the headline: CLIP is far above the line on every natural shift
    for m in CLIPS:
        row = res.average[res.average.model == m].iloc[0]
        assert row.er_avg > 10 and row.complete


def test_zero_accuracy_dropped_and_recorded(testbed):
    res = compute_effective_robustness(testbed, baseline="testbed-standard", n_boot=0, fit="linear")
    assert ("resnet50", "accuracy at 0% or 100% (logit undefined)") in res.fits["imagenet-a"].dropped
    assert any(why == "missing" for _, why in res.fits["imagenet-r"].dropped)  # vtab rows lack ImageNet-R


def test_bootstrap_seeded_and_reproducible(testbed):
    kw = dict(baseline="testbed-standard", n_boot=300, models=list(CLIPS), fit="linear")
    a = compute_effective_robustness(testbed, seed=7, **kw)
    b = compute_effective_robustness(testbed, seed=7, **kw)
    c = compute_effective_robustness(testbed, seed=8, **kw)
    for s in CHECK:
        np.testing.assert_array_equal(a.fits[s].boot_slope, b.fits[s].boot_slope)
        assert not np.array_equal(a.fits[s].boot_slope, c.fits[s].boot_slope)
        lo, hi = a.fits[s].ci("slope")
        assert lo < a.fits[s].slope < hi
    assert a.per_shift[["er_lo", "er_hi"]].equals(b.per_shift[["er_lo", "er_hi"]])
    ps = a.per_shift
    assert ((ps.er_lo <= ps.er) & (ps.er <= ps.er_hi)).all()
    avg = a.average.iloc[0]
    assert avg.er_avg_lo < avg.er_avg < avg.er_avg_hi


def _toy(n=12, seed=0, role_of=lambda i: "standard"):
    """A toy table on ROZ-Mini's names (mini-val -> mini-r): the world registers that shift set, so
    every test that uses it registers the world itself (no dependence on test order)."""
    import pandas as pd

    from roz.world import register

    register()

    rng = np.random.default_rng(seed)
    x = np.linspace(40, 85, n)
    lx = np.log(x / (100 - x))
    y = 100 / (1 + np.exp(-(0.9 * lx - 0.5 + rng.normal(0, 0.05, n))))
    acc = pd.DataFrame({"mini-val:top1": x, "mini-r:top1": y}, index=[f"m{i}" for i in range(n)])
    return AccuracyTable(acc=acc, roles={f"m{i}": role_of(i) for i in range(n)}, source="toy")


def test_fit_recovers_line_and_weighted_bootstrap_equals_refit():
    t = _toy(n=30)
    x, y = t.acc["mini-val:top1"].to_numpy(), t.acc["mini-r:top1"].to_numpy()
    f = fit_baseline(x, y, t.models, n_boot=50, seed=3)
    assert f.slope == pytest.approx(0.9, abs=0.05) and f.intercept == pytest.approx(-0.5, abs=0.1)
    # replicate 0 equals a plain refit on the resampled list
    rng = np.random.default_rng(3)
    idx = rng.integers(0, 30, size=(50, 30))[0]
    lx, ly = np.log(x[idx] / (100 - x[idx])), np.log(y[idx] / (100 - y[idx]))
    s0, i0 = np.polyfit(lx, ly, 1)
    assert f.boot_slope[0] == pytest.approx(s0, abs=1e-9) and f.boot_intercept[0] == pytest.approx(i0, abs=1e-9)
    assert effective_robustness(y, x, f) == pytest.approx(y - f.predict(x))


def test_mini_defaults_mapping_and_roles():
    from roz.world import register
    from roz.world.concepts import MINI_SHIFTS

    register()  # ROZ-Mini's shift set lives with the world; metrics knows no ROZ-Mini names

    def role(i):
        return "standard" if i < 8 else ("zeroshot" if i == 8 else "zeroshot-auto")
    t = _toy(n=10, role_of=role)
    res = compute_effective_robustness(t, n_boot=100)  # mini-val present: ROZ-Mini shifts by default
    assert list(res.fits) == ["mini-r"]
    assert res.protocol["baseline_models"] == [f"m{i}" for i in range(8)]
    assert set(res.per_shift.model) == set(t.models)
    res2 = compute_effective_robustness(t, shifts={"mini-r": "mini-val"}, n_boot=0)
    assert res2.er("m9", "mini-r") == pytest.approx(res.er("m9", "mini-r"), abs=1e-12)
    assert make_shifts(None, datasets=["imagenet-val"]) == list(IMAGENET_SHIFTS)
    assert make_shifts(None, datasets=["mini-val", "mini-r"]) == list(MINI_SHIFTS)
    s = make_shifts({"imagenet-r": "imagenet-val", "foo:pm0": "bar"})
    assert s[0].restricted_reference == "val-on-imagenet-r-classes" and s[0].label == "ImageNet-R"
    assert s[1] == Shift("foo", "bar", "pm0") and s[1].y_key == "foo:pm0"


def test_too_few_baseline_models_is_skipped_not_fatal():
    t = _toy(n=4, role_of=lambda i: "standard" if i < 2 else "zeroshot")
    res = compute_effective_robustness(t, n_boot=10)
    assert res.fits == {} and "only 2 usable" in res.skipped["mini-r"]
    with pytest.raises(RozError, match="protocol"):
        compute_effective_robustness(t, protocol="nope")
    with pytest.raises(RozError, match="unknown baseline selector"):
        compute_effective_robustness(t, baseline="bogus")


def test_baseline_selectors():
    t = _toy(n=6)
    r1 = compute_effective_robustness(t, baseline="models:m0,m1,m2", n_boot=0)
    r2 = compute_effective_robustness(t, baseline=["m0", "m1", "m2"], n_boot=0)
    r3 = compute_effective_robustness(t, baseline=lambda name, role: name in ("m0", "m1", "m2"), n_boot=0)
    assert r1.fits["mini-r"].slope == r2.fits["mini-r"].slope == r3.fits["mini-r"].slope
    assert r1.fits["mini-r"].models == ("m0", "m1", "m2")


# -- relative robustness ---------------------------------------------------------------------------

def test_paired_bootstrap_reproducible_and_paired():
    from roz.metrics.relative import paired_bootstrap, relative_robustness

    rng = np.random.default_rng(0)
    base = rng.random(2000) < 0.6
    better = base | (rng.random(2000) < 0.1)  # strictly dominates: every replicate > 0
    a = paired_bootstrap(better, base, n_boot=500, seed=5)
    b = paired_bootstrap(better, base, n_boot=500, seed=5)
    assert a["lo"] == b["lo"] and a["hi"] == b["hi"] and a["paired"]
    assert a["diff"] == pytest.approx(float(relative_robustness(100 * better.mean(), 100 * base.mean())))
    assert 0 < a["lo"] <= a["diff"] <= a["hi"]
    # pairing matters: an unpaired bootstrap of the same data is wider
    ids = np.arange(2000)
    c = paired_bootstrap(better, base, ids, ids + 10_000, n_boot=500, seed=5)
    assert not c["paired"] and (c["hi"] - c["lo"]) > (a["hi"] - a["lo"])


def test_subset_bootstrap_cleaned_vs_full():
    from roz.metrics.relative import paired_bootstrap

    rng = np.random.default_rng(1)
    full = (rng.random(1000) < 0.5).astype(float)
    keep = np.arange(0, 1000, 2)
    r = paired_bootstrap(full[keep], full, keep, np.arange(1000), n_boot=200, seed=0)
    assert r["paired"] and r["n_union"] == 1000
    assert r["diff"] == pytest.approx(100 * (full[keep].mean() - full.mean()))
    assert r["lo"] <= r["diff"] <= r["hi"]


def test_relative_from_store(tmp_path):
    import pyarrow as pa

    from roz.engine.record import UnitRecord
    from roz.engine.store import ResultStore
    from roz.metrics.relative import default_pairs, relative_robustness_from_units, relative_table

    st = ResultStore(tmp_path / "run")
    rng = np.random.default_rng(2)
    base = rng.random(300) < 0.5
    for name, role, corr in (("clip", "zeroshot", base), ("clip-auto", "zeroshot-auto", base | (rng.random(300) < 0.2))):
        st.write_unit(UnitRecord.from_json({"unit_id": name, "kind": "eval", "model": {"name": name, "role": role},
                                            "dataset": {"name": "mini-r", "n": 300}, "shift": None, "attack": None,
                                            "metrics": {"top1": 100 * corr.mean()}}),
                      pa.table({"idx": np.arange(300)[::-1], "correct": corr[::-1], "correct5": corr[::-1]}))
    assert default_pairs({"clip": "zeroshot", "clip-auto": "zeroshot-auto"}) == [("clip-auto", "clip")]
    units = st.natural_table()
    r = relative_robustness_from_units(units, st.samples, "clip-auto", "clip", "mini-r", n_boot=200, seed=0)
    assert r.paired and r.matched_by == "idx" and r.lo <= r.rr <= r.hi and r.rr > 0
    assert r.n == r.n0 == 300  # the dataset's size, from the records
    df = relative_table(units, st.samples, [("clip-auto", "clip")], n_boot=200, seed=0)
    assert len(df) == 1 and df.rr.iloc[0] == pytest.approx(r.rr) and df.lo.iloc[0] == r.lo


def test_metrics_know_no_world_names_until_registered():
    """Metrics carry no ROZ-Mini names: a shift set comes from whoever registers it."""
    import subprocess
    import sys

    code = ("from roz.metrics.shift_sets import IMAGENET_SHIFTS, make_shifts; import sys; "
            "sys.exit(0 if make_shifts(None, datasets=['mini-val', 'mini-r']) == list(IMAGENET_SHIFTS) else 1)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    from roz.metrics.shift_sets import SHIFT_SETS, register_shift_set

    mine = (Shift("toy-shifted", "toy-val", label="Toy"),)
    register_shift_set("toy", mine)
    try:
        assert make_shifts(None, datasets=["toy-val", "toy-shifted"]) == list(mine)
        assert make_shifts(None, datasets=["toy-val", "imagenet-val"]) == list(IMAGENET_SHIFTS)
        with pytest.raises(RozError):
            register_shift_set("bad", (Shift("a", "r1"), Shift("b", "r2")))
    finally:
        SHIFT_SETS._entries.pop("toy")


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_stylized_er_matches_polyfit_on_shipped_table(testbed):
    """Stylized-ImageNet ER of CLIP ViT-B/32: baseline = every other standard row with both columns,
    least squares on logits by numpy.polyfit, default protocol (full ImageNet val reference)."""
    rows, me = shipped_rows(), "vit_b_32_clip_zeroshot"
    pts = [(float(r["val"]) / 100, float(r["stylized_imagenet"]) / 100) for name, r in rows.items()
           if name in TESTBED_STANDARD_MODELS and name != me and r["val"] and r["stylized_imagenet"]]
    slope, intercept = np.polyfit([_logit(x) for x, _ in pts], [_logit(y) for _, y in pts], 1)
    x, y = float(rows[me]["val"]) / 100, float(rows[me]["stylized_imagenet"])
    want = y - 100 / (1 + math.exp(-(slope * _logit(x) + intercept)))
    res = compute_effective_robustness(testbed, n_boot=0)  # default baseline: role "standard"
    assert res.fits["stylized-imagenet"].n_models == len(pts) == 78
    assert res.er(me, "stylized-imagenet") == pytest.approx(want, abs=1e-6)
    assert want > 5  # CLIP is well above the standard models' line, as in the testbed
    assert math.isfinite(res.er(me, "greyscale")) and res.fits["greyscale"].n_models == 78  # greyscale too
    assert "stylized-imagenet" not in res.protocol["natural_shifts"]


def test_shift_kinds_and_headline_unchanged(testbed):
    kinds = {s.name: s.kind for s in IMAGENET_SHIFTS}
    assert kinds["imagenet-r"] == kinds["imagenetv2-top-images"] == "natural"
    assert kinds["stylized-imagenet"] == kinds["greyscale"] == kinds["imagenet-c"] == kinds["imagenet-c-fog"] == "synthetic"
    assert kinds["pgd-linf-2/255"] == kinds["pgd-l2-0.5"] == "adversarial"
    assert all(s.kind == "natural" for s in IMAGENET_SHIFTS if s.natural)
    with pytest.raises(RozError, match="kind"):
        Shift("x", kind="weird")
    with pytest.raises(RozError, match="natural=False"):
        Shift("x", kind="synthetic")  # natural=True would put a synthetic shift in the headline
    res = compute_effective_robustness(testbed, n_boot=0, models=["vit_b_32_clip_zeroshot"])
    assert res.protocol["natural_shifts"] == ["imagenetv2-matched-frequency", "imagenet-sketch", "imagenet-r",
                                              "objectnet", "imagenet-a", "imagenet-vid-robust:pm0", "ytbb-robust:pm0"]
    recorded = {s["name"]: s["kind"] for s in res.protocol["shifts"]}
    assert recorded["imagenet-c"] == "synthetic" and recorded["pgd-linf-0.5/255"] == "adversarial"


def test_imagenet_c_mean_columns(testbed):
    """imagenet-c = mean of the 19 corruptions' severity means: _in-memory columns, glass blur _on-disk."""
    from roz.datasets.release_names import CORRUPTIONS, EXTRA_CORRUPTIONS

    rows, m = shipped_rows(), "instagram-resnext101_32x48d"
    per = {}
    for c in CORRUPTIONS + EXTRA_CORRUPTIONS:
        variant = "on-disk" if c == "glass_blur" else "in-memory"
        per[c] = np.mean([float(rows[m][f"imagenet-c.{c}.{s}_{variant}"]) for s in range(1, 6)])
        assert testbed.value(m, f"imagenet-c-{c}:top1") == pytest.approx(per[c], abs=1e-9)
    assert testbed.value(m, "imagenet-c-mean:top1") == pytest.approx(np.mean(list(per.values())), abs=1e-9)
    used = testbed.derived["imagenet-c-mean:top1"]
    assert len(used) == 95 and sorted(c for c in used if c.endswith("_on-disk")) == [
        f"imagenet-c.glass_blur.{s}_on-disk" for s in range(1, 6)]
    res = compute_effective_robustness(testbed, n_boot=0, models=[m])
    assert res.protocol["derived_columns"]["imagenet-c-mean:top1"] == used  # recorded with the result
    assert "in-memory" in " ".join(res.protocol["derived_columns"]["imagenet-c-fog:top1"])
    for name in ["imagenet-c"] + [f"imagenet-c-{c}" for c in per]:
        assert math.isfinite(res.er(m, name)), name
        assert res.fits[name].n_models >= 70
    # a model missing a cell gets no mean (the testbed's skipna=False), and the released-JPEG variant differs
    assert math.isnan(testbed.value("vit_b_32_clip_zeroshot", "imagenet-c-mean:top1"))
    disk = read_testbed("testbed", corruption_variant="on-disk")
    assert disk.derived["imagenet-c-fog:top1"][0] == "imagenet-c.fog.1_on-disk"
    assert disk.value(m, "imagenet-c-fog:top1") != pytest.approx(per["fog"], abs=1e-6)


def test_a_runs_single_imagenet_c_cell_is_not_the_mean():
    """A run's ``imagenet-c`` column is one released (corruption, severity) cell: never scored as the mean."""
    t = _toy(n=6)
    t.acc["imagenet-val:top1"] = t.acc["mini-val:top1"]
    t.acc["imagenet-c:top1"] = t.acc["mini-r:top1"]
    res = compute_effective_robustness(t, n_boot=0)
    assert "imagenet-c" not in res.fits and "imagenet-c" not in res.skipped
    t.acc["imagenet-c-mean:top1"] = t.acc["mini-r:top1"]
    assert compute_effective_robustness(t, n_boot=0).fits["imagenet-c"].y_key == "imagenet-c-mean:top1"
