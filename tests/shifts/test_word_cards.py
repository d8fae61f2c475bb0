"""The word-cards reading probe (issue 17): cards carry the true single-word class name on a plain
background, in held-out fonts; deterministic per seed; multi-word classes skipped; the spec."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from roz.errors import RozError
from roz.metrics.reading import reading_scores
from roz.shifts.registry import create_shift, parse_shift
from roz.shifts.word_cards import (
    HELDOUT_FONTS,
    TRAIN_FONTS,
    VERSION,
    WordCards,
    _font,
    font_dir,
    glyph_problem,
    resolve_fonts,
)

NAMES = ["tench", "goldfish", "great white shark", "tiger shark", "Chihuahua", "T-shirt"]


def _cards(shift, seeds, targets, size=(96, 128)):
    x = torch.rand(len(seeds), 3, *size, generator=torch.Generator().manual_seed(0))
    return shift.apply_with_labels(x, torch.tensor(seeds), torch.tensor(targets))


def test_font_lists_are_disjoint_and_every_font_renders_the_alphabet():
    assert not set(HELDOUT_FONTS) & set(TRAIN_FONTS)
    for stem in HELDOUT_FONTS + TRAIN_FONTS:
        path = font_dir() / f"{stem}.ttf"
        assert path.is_file(), stem
        assert glyph_problem(str(path)) is None, stem
        font = _font(str(path), 20)
        for c in "abcdefghijklmnopqrstuvwxyz":
            left, top, right, bottom = font.getbbox(c)
            assert right > left and bottom > top, (stem, c)
    paths, dropped = resolve_fonts("heldout")
    assert [Path(p).stem for p in paths] == list(HELDOUT_FONTS) and dropped == []
    assert [Path(p).stem for p in resolve_fonts("train")[0]] == list(TRAIN_FONTS)
    # fonts without Latin letters (STIX's non-Unicode font) or with one fallback box for every
    # character (LastResort) are dropped with their reason; alone they are refused
    paths, dropped = resolve_fonts("cmr10,STIXNonUni,LastResortHE-Regular")
    assert [Path(p).stem for p in paths] == ["cmr10"]
    assert dropped[0].startswith("STIXNonUni: no glyph") and dropped[1].startswith("LastResortHE-Regular: several")
    with pytest.raises(RozError, match="renders every letter"):
        resolve_fonts("STIXNonUni")


def test_default_fonts_are_the_heldout_ones():
    shift = WordCards(NAMES)
    assert {Path(p).stem for p in shift.font_paths} == set(HELDOUT_FONTS)
    used = {Path(shift.card(s, 0, 96, 128).font).stem for s in range(60)}
    assert used <= set(HELDOUT_FONTS) and len(used) >= 4


def test_card_is_the_true_name_on_a_uniform_background():
    shift = WordCards(NAMES)
    out, written, ok = _cards(shift, [1, 2, 3, 4], [0, 1, 4, 5])
    assert ok.all() and written.tolist() == [0, 1, 4, 5]
    for i, (seed, target) in enumerate(zip([1, 2, 3, 4], [0, 1, 4, 5])):
        card = shift.card(seed, target, 96, 128)
        assert card.text == NAMES[target] and card.label == target
        left, top, right, bottom = card.box
        assert 0 <= left < right <= 128 and 0 <= top < bottom <= 96
        assert right - left <= shift.width[1] * 128 and card.px <= shift.height[1] * 96
        img = out[i].numpy()
        bg = np.asarray(card.background, np.float32)[:, None, None]
        ink = np.abs(img - bg).max(0) > 1e-3
        ys, xs = np.nonzero(ink)
        assert len(ys) > 30  # text was drawn ...
        # ... only inside the drawn text's box; everywhere else the background is one colour
        assert xs.min() >= left and xs.max() < right and ys.min() >= top and ys.max() < bottom
        # render-then-check: the image is exactly the background blended with the name's glyphs
        font = _font(card.font, card.px)
        mask = Image.new("L", (128, 96), 0)
        bl, bt, _, _ = font.getbbox(NAMES[target])
        ImageDraw.Draw(mask).text((left - bl, top - bt), NAMES[target], font=font, fill=255)
        m = np.asarray(mask, np.float32)[None] / 255.0
        want = bg * (1 - m) + np.asarray(card.ink, np.float32)[:, None, None] * m
        np.testing.assert_allclose(img, want, atol=1e-5)
        # another class name at the same place does not explain the card
        other = Image.new("L", (128, 96), 0)
        ImageDraw.Draw(other).text((left - bl, top - bt), "goldfish" if target != 1 else "tench", font=font, fill=255)
        assert np.abs(np.asarray(other, np.float32) / 255.0 - m[0]).max() > 0.5


def test_deterministic_per_seed_different_across_seeds_and_batch_independent():
    shift = WordCards(NAMES)
    a, wa, _ = _cards(shift, [5, 6, 7, 8], [0, 0, 0, 0])
    b, wb, _ = _cards(shift, [7, 8], [0, 0])
    torch.testing.assert_close(a[2:], b)  # same seed, same card, whatever the batch
    assert wa[2:].tolist() == wb.tolist()
    for i in range(4):
        for j in range(i + 1, 4):
            assert (a[i] - a[j]).abs().max() > 0.1  # another seed: another card
    # the input image does not matter
    x = torch.rand(2, 3, 96, 128)
    c, _, _ = shift.apply_with_labels(x, torch.tensor([7, 8]), torch.tensor([0, 0]))
    torch.testing.assert_close(c, b)
    # cards of one seed at other resolutions keep font, colours and text
    small, large = shift.card(7, 0, 64, 64), shift.card(7, 0, 224, 224)
    assert (small.font, small.background, small.text) == (large.font, large.background, large.text)
    assert small.px < large.px and large.box[2] <= 224
    with pytest.raises(TypeError):
        shift(x, torch.tensor([7, 8]))


def test_multiword_classes_are_skipped_and_counted():
    shift = WordCards(NAMES)
    x = torch.rand(4, 3, 64, 64)
    out, written, ok = shift.apply_with_labels(x, torch.tensor([1, 2, 3, 4]), torch.tensor([2, 3, 0, 2]))
    assert ok.tolist() == [False, False, True, False] and written.tolist() == [-1, -1, 0, -1]
    torch.testing.assert_close(out[[0, 1, 3]], x[[0, 1, 3]])  # skipped samples are left as they were
    s = reading_scores(torch.tensor([2, 0, 0, 1]), written, ok)
    assert (s["n"], s["n_skipped"], s["reading_accuracy"]) == (1, 3, 100.0)
    with pytest.raises(RozError, match="single-word"):
        WordCards(["great white shark", "tiger shark"])


def test_text_too_long_for_the_image_is_skipped():
    shift = WordCards(["pneumonoultramicroscopicsilicovolcanoconiosis", "cat"], min_px=6)
    _, written, ok = _cards(shift, [1, 2], [0, 1], size=(32, 32))
    assert ok.tolist() == [False, True] and written.tolist() == [-1, 1]


def test_reading_counts_a_class_of_the_same_name():
    names = ["crane", "cat", "crane"]
    s = reading_scores([2, 1, 0], [0, 1, 0], names=names)
    assert s["reading_accuracy"] == pytest.approx(100.0)
    assert reading_scores([2, 1, 0], [0, 1, 0])["reading_accuracy"] == pytest.approx(200 / 3)


def test_spec_strings():
    (d,) = parse_shift("word-cards")
    assert d == {"name": "word-cards", "fonts": "heldout", "version": VERSION}
    assert parse_shift("word-cards:fonts=heldout") == [d]  # one unit, one id
    (d2,) = parse_shift("word-cards:fonts=cmr10,cmb10,min_width=0.5,min_px=3")
    assert d2["fonts"] == "cmr10,cmb10" and d2["min_width"] == 0.5 and d2["min_px"] == 3
    with pytest.raises(RozError, match="DejaVuSerif-Italic") as e:
        parse_shift("word-cards:fonts=comic-sans")
    assert "unknown font 'comic-sans'" in str(e.value)
    with pytest.raises(RozError, match="unknown word-cards option 'size'"):
        parse_shift("word-cards:size=0.2")
    dataset = type("D", (), {"labels": type("L", (), {"names": NAMES})()})()
    shift = create_shift(d2, dataset)
    assert isinstance(shift, WordCards) and [Path(p).stem for p in shift.font_paths] == ["cmr10", "cmb10"]
    p = shift.params()
    assert p["fonts"] == "cmr10,cmb10" and p["font_files"] == ["cmr10.ttf", "cmb10.ttf"] and p["version"] == VERSION
    assert p["n_candidate_classes"] == 4 and p["min_width"] == 0.5 and "multi-word" in p["rules"]["skip"]
    with pytest.raises(RozError, match="min_width"):
        WordCards(NAMES, min_width=0.95, max_width=0.9)
