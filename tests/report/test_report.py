"""The HTML report of a small fixture run: every section, escaping, files, speed, determinism."""

from __future__ import annotations

import re
import time

import pandas as pd
import pytest

from roz.engine.store import ResultStore
from roz.errors import RozError
from roz.report import build_report

from support.report_fixtures import EVIL, MODELS, _unit, overlap_json, write_overlap

SECTIONS = ("headline", "figures", "fits", "relative", "corruptions", "perturbations", "attacks", "typographic",
            "overlap", "datasets", "config", "downloads", "protocol")


@pytest.fixture(scope="module")
def report(fixture_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    t, c = time.perf_counter(), time.process_time()
    index = build_report(fixture_run, out)
    return index, time.perf_counter() - t, time.process_time() - c


def test_every_section_present(report):
    index, _, _ = report
    text = index.read_text()
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in text, sid
    assert "absent:" not in text  # the fixture has every kind of unit
    assert text.count("data:image/png;base64,") >= 6
    for name in ("resnet50", "clip-rn50-auto", "gaussian_noise", "pgd", "robust_acc@4/255", "success_rate"):
        assert name in text


def test_no_unescaped_model_name_and_no_network(report):
    index, _, _ = report
    text = index.read_text()
    assert EVIL not in text and "<script" not in text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text)  # no external resources or links
    for f in (index.parent / "figures").glob("*.svg"):
        svg = f.read_text()
        assert "<script" not in svg.lower()
    assert EVIL not in (index.parent / "tables" / "headline.tex").read_text()


def test_files_tables_and_links(report):
    index, _, _ = report
    out = index.parent
    for name in ("headline", "effective_robustness", "er_average", "fits", "relative", "metrics", "corruptions",
                 "perturbations", "attacks", "typographic", "overlap"):
        assert (out / "tables" / f"{name}.csv").is_file() and (out / "tables" / f"{name}.parquet").is_file(), name
    assert (out / "tables" / "headline.tex").read_text().startswith("\\begin{table}")
    for name in ("grid_natural_shifts", "shift_imagenet-r", "shift_imagenetv2-matched-frequency", "corruptions",
                 "attacks", "typographic"):
        for ext in ("png", "svg"):
            assert (out / "figures" / f"{name}.{ext}").stat().st_size > 1000, (name, ext)
    head = pd.read_parquet(out / "tables" / "headline.parquet")
    assert set(head.model) == set(MODELS)
    assert list(head.role[:6]) == ["standard"] * 6  # grouped by role, paper layout
    clip = head[head.model == "clip-rn50"].iloc[0]
    assert clip["imagenet-r ER"] > 15 and clip["avg ER"] > 5
    text = index.read_text()
    for link in re.findall(r'href="([^"#]+)"', text):
        assert (out / link).is_file(), link
    rel = pd.read_csv(out / "tables" / "relative.csv")
    r = rel[rel.dataset == "imagenet-r"].iloc[0]
    assert r.model == "clip-rn50-auto" and r.model0 == "clip-rn50" and r.paired and r.lo <= r.rr <= r.hi
    assert (out / "summary.txt").read_text().startswith("model")


def test_fast(report):
    _, wall, cpu = report
    assert cpu < 5.0, f"report took {cpu:.1f} s of CPU"
    assert wall < 30.0  # wall time also counts waiting for a shared CPU


def test_deterministic(fixture_run, report, tmp_path):
    index, _, _ = report
    again = build_report(fixture_run, tmp_path / "again")
    for f in sorted((index.parent / "figures").iterdir()):
        assert f.read_bytes() == (again.parent / "figures" / f.name).read_bytes(), f.name
    for name in ("headline.csv", "fits.csv", "relative.csv", "headline.tex"):
        assert (index.parent / "tables" / name).read_bytes() == (again.parent / "tables" / name).read_bytes()


def test_absent_sections(tmp_path):
    st = ResultStore(tmp_path / "bare")
    for i, (m, acc) in enumerate((("a", 50.0), ("b", 60.0))):
        st.write_unit(_unit(f"u{i}", m, "standard", "mini-val", {"top1": acc}), None)
    text = build_report(tmp_path / "bare", formats=("png",)).read_text()
    for what in ("no corruption units", "no attack units", "no typographic units", "no intervention pair",
                 "run the overlap analysis (roz.overlap.overlap_report)",
                 "CLIP-Auto is absent from this run: no model has role zeroshot-auto",
                 "run perturbation:... shifts or the imagenet-p dataset"):
        assert f"absent: {what}" in text
    assert '<section id="headline">' in text and "absent:" in text


def _section(text: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}">(.*?)</section>', text, re.S)
    assert m, sid
    return m.group(1)


def test_section_order_and_collapsed_config(report):
    text = report[0].read_text()
    ids = re.findall(r'<section id="([^"]+)">', text)
    assert ids == list(SECTIONS)  # headline first, configuration after the results
    nav = text.index("<nav>")
    assert text.index('<section id="headline">') > nav and "finished units" in text[:nav]
    cfg = _section(text, "config")
    assert "<details><summary>Run configuration (JSON)</summary>" in cfg
    assert re.search(r"<details><summary>Environment \(\d+ distinct\)</summary>", cfg)
    assert "<pre>" not in re.sub(r"<details>.*?</details>", "", cfg, flags=re.S)  # every dump collapsed


def test_overlap_section(report):
    index = report[0]
    sec = _section(index.read_text(), "overlap")
    assert "absent" not in sec and EVIL not in sec and "<script" not in sec.lower()
    esc = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"<h3>{esc}</h3>" in sec  # hostile split name, escaped
    assert sec.count(esc) >= 3  # split, model row, false-positive file
    assert "near-duplicates found: 12 of 200 test images (6.0 %)" in sec
    assert "near-duplicates found: 7 of 200" in sec
    assert "precision 0.750, recall 0.900" in sec and "fp 3" in sec
    assert "3 false positives" in sec and "1 missed duplicates" in sec
    assert "No ground truth for this split" in sec  # detection null
    for txt in ("61.50", "60.25", "81.00", "+1.25", "[+0.75,\u00a0+1.75]", "[58.5,\u00a064.5]", "overlap CP 99.5%"):
        assert txt in sec, txt
    tab = pd.read_csv(index.parent / "tables" / "overlap.csv")
    assert len(tab) == 3 and set(tab.split) == {"imagenet-r", EVIL} and "acc_clean" in tab.columns
    import json

    rj = json.loads((index.parent / "report.json").read_text())
    assert rj["overlap"]["imagenet-r"] == {"n_duplicates": 12, "precision": 0.75, "recall": 0.9}


def test_overlap_unreadable_or_partial(tmp_path):
    st = ResultStore(tmp_path / "r")
    for i, (m, acc) in enumerate((("a", 50.0), ("b", 60.0))):
        st.write_unit(_unit(f"u{i}", m, "standard", "mini-val", {"top1": acc}), None)
    (tmp_path / "r" / "overlap.json").write_text("{not json" + EVIL)
    sec = _section(build_report(tmp_path / "r", formats=("png",)).read_text(), "overlap")
    assert "absent: the overlap results could not be read" in sec and "roz.overlap.overlap_report" in sec
    assert EVIL not in sec
    data = overlap_json()
    data["imagenet-r"]["accuracy"] = []
    data[EVIL] = None  # skipped
    write_overlap(tmp_path / "r", data)
    sec = _section(build_report(tmp_path / "r", tmp_path / "o2", formats=("png",)).read_text(), "overlap")
    assert "near-duplicates found: 12" in sec and "No per-model accuracy rows" in sec and EVIL not in sec


def test_clip_auto_note(report, fixture_run, tmp_path):
    assert "CLIP-Auto is absent" not in report[0].read_text()  # the fixture has a zeroshot-auto model
    st = ResultStore(tmp_path / "z")
    for i, (m, role) in enumerate((("clip-a", "zeroshot"), ("clip-b", "zeroshot"))):
        for ds in ("imagenet-val", "imagenet-r"):
            st.write_unit(_unit(f"u{i}{ds}", m, role, ds, {"top1": 50.0 + i}), None)
    text = build_report(tmp_path / "z", formats=("png",), pairs=[("clip-b", "clip-a")], n_boot=50).read_text()
    sec = _section(text, "relative")
    assert "clip-b" in sec and "absent: no intervention pair" not in sec  # the explicit pair is shown ...
    assert "absent: CLIP-Auto is absent from this run" in sec  # ... and CLIP-Auto's absence is stated


def test_corruption_relative_to_baseline_model(fixture_run, tmp_path):
    index = build_report(fixture_run, tmp_path / "ce", formats=("png",), ce_baseline="resnet50", n_boot=50)
    sec = _section(index.read_text(), "corruptions")
    assert "mean corruption error (unnormalised, %)" in sec
    assert "mean CE relative to resnet50 (%)" in sec and "AlexNet-normalised mCE" in sec
    assert "--ce-normalizer" in sec and "not the full ImageNet-C grid" in sec
    from roz.metrics.corruption import relative_ce
    from roz.report.context import unit_row
    from roz.report.sections.corruptions import corruption_data

    units = [unit_row(u) for u in ResultStore(fixture_run, create=False).records()]
    cor = corruption_data(units, None, "resnet50")
    t = cor["table"].set_index("model")
    assert t.loc["resnet50", "mean CE relative to resnet50 (%)"] == pytest.approx(100.0)
    # clip-rn50: errors 40.2 + (drop * s/3) vs resnet50 23.9 + ...: sum ratio per corruption, then mean
    exp = []
    for drop in (30.0, 15.0):
        e = sum(100 - (59.8 - drop * s / 3) for s in (1, 3))
        b = sum(100 - (76.1 - drop * s / 3) for s in (1, 3))
        exp.append(100 * e / b)
    assert t.loc["clip-rn50", "mean CE relative to resnet50 (%)"] == pytest.approx(sum(exp) / 2)
    assert relative_ce(cor["rows"], "clip-rn50").loc["clip-rn50"].tolist() == pytest.approx([100.0, 100.0])
    with pytest.raises(RozError, match="no corruption units"):
        build_report(fixture_run, tmp_path / "bad", formats=("png",), ce_baseline="nope")


def test_corruption_packaged_alexnet(fixture_run):
    from roz.metrics.corruption import alexnet_errors, load_normalizer
    from roz.report.context import unit_row
    from roz.report.sections.corruptions import corruption_data

    norm = load_normalizer("alexnet")
    assert norm == alexnet_errors()
    cor = corruption_data([unit_row(u) for u in ResultStore(fixture_run, create=False).records()], norm)
    assert "mCE" in cor["label"] and "mean corruption error (unnormalised, %)" in cor["table"].columns
    fog = cor["per_corruption"].loc["resnet50", "fog"]
    assert cor["ce"].loc["resnet50", "fog"] == pytest.approx(100 * fog / (100 * norm["fog"]))


def test_class_restricted_and_mini_mapping(tmp_path):
    st = ResultStore(tmp_path / "mini")
    accs = [(40, 15, 60), (50, 22, 68), (60, 30, 75), (70, 40, 83), (55, 26, 72)]
    for i, (v, r, vr) in enumerate(accs):
        for ds, a in (("mini-val", v), ("mini-r", r), ("mini-val-on-r", vr)):
            st.write_unit(_unit(f"s{i}{ds}", f"std{i}", "standard", ds, {"top1": float(a)}), None)
    for ds, a in (("mini-val", 45.0), ("mini-r", 45.0), ("mini-val-on-r", 66.0)):
        st.write_unit(_unit(f"z{ds}", "clip", "zeroshot", ds, {"top1": a}), None)
    from roz.metrics.effective import Shift

    shifts = [Shift("mini-r", "mini-val", restricted_reference="mini-val-on-r", label="Mini-R")]
    index = build_report(tmp_path / "mini", baseline="run", shifts=shifts, protocol="class-restricted",
                         formats=("png",), n_boot=100)
    fits = pd.read_csv(index.parent / "tables" / "fits.csv")
    assert fits.reference.iloc[0] == "mini-val-on-r:top1"
    index2 = build_report(tmp_path / "mini", tmp_path / "r2", shifts={"mini-r": "mini-val"}, formats=("png",), n_boot=100)
    assert pd.read_csv(index2.parent / "tables" / "fits.csv").reference.iloc[0] == "mini-val:top1"


def test_external_testbed_baseline(fixture_run, tmp_path):
    index = build_report(fixture_run, tmp_path / "tb", baseline="testbed", n_boot=100, formats=("png",))  # shipped
    fits = pd.read_csv(index.parent / "tables" / "fits.csv")
    assert set(fits["shift"]) == {"imagenetv2-matched-frequency", "imagenet-r", "imagenet-sketch"}
    assert (fits.n_models >= 70).all()
    assert "robustness_top1s.csv" in index.read_text()


def test_perturbation_section(report, fixture_run, tmp_path):
    text = report[0].read_text()
    assert '<a href="#perturbations">Perturbations (ImageNet-P)</a>' in text  # in the table of contents
    sec = _section(text, "perturbations")
    assert "absent" not in sec and EVIL not in sec and "<script" not in sec.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in sec  # the model name, escaped
    assert "FP/gaussian_noise" in sec and "mFR" in sec and "mFR_norm" not in sec
    assert "un-normalised" in sec and "frame 0" in sec and "consecutive frames" in sec
    # FP in percent, formatted: resnet50 0.25 -> 25.00, the other model 0.125 -> 12.50; T5D as is
    assert "<td>25.00</td>" in sec.replace(' class=""', "") and "<td>12.50</td>" in sec.replace(' class=""', "")
    assert "<td>1.50</td>" in sec.replace(' class=""', "")
    csv = pd.read_csv(report[0].parent / "tables" / "perturbations.csv")
    row = csv.set_index("model").loc["resnet50"]
    assert row["FP/gaussian_noise"] == pytest.approx(25.0) and row["mFR"] == pytest.approx(25.0)
    assert row["mT5D"] == pytest.approx(2.0)
    # ce_baseline (a model with corruption and perturbation units) normalises mFR: resnet50 = 100
    sec = _section(build_report(fixture_run, tmp_path / "b", ce_baseline="resnet50", formats=("png",)).read_text(),
                   "perturbations")
    assert "mFR_norm" in sec and "normalised by resnet50" in sec
    norm = pd.read_csv(tmp_path / "b" / "tables" / "perturbations.csv").set_index("model")["mFR_norm"]
    assert norm["resnet50"] == pytest.approx(100.0) and norm[EVIL] == pytest.approx(50.0)
