"""The demo measures reading (issue 17): a word-cards unit on mini-val for every model beside the
typographic set, with the same image limit, in the default, quick and full modes."""

from __future__ import annotations

import pytest

from roz.engine.validate import ShiftEntry
from roz.world.demo import DEFAULT_LIMITS, QUICK_LIMITS, _demo_shifts


@pytest.mark.parametrize("mode", ["default", "quick", "full"])
def test_demo_has_a_word_cards_unit_beside_the_typographic_set(mode):
    lim = None if mode == "full" else dict(QUICK_LIMITS if mode == "quick" else DEFAULT_LIMITS)
    shifts = _demo_shifts(mode == "quick", mode == "full", lim)
    entries = {e["shift"].partition(":")[0]: e for e in shifts if isinstance(e, dict)}
    cards, typo = entries["word-cards"], entries["typographic"]
    assert cards == {"shift": "word-cards", "datasets": ["mini-val"]}
    # every model (no models key), the run's image limit like the typographic set (no limit key)
    assert set(cards) == set(typo) == {"shift", "datasets"} and cards["datasets"] == typo["datasets"]
    assert ShiftEntry(**cards).shift == "word-cards"  # a valid run-config entry
