"""A word-cards unit end to end (issue 17): run config -> engine -> store -> report table. The unit's
metrics name the reading accuracy, which is its top-1 over the cards drawn; multi-word classes are
the skipped samples; the probe's protocol is recorded; the report shows the stored value."""

from __future__ import annotations

import pytest

from roz import api
from roz.engine.runner import RunOptions
from roz.engine.store import ResultStore
from roz.report.context import unit_row
from roz.report.sections.typographic import typographic_data
from roz.shifts.typographic import is_single_word
from roz.shifts.word_cards import HELDOUT_FONTS, VERSION

NAMES = ["tench", "goldfish", "great white shark", "tiger shark"]  # the class names of tinymodels.WNIDS


@pytest.fixture(scope="module")
def run(seqfx, tmp_path_factory):
    out = tmp_path_factory.mktemp("wc") / "run"
    cfg = {"out": str(out), "models": [{"spec": seqfx["model"], "name": "vit"}],
           "datasets": [{"name": "imagefolder", "root": str(seqfx["data"])}],
           "shifts": ["none", "word-cards", "typographic:n_words=1,size=0.2"]}
    api.run(cfg, options=RunOptions(batch_size=3))
    return out


def _unit(store, name):
    return next(r for r in store.records() if (r.shift or {}).get("name") == name)


def test_reading_accuracy_is_top1_over_the_cards(run):
    store = ResultStore(run, create=False)
    rec = _unit(store, "word-cards")
    rows = store.samples(rec.unit_id)
    kept = rows[rows.ok]
    assert len(rows) == 8 and len(kept) > 0
    assert (kept.written_label == kept.target).all() and (rows[~rows.ok].written_label == -1).all()
    want = 100.0 * float((kept.pred == kept.target).mean())
    m = rec.metrics
    assert m["reading_accuracy"] == pytest.approx(want) and m["top1"] == pytest.approx(want)
    assert m["n"] == len(kept) and "attack_success_rate" not in m and "accuracy" not in m
    # the skipped samples are exactly those of the multi-word classes (great white shark, tiger shark)
    multi = [t for t in rows.target if not is_single_word(NAMES[t])]
    assert m["n_skipped"] == len(multi) == 4 and set(rows[~rows.ok].target) == {2, 3}
    # the probe's protocol is recorded with the result, its version in the unit's identity
    assert rec.shift["fonts"] == "heldout" and rec.shift["version"] == VERSION
    assert [f.removesuffix(".ttf") for f in rec.shift["font_files"]] == list(HELDOUT_FONTS)
    assert rec.shift["n_candidate_classes"] == 2 and "skip" in rec.shift["rules"]


def test_report_table_shows_the_stored_reading_accuracy(run):
    store = ResultStore(run, create=False)
    reading = _unit(store, "word-cards").metrics["reading_accuracy"]
    typ = typographic_data([unit_row(u) for u in store.records()])
    row = typ["table"].set_index("model").loc["vit"]
    assert row["reading"] == pytest.approx(reading) and row["kind"] == "eval"
    assert row["attack_success_rate"] == pytest.approx(_unit(store, "typographic").metrics["attack_success_rate"])
