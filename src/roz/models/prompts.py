"""Prompt templates for zero-shot heads.

Named template sets come from open_clip (CLIP's 80 curated ImageNet templates and the 7-template
"simple" subset) rather than being retyped; ``roz`` is the six emoji-world templates ROZ-Mini's
tiny CLIP is scored with (``roz.world.train_clip``), ``photo`` the single "a photo of a {}.".
Users can pass a text file with one template per line, ``{}`` standing for the class name
(``{c}`` is accepted too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from roz.errors import RozError
from roz.registry import Registry


def _from_open_clip(name: str) -> tuple[str, ...]:
    from open_clip import zero_shot_metadata

    seq = {"openai-80": zero_shot_metadata.OPENAI_IMAGENET_TEMPLATES, "simple": zero_shot_metadata.SIMPLE_IMAGENET_TEMPLATES}[name]
    # open_clip stores templates as lambdas; calling one with "{}" recovers the format string.
    return tuple(t("{}") if callable(t) else str(t) for t in seq)


# ROZ-Mini's emoji-world set (the world is drawn artwork, so "emoji", "drawing", "illustration").
ROZ_TEMPLATES = (
    "a photo of a {}.",
    "an emoji of a {}.",
    "a drawing of a {}.",
    "a picture of the {}.",
    "an illustration of a {}.",
    "a {}.",
)

#: Template sets by name: a factory per name. Built in: openai-80, simple, photo;
#: ``register_templates`` adds others.
TEMPLATE_SETS: Registry[Callable[[], tuple[str, ...]]] = Registry("template set", RozError)


def register_templates(name: str, factory: Callable[[], tuple[str, ...]]) -> None:
    TEMPLATE_SETS.register(name, factory)


register_templates("openai-80", lambda: _from_open_clip("openai-80"))
register_templates("simple", lambda: _from_open_clip("simple"))
register_templates("photo", lambda: ("a photo of a {}.",))
register_templates("roz", lambda: ROZ_TEMPLATES)


def get_templates(name_or_path: str | list | tuple):
    """Templates by set name (``openai-80``, ``simple``, ``photo``, ``roz``), file path, or a list;
    a ``.json`` file may instead give per-class prompts (``roz.models.prompt_files.ClassPrompts``)."""
    if isinstance(name_or_path, (list, tuple)):
        out = tuple(str(t) for t in name_or_path)
    elif str(name_or_path).partition("#")[0].endswith(".json"):  # CuPL / CLIP_benchmark JSON (prompt_files)
        from roz.models.prompt_files import ClassPrompts, load_prompt_json

        out = load_prompt_json(str(name_or_path))
        if isinstance(out, ClassPrompts):
            return out
    elif name_or_path in TEMPLATE_SETS:
        out = TEMPLATE_SETS.get(name_or_path)()
    else:
        p = Path(name_or_path)
        if not p.is_file():
            known = ", ".join(sorted(TEMPLATE_SETS.names()))
            raise RozError(
                f"unknown template set {name_or_path!r} (and no such file); known sets: {known}",
                hint=f"pass one of {known}, or the path of a text file with one template per line "
                     "('{}' for the class name, '#' starts a comment line)",
            )
        out = tuple(line.strip() for line in p.read_text().splitlines() if line.strip() and not line.startswith("#"))
    out = tuple(t.replace("{c}", "{}") for t in out)
    bad = [t for t in out if t.count("{}") != 1]
    if not out or bad:
        raise RozError(f"templates must each contain exactly one '{{}}' for the class name; bad: {bad[:3]}",
                       hint="write each template like 'a photo of a {}.' ({} or {c} stands for the class name)")
    return out


def templates_label(name_or_path) -> str:
    return name_or_path if isinstance(name_or_path, str) else f"custom[{len(name_or_path)}]"
