"""Typographic attack generator (render-then-check) and its metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from roz.metrics.typographic import candidate_logits, typographic_scores
from roz.shifts.typographic import Typographic, is_single_word

NAMES = ["tench", "goldfish", "great white shark", "tiger shark", "cat", "dog", "T-shirt"]


def test_single_word_rule():
    assert is_single_word("goldfish") and is_single_word("T-shirt")
    assert not is_single_word("great white shark")


def test_words_are_written_where_the_mask_says():
    shift = Typographic(NAMES, n_words=3, size=0.2)
    x = torch.zeros(3, 3, 64, 64)
    seeds, targets = torch.tensor([1, 2, 3]), torch.tensor([0, 1, 2])
    out, written, ok = shift.apply_with_labels(x, seeds, targets)
    assert ok.all()
    for i in range(3):
        w = int(written[i])
        assert w != int(targets[i]) and is_single_word(NAMES[w])
        label, text, boxes = shift.layout(int(seeds[i]), int(targets[i]), 64, 64)
        assert label == w and text == NAMES[w] and len(boxes) == 3
        # boxes do not overlap
        for a in range(3):
            for b in range(a + 1, 3):
                A, B = boxes[a], boxes[b]
                assert A[2] <= B[0] or B[2] <= A[0] or A[3] <= B[1] or B[3] <= A[1]
        # render-then-check: the white pixels are exactly the rendered word's mask
        mask, _ = shift.render_masks(64, 64, text, boxes)
        written_px = out[i].mean(0).numpy()
        np.testing.assert_allclose(written_px, mask, atol=1e-6)
        assert (mask > 0.5).sum() > 20
        # a different word at the same places does not explain the image
        other = next(n for n in NAMES if n != text and is_single_word(n))
        omask, _ = shift.render_masks(64, 64, other, boxes)
        assert np.abs(omask - written_px).max() > 0.5


def test_deterministic_and_batch_independent():
    shift = Typographic(NAMES, n_words=2, size=0.15, box=True, opacity=0.8, color=(1, 0, 0))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 48, 48, generator=g)
    seeds, targets = torch.tensor([5, 6, 7, 8]), torch.tensor([0, 4, 5, 1])
    a, wa, oka = shift.apply_with_labels(x, seeds, targets)
    b, wb, okb = shift.apply_with_labels(x[2:], seeds[2:], targets[2:])
    torch.testing.assert_close(a[2:], b)
    assert wa[2:].tolist() == wb.tolist()
    assert a.min() >= 0 and a.max() <= 1
    with pytest.raises(TypeError):
        shift(x, seeds)  # needs targets


def test_skip_when_words_do_not_fit_is_counted():
    x = torch.rand(3, 3, 32, 32)
    # a word wider than the image
    big = Typographic(NAMES, n_words=1, size=0.9)
    out, written, ok = big.apply_with_labels(x, torch.tensor([1, 2, 3]), torch.tensor([0, 0, 0]))
    assert not ok.any() and (written == -1).all()
    torch.testing.assert_close(out, x)  # skipped images are left unchanged
    # too many words for the free space
    crowded = Typographic(NAMES, n_words=40, size=0.25, max_tries=50)
    _, written, ok = crowded.apply_with_labels(x, torch.tensor([1, 2, 3]), torch.tensor([0, 0, 0]))
    assert not ok.any()
    s = typographic_scores(torch.tensor([0, 1, 2]), torch.tensor([0, 0, 0]), written, ok)
    assert s["n_skipped"] == 3 and s["n"] == 0


def test_presets_scale_with_image_size():
    t = Typographic.imagenet_t(NAMES)
    c = Typographic.cifar10_t()
    assert t.n_words == 8 and c.n_words == 4
    x = torch.rand(2, 3, 224, 224)
    _, w, ok = t.apply_with_labels(x, torch.tensor([1, 2]), torch.tensor([0, 1]))
    assert ok.all()
    _, w, ok = c.apply_with_labels(x, torch.tensor([1, 2]), torch.tensor([0, 1]))
    assert ok.all() and set(w.tolist()) <= set(range(10))


def test_scores_and_candidate_restriction():
    preds = torch.tensor([0, 3, 3, 1])
    targets = torch.tensor([0, 1, 2, 1])
    written = torch.tensor([3, 3, 3, -1])
    s = typographic_scores(preds, targets, written)
    assert s["n"] == 3 and s["n_skipped"] == 1
    assert s["accuracy"] == pytest.approx(100 / 3) and s["attack_success_rate"] == pytest.approx(200 / 3)
    logits = torch.tensor([[0.0, 5.0, 1.0]])
    mask = torch.tensor([[True, False, True]])
    assert int(candidate_logits(logits, mask).argmax()) == 2


def test_spec_options_as_the_shift_registry_passes_them():
    from roz.shifts.registry import create_shift, parse_shift

    class _DS:
        class labels:
            names = NAMES

    (d,) = parse_shift("typographic:preset=cifar10-t,color=red,box=true")
    t = create_shift(d, dataset=_DS)
    assert t.n_words == 4 and t.color == (1.0, 0.0, 0.0) and t.box and t.params()["preset"] == "cifar10-t"
    assert Typographic(NAMES, preset="imagenet-t", n_words=3).n_words == 3
    with pytest.raises(ValueError):
        Typographic(NAMES, preset="nope")
