"""The report's figures (issue 19): Clopper–Pearson bars, labelled points on request, typographic
clean vs attacked, attack curves with one eps, ImageNet-C order, axis labels said once. Each test
checks the data handed to matplotlib or the text of the rendered SVG, never pixels."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from roz.engine.store import ResultStore
from roz.errors import RozError
from roz.report import build_report, figures
from roz.report.context import unit_row
from roz.report.intervals import clopper_pearson, sample_counts
from roz.report.output import ReportFiles
from roz.report.sections.attacks import attack_data
from roz.report.sections.corruptions import Corruptions
from roz.report.sections.typographic import typographic_data


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    return buf.getvalue()


@pytest.mark.parametrize("acc,n", [(50.0, 100), (73.3, 1000), (2.5, 40)])
def test_clopper_pearson_is_the_exact_interval_at_99_5(acc, n):
    k = round(acc * n / 100)  # scipy's exact binomial interval (an independent implementation)
    ci = binomtest(k, n).proportion_ci(confidence_level=0.995, method="exact")
    assert clopper_pearson(acc, n) == pytest.approx((100 * ci.low, 100 * ci.high), abs=1e-6)


def test_clopper_pearson_edges():
    assert clopper_pearson(0.0, 40) == pytest.approx((0.0, 100 * (1 - 0.0025 ** (1 / 40))))  # closed form at k = 0
    assert clopper_pearson(100.0, 40) == pytest.approx((100 * 0.0025 ** (1 / 40), 100.0))
    assert np.isnan(clopper_pearson(50.0, 0)[0]) and np.isnan(clopper_pearson(float("nan"), 10)[0])


def _points():
    return [{"model": "base-a", "role": "standard", "x": 60.0, "y": 40.0, "baseline": True, "x_n": 200, "y_n": 100},
            {"model": "base-b", "role": "standard", "x": 70.0, "y": 50.0, "baseline": True},
            {"model": "clip", "role": "zeroshot", "x": 65.0, "y": 60.0, "baseline": False, "x_n": 50, "y_n": 50}]


def test_points_get_clopper_pearson_bars_of_their_sample_counts():
    fig = figures.shift_figure(_points(), title="t", xlabel="x", ylabel="y")
    ax = fig.axes[0]
    bars = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(bars) == 2  # base-b has no counts: no bar
    _, _, (xcol, ycol) = bars[1]  # clip: x bar then y bar
    (x0, y0), (x1, _) = xcol.get_segments()[0]
    lo, hi = clopper_pearson(65.0, 50)
    assert 100 / (1 + np.exp(-x0)) == pytest.approx(lo) and 100 / (1 + np.exp(-x1)) == pytest.approx(hi)
    (_, ylo), (_, yhi) = ycol.get_segments()[0]
    assert (100 / (1 + np.exp(-ylo)), 100 / (1 + np.exp(-yhi))) == pytest.approx(clopper_pearson(60.0, 50))


def test_sample_counts_are_the_evaluated_samples(fixture_run):
    units = [unit_row(u) for u in ResultStore(fixture_run, create=False).records()]
    counts = sample_counts(units)
    assert counts[("resnet50", "imagenet-val:top1")] == 200
    assert not any(k[1].startswith("imagenet-val~") for k in counts)  # derived means: no single count
    per_shift = pd.DataFrame([{"shift": "s", "model": "resnet50", "role": "standard", "acc_ref": 76.1,
                               "acc_shift": 63.3, "baseline_member": True, "x_key": "imagenet-val:top1",
                               "y_key": "imagenetv2-matched-frequency:top1"}])
    (pt,) = figures.points_for(per_shift, "s", counts=counts)
    assert (pt["x_n"], pt["y_n"]) == (200, 200)


@pytest.mark.parametrize("labels,named", [("run", {"clip"}), ("all", {"clip", "base-a", "base-b"}), ("none", set())])
def test_points_are_labelled_on_request(labels, named):
    ax = figures.shift_figure(_points(), labels=labels).axes[0]
    assert {t.get_text() for t in ax.texts} == named


def test_bad_label_choice_fails_before_any_work(fixture_run, tmp_path):
    with pytest.raises(RozError, match="unknown point labels"):
        build_report(fixture_run, tmp_path / "r", label_points="some")
    assert not (tmp_path / "r").exists()


def test_typographic_figure_is_clean_vs_attacked(fixture_run):
    units = [unit_row(u) for u in ResultStore(fixture_run, create=False).records()]
    # a unit as the engine writes it: top1 and accuracy are the same number
    units[-1] = type(units[-1])(**{**units[-1].__dict__, "model": "clip-x", "dataset": "imagenet-val",
                                   "kind": "eval", "shift": {"name": "typographic"}, "attack": {},
                                   "metrics": {"top1": 12.0, "accuracy": 12.0, "attack_success_rate": 70.0}})
    typ = typographic_data(units)
    table = typ["fig_table"]
    assert list(table.columns) == ["clean", "attacked", "success"]
    assert table.loc["resnet50"].tolist() == [76.1, 40.0, 35.0]  # clean = its imagenet-val top-1
    assert table.loc["clip-x", "attacked"] == 12.0 and np.isnan(table.loc["clip-x", "clean"])
    svg = _svg(figures.typographic_figure(table, typ["roles"]))
    assert "clean accuracy" in svg and "accuracy under the attack" in svg and "Attack success rate" in svg


def test_attack_curve_of_a_single_eps_starts_at_the_clean_accuracy():
    unit = type("U", (), {"kind": "attack", "model": "m", "role": "standard", "dataset": "d", "attack": {"name": "fgsm"},
                          "metrics": {"clean_top1": 80.0, "robust_acc@8/255": 10.0, "n": 16}})()
    curves = attack_data([unit])["curves"]
    assert sorted(zip(curves.eps, curves.robust_acc)) == [(0.0, 80.0), (8 / 255, 10.0)]
    ax = figures.attack_figure(curves.iloc[1:], {"m": "standard"}).axes[0]  # only the eps point
    lo, hi = ax.get_xlim()
    assert lo <= 0 < 8 < hi


def test_corruptions_are_drawn_in_imagenet_c_order(fixture_run, tmp_path, monkeypatch):
    from roz.report.context import ReportContext, ReportOptions

    seen = {}
    monkeypatch.setattr(figures, "corruption_figure",
                        lambda summary, per, roles, label: seen.setdefault("cols", list(per.columns)) and None)
    monkeypatch.setattr(ReportFiles, "figure", lambda self, name, fig, alt: None)
    ctx = ReportContext(ResultStore(fixture_run, create=False), ReportOptions())
    sec = Corruptions()
    sec.write(sec.collect(ctx), ctx, ReportFiles(tmp_path))
    assert seen["cols"] == ["gaussian_noise", "fog"]  # noise before weather, as ImageNet-C lists them


def test_axis_labels_are_said_once():
    panel = {"points": _points(), "title": "ImageNetV2", "xlabel": "imagenet-val top1 accuracy (%)",
             "ylabel": "ImageNetV2 top1 (%)"}
    svg = _svg(figures.grid_figure([panel, {**panel, "title": "Sketch", "ylabel": "Sketch top1 (%)"},
                                    {**panel, "title": "Vid", "ylabel": "Vid pm0 (%)"}]))
    assert svg.count("imagenet-val top1 accuracy (%)") == 1 and svg.count("accuracy under the shift (%)") == 1
    assert "Vid (pm0)" in svg and "ImageNetV2 top1 (%)" not in svg
    curves = pd.DataFrame({"attack": ["a", "a", "b"], "model": ["m", "m", "m"], "eps": [0, 1 / 255, 2 / 255],
                           "robust_acc": [80.0, 40.0, 5.0]})
    svg = _svg(figures.attack_figure(curves, {"m": "standard"}))
    assert svg.count("robust accuracy (%)") == 1 and svg.count("eps (x/255, L-inf)") == 1


def test_relative_robustness_covers_shifted_units(tmp_path):
    import pyarrow as pa

    from roz.engine.record import UnitRecord

    store = ResultStore(tmp_path / "run")
    fog = {"name": "corruption", "corruption": "fog", "severity": 3}
    rng = np.random.default_rng(0)
    for model, role in (("clip", "zeroshot"), ("clip-auto", "zeroshot-auto")):
        for shift in (None, fog):
            correct = rng.random(60) < (0.7 if shift is None else 0.4 + 0.2 * (role == "zeroshot-auto"))
            rec = UnitRecord.from_json({"unit_id": f"{model}-{'fog' if shift else 'clean'}", "model": {"name": model,
                                        "role": role}, "dataset": {"name": "mini-val", "n": 60}, "shift": shift,
                                        "metrics": {"top1": 100 * correct.mean(), "n": 60}})
            store.write_unit(rec, pa.table({"index": np.arange(60), "correct": correct}))
    out = build_report(tmp_path / "run", tmp_path / "report", n_boot=50).parent
    shifted = pd.read_csv(out / "tables" / "relative_shifted.csv")
    (row,) = shifted.to_dict(orient="records")
    assert row["model"] == "clip-auto" and row["model0"] == "clip" and row["dataset"].startswith("mini-val + corruption(")
    assert row["rr"] == pytest.approx(row["acc"] - row["acc0"]) and row["lo"] <= row["rr"] <= row["hi"]
    assert len(pd.read_csv(out / "tables" / "relative.csv")) == 1  # the natural row, as before
    assert "Under shifts applied to the images" in (out / "index.html").read_text()
