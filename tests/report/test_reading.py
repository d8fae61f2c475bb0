"""The reading probe in the report (issue 17): the typographic section's ``reading`` column (each
model's word-cards reading accuracy beside the attack success rate), a reading-only run still has
the section, and word-cards units change no effective-robustness table."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from roz.engine.record import UnitRecord
from roz.engine.store import ResultStore
from roz.report import build_report
from roz.report.context import unit_row
from roz.report.sections.typographic import typographic_data
from support.report_fixtures import _unit as _fixture_unit

REF = "imagenet-val"
EVIL = "<b>evil</b>"
# model -> (role, clean, natural-shift top-1, corruption top-1, typographic top-1, attack success, reading accuracy)
MODELS = {
    "b1": ("standard", 20.0, 15.0, 10.0, 12.0, 5.0, 3.0),
    "b2": ("standard", 40.0, 31.0, 22.0, 27.0, 6.0, 9.0),
    "b3": ("standard", 60.0, 49.0, 37.0, 44.0, 4.0, 2.0),
    "b4": ("standard", 75.0, 64.0, 50.0, 58.0, 3.0, 7.0),
    "clip": ("zeroshot", 55.0, 52.0, 40.0, 30.0, 61.0, 91.5),
}
WORD_CARDS = {"name": "word-cards", "fonts": "heldout", "version": 1}


def _unit(uid, model, role, dataset, metrics, shift=None) -> UnitRecord:
    return _fixture_unit(uid, model, role, dataset, metrics, shift=shift, n=100)


def _reading_unit(uid, model, role, value) -> UnitRecord:
    # the metrics an engine-run word-cards unit stores (tests/engine/test_word_cards_unit.py)
    return _unit(uid, model, role, REF, {"top1": value, "top5": 100.0, "reading_accuracy": value, "n": 60,
                                          "n_skipped": 40}, shift=WORD_CARDS)


def _write(root, *, word_cards: bool, typographic: bool = True, extra=()):
    store = ResultStore(root, config={"models": list(MODELS)})
    for i, (m, (role, clean, nat, cor, typo, asr, read)) in enumerate(MODELS.items()):
        units = [_unit(f"{i}a", m, role, REF, {"top1": clean}),
                 _unit(f"{i}b", m, role, "imagenetv2-matched-frequency", {"top1": nat}),
                 _unit(f"{i}c", m, role, REF, {"top1": cor}, shift={"name": "corruption", "corruption": "fog",
                                                                   "severity": 3})]
        if typographic:
            units.append(_unit(f"{i}d", m, role, REF, {"top1": typo, "accuracy": typo, "attack_success_rate": asr,
                                                       "n": 100}, shift={"name": "typographic", "n_words": 3}))
        if word_cards:
            units.append(_reading_unit(f"{i}e", m, role, read))
        for u in units:
            store.write_unit(u, None)
    for u in extra:
        store.write_unit(u, None)
    return store


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    root = tmp_path_factory.mktemp("reading")
    _write(root / "with", word_cards=True, extra=[_reading_unit("9e", EVIL, "zeroshot", 66.0)])
    _write(root / "without", word_cards=False)
    return {k: build_report(root / k, root / f"{k}-report", n_boot=50, formats=("svg",)).parent
            for k in ("with", "without")}


def test_reading_column_beside_the_success_rate(reports):
    table = pd.read_csv(reports["with"] / "tables" / "typographic.csv")
    cols = list(table.columns)
    assert cols.index("reading") == cols.index("attack_success_rate") + 1
    got = dict(zip(table.model, table.reading))
    assert got == {m: v[6] for m, v in MODELS.items()} | {EVIL: 66.0}
    # a word-cards unit without a typographic one (its model here) gets a row of its own
    evil = table[table.model == EVIL].iloc[0]
    assert evil.kind == "reading probe" and math.isnan(evil.attack_success_rate)
    html = (reports["with"] / "index.html").read_text()
    section = html[html.index('id="typographic"'):].split("</section>")[0]
    assert "<th class=\"\">attack_success_rate</th><th class=\"\">reading</th>" in section and "91.50" in section
    assert EVIL not in html and "&lt;b&gt;evil&lt;/b&gt;" in section
    assert "reading accuracy (%), zero-shot top-1 on word cards" in section
    # without word-cards units the column is there, blank
    plain = pd.read_csv(reports["without"] / "tables" / "typographic.csv")
    assert "reading" in plain.columns and plain.reading.isna().all()


def test_word_cards_units_change_no_effective_robustness_table(reports):
    for name in ("effective_robustness", "er_average", "fits", "headline"):
        pd.testing.assert_frame_equal(pd.read_csv(reports["with"] / "tables" / f"{name}.csv"),
                                      pd.read_csv(reports["without"] / "tables" / f"{name}.csv"), obj=name)
    with_s = (reports["with"] / "summary.txt").read_text()
    without = (reports["without"] / "summary.txt").read_text()
    assert with_s.split("ER averaged per kind")[1] == without.split("ER averaged per kind")[1]
    assert "word-cards" not in pd.read_csv(reports["with"] / "tables" / "effective_robustness.csv").to_string()


def test_accuracy_table_has_no_word_cards_axis(tmp_path):
    with_cards = _write(tmp_path / "w", word_cards=True).accuracy_table()
    without = _write(tmp_path / "o", word_cards=False).accuracy_table()
    pd.testing.assert_frame_equal(with_cards.acc, without.acc)
    assert with_cards.derived == without.derived


def test_a_reading_only_run_has_the_section(tmp_path):
    store = _write(tmp_path / "run", word_cards=True, typographic=False)
    typ = typographic_data([unit_row(u) for u in store.records()])
    assert typ is not None and len(typ["fig_table"]) == 0  # no attack: no figure rows
    assert dict(zip(typ["table"].model, typ["table"].reading)) == {m: v[6] for m, v in MODELS.items()}
    out = build_report(tmp_path / "run", tmp_path / "report", n_boot=20, formats=("svg",)).parent
    html = (out / "index.html").read_text()
    section = html[html.index('id="typographic"'):].split("</section>")[0]
    assert "no typographic units" not in section and "91.50" in section and "reading probe" in section
