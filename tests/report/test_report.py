"""The HTML report of a small fixture run: every section, escaping, files, speed, determinism."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd
import pytest

from roz.engine.store import ResultStore
from roz.report import build_report

from .conftest import EVIL, MODELS, _unit

SECTIONS = ("config", "headline", "figures", "fits", "relative", "corruptions", "attacks", "typographic",
            "datasets", "downloads", "protocol")
TESTBED = Path(__file__).resolve().parents[3] / "shared" / "reference" / "imagenet-testbed" / "robustness_top1s.csv"


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
                 "attacks", "typographic"):
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
    for what in ("no corruption units", "no attack units", "no typographic units", "no intervention pair"):
        assert f"absent: {what}" in text
    assert '<section id="headline">' in text and "absent:" in text


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


@pytest.mark.skipif(not TESTBED.is_file(), reason="testbed reference table not available")
def test_external_testbed_baseline(fixture_run, tmp_path):
    index = build_report(fixture_run, tmp_path / "tb", baseline=str(TESTBED), n_boot=100, formats=("png",))
    fits = pd.read_csv(index.parent / "tables" / "fits.csv")
    assert set(fits["shift"]) == {"imagenetv2-matched-frequency", "imagenet-r", "imagenet-sketch"}
    assert (fits.n_models >= 70).all()
    assert "robustness_top1s.csv" in index.read_text()
