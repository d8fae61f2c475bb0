"""Prompt and class-name files in the formats other tools publish, for zero-shot heads.

Passed as a model's ``templates`` (config key ``templates:``, CLI ``--templates``) or ``classes``:

* template text file: one template per line, ``{}`` or ``{c}`` for the class name (CLIP_benchmark's
  ``zeroshot_classification_templates.txt`` is one) -- ``roz.models.prompts``;
* per-class prompt JSON, CuPL style (Pratt et al. 2023): ``{"tench": ["a tench is a fish ...", ...]}``:
  the head averages each class's own sentences (no template filling) -> :class:`ClassPrompts`;
* CLIP_benchmark's template JSON ``{"imagenet1k": ["{c}的照片。", ...], "cifar10": [...]}``
  (``<lang>_zeroshot_classification_templates.json``) and its custom-template JSON whose entries
  are per-class dicts: pick the entry with ``FILE.json#KEY`` (default ``imagenet1k``, as
  CLIP_benchmark does);
* CLIP_benchmark's class-name JSON ``{"imagenet1k": ["丁鲷", "金鱼", ...]}``
  (``<lang>_classnames.json``) as ``classes=FILE.json[#KEY]``: the ImageNet-1k class set with
  those names (read by ``roz.datasets.classes.load_class_set_file``).

ROZ ships none of these files: the user points at their copy (CLIP_benchmark's are MIT-licensed).
Whatever is loaded -- every template, every class's prompts, every class name -- enters the
zero-shot head's content hash, so a changed file is a different head.
"""

from __future__ import annotations

import json
from pathlib import Path

from roz.errors import RozError

DEFAULT_KEY = "imagenet1k"  # CLIP_benchmark's default_dataset_for_templates


class ClassPrompts:
    """Per-class prompt sentences: ``{class name: (sentence, ...)}``."""

    def __init__(self, prompts: dict[str, tuple[str, ...]], source: str):
        self.prompts = {str(k): tuple(str(t) for t in v) for k, v in prompts.items()}
        self.source = source
        empty = [k for k, v in self.prompts.items() if not v]
        if not self.prompts or empty:
            raise RozError(f"per-class prompt file {source}: " + (f"no prompts for {empty[:3]}" if empty else "empty"),
                           hint='expected {"class name": ["a sentence about it", ...], ...}')

    def texts_for(self, name: str) -> list[str]:
        if name not in self.prompts:
            raise RozError(f"per-class prompt file {self.source} has no prompts for class {name!r}",
                           hint="its keys must be the head's class names (e.g. CLIP's ImageNet names); "
                                f"it has {len(self.prompts)} classes, e.g. {list(self.prompts)[:3]}")
        return list(self.prompts[name])

    def check_covers(self, names) -> None:
        missing = [n for n in names if n not in self.prompts]
        if missing:
            self.texts_for(missing[0])

    def to_json(self) -> dict:
        return {"per_class": self.prompts}

    def __len__(self) -> int:  # number of classes with prompts
        return len(self.prompts)

    def __iter__(self):
        return iter(self.prompts)


def split_key(name_or_path: str) -> tuple[Path, str | None]:
    """``'file.json#cifar10'`` -> ``(Path('file.json'), 'cifar10')``."""
    text = str(name_or_path)
    if "#" in text and not Path(text).is_file():
        path, _, key = text.rpartition("#")
        return Path(path).expanduser(), key
    return Path(text).expanduser(), None


def read_json(path: Path, what: str):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise RozError(f"cannot read {what} {path}: {e}") from None


def _is_str_list(v) -> bool:
    return isinstance(v, list) and all(isinstance(t, str) for t in v)


def _has_slot(t: str) -> bool:
    return "{c}" in t or "{}" in t


def select(data: dict, key: str | None, path: Path, what: str):
    """The entry ``key`` (or ``imagenet1k``, or the only one) of a CLIP_benchmark per-dataset JSON."""
    if key is not None:
        if key not in data:
            raise RozError(f"{what} {path} has no entry {key!r}", hint=f"entries: {', '.join(list(data)[:20])}")
        return data[key]
    if DEFAULT_KEY in data:
        return data[DEFAULT_KEY]
    if len(data) == 1:
        return next(iter(data.values()))
    raise RozError(f"{what} {path} has entries for several datasets: {', '.join(list(data)[:20])}",
                   hint=f"pick one with {path}#KEY")


def load_prompt_json(name_or_path: str):
    """Templates (tuple of format strings) or :class:`ClassPrompts` from a JSON file (see module doc)."""
    path, key = split_key(name_or_path)
    data = read_json(path, "prompt file")
    if not isinstance(data, dict) or not data:
        raise RozError(f"prompt file {path} is not a non-empty JSON object",
                       hint='expected {"class": [prompts]} (CuPL) or {"imagenet1k": ["a photo of a {c}.", ...]}')
    per_class = all(_is_str_list(v) and not any(_has_slot(t) for t in v) for v in data.values())
    if per_class and key is None:  # CuPL: {class name: [sentences]}
        return ClassPrompts(data, str(path))
    entry = select(data, key, path, "prompt file")
    if isinstance(entry, dict):  # CLIP_benchmark custom templates: {dataset: {class: [sentences]}}
        return ClassPrompts(entry, f"{path}#{key or DEFAULT_KEY}")
    if not _is_str_list(entry):
        raise RozError(f"prompt file {path}: entry {key or DEFAULT_KEY!r} is neither a template list nor a "
                       "{class: [prompts]} object")
    return tuple(entry)
