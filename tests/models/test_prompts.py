"""Named prompt-template sets: every name the docs use resolves; unknown names say what is valid."""

import pytest

from roz.errors import RozError
from roz.models.prompts import TEMPLATE_SETS, get_templates

def test_roz_template_set_is_the_emoji_world_set():
    roz = get_templates("roz")
    assert len(roz) == 6
    assert "an emoji of a {}." in roz and "a photo of a {}." in roz
    assert all(t.count("{}") == 1 for t in roz)


def test_tiny_clip_is_scored_with_the_named_sets():
    """The sets the ROZ-Mini CLIP's sidecar reports by name are the sets get_templates returns."""
    from roz.world.train_clip import template_sets

    sets = template_sets()
    assert set(sets) <= set(TEMPLATE_SETS)
    for name, templates in sets.items():
        assert tuple(templates) == get_templates(name)


def test_unknown_template_set_lists_the_valid_names():
    with pytest.raises(RozError) as info:
        get_templates("roz-mini")
    err = info.value
    for name in ("openai-80", "photo", "roz", "simple"):
        assert name in err.what  # in the message itself, not only in the hint
    assert err.hint and "text file" in err.hint


def test_template_file_and_bad_template(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("# mine\na sketch of a {c}.\n\nthe {}\n")
    assert get_templates(str(f)) == ("a sketch of a {}.", "the {}")
    f.write_text("no placeholder here\n")
    with pytest.raises(RozError) as info:
        get_templates(str(f))
    assert info.value.hint and "{}" in info.value.hint
