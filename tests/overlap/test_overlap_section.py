"""The report's overlap section renders ``roz-overlap/2``: ER full vs clean and the pair gallery, escaped."""

from __future__ import annotations

import re

from roz.engine.store import ResultStore
from roz.report import build_report
from support.overlap_run import make_overlap_run

EVIL = "<script>alert(1)</script>"
PIXEL = "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/2w=="


def _section(text: str) -> str:
    return re.search(r'<section id="overlap">(.*?)</section>', text, re.S).group(1)


def test_section_shows_er_full_vs_clean_and_an_escaped_gallery(tmp_path):
    store = make_overlap_run(tmp_path / "run", 40, {1, 2, 3})
    er_row = {"split": "mini-r", "shift": "mini-r", "model": "zs", "role": "zeroshot", "n_full": 40, "n_clean": 37,
              "er_full": 12.345, "er_full_lo": 10.0, "er_full_hi": 14.0, "er_clean": 9.876, "er_clean_lo": 8.0,
              "er_clean_hi": 11.5, "er_full_minus_clean": 2.469, "er_full_minus_clean_lo": 1.25,
              "er_full_minus_clean_hi": 3.75}
    store.write_overlap({
        "format": "roz-overlap/2", "protocol": {"method": "embedding"},
        "mini-r": {"n_test": 40, "n_duplicates": 3, "detection": {"precision": 1.0, "recall": 0.75},
                   "accuracy": [], "protocol": {"method": "embedding", "threshold": 0.9, "n_test": 40}},
        "er": {"rows": [er_row], "skipped": {"mini-x": EVIL}, "protocol": {"n_boot": 200}},
        "gallery": [{"split": "mini-r", "similarity": 0.987, "test_file": "t/" + EVIL, "corpus_key": "k" + EVIL,
                     "caption": "a caption " + EVIL, "test_thumb": PIXEL,
                     "corpus_thumb": 'data:image/png;base64,AA" onerror="alert(1)'}],
        "comparisons": {"phash": {"mini-r": {"precision": 0.5, "recall": 0.25, "threshold": 0.94}}}})
    sec = _section(build_report(tmp_path / "run", formats=("png",)).read_text())
    assert "Effective robustness: full vs clean" in sec
    for txt in ("12.35", "9.88", "+2.47", "[+1.25,\u00a0+3.75]", "[+10.00,\u00a0+14.00]"):
        assert txt in sec, txt
    assert "<script>" not in sec and "&lt;script&gt;" in sec
    assert f'src="{PIXEL}"' in sec and "onerror" not in sec  # only a well-formed data URI becomes an image
    assert "0.987" in sec and "phash" in sec and "0.250" in sec
    assert "format" not in re.findall(r"<h3>(.*?)</h3>", sec)  # reserved keys are not test sets
    assert (tmp_path / "run" / "report" / "tables" / "overlap-er.csv").is_file()
    assert ResultStore(tmp_path / "run", create=False).read_overlap()["format"] == "roz-overlap/2"
