"""``roz eval --shift word-cards...`` (issue 17): the reading probe through the CLI, and a bad font
refused before any work with the available font stems."""

from __future__ import annotations

from roz.engine.store import ResultStore


def test_eval_with_word_cards_stores_the_reading_accuracy(clifx, tmp_path, roz_cli):
    out = tmp_path / "run"
    code, stdout, err = roz_cli("eval", "-m", clifx["model"], "-d", "imagefolder", "-r", clifx["data"], "-o", out,
                                "--shift", "word-cards:fonts=cmr10,cmb10,min_width=0.8", "-b", "4", "--workers", "0")
    assert code == 0, err
    (rec,) = ResultStore(out, create=False).records()
    assert rec.shift["fonts"] == "cmr10,cmb10" and rec.shift["min_width"] == 0.8
    assert rec.shift["font_files"] == ("cmr10.ttf", "cmb10.ttf")
    m = rec.metrics
    assert m["n"] == 6 and m["n_skipped"] == 6  # 4 classes x 3 images; great white / tiger shark are two words
    assert m["reading_accuracy"] == m["top1"] and "reading_accuracy" in stdout


def test_unknown_font_is_refused_with_the_stems(clifx, tmp_path, roz_cli):
    code, _, err = roz_cli("eval", "-m", clifx["model"], "-d", "imagefolder", "-r", clifx["data"], "-o",
                           tmp_path / "run", "--shift", "word-cards:fonts=comic")
    assert code != 0 and "unknown font 'comic'" in err and "DejaVuSerif-Italic" in err
    assert not (tmp_path / "run" / "units").exists() or not any((tmp_path / "run" / "units").iterdir())
