"""Class sets: ordered lists of WordNet IDs with human (prompt-ready) names.

A model's outputs and a dataset's labels are both expressed in WordNet IDs, so the engine can
map any dataset onto any model (masks, many-to-one merges) without retyped index tables.

``imagenet-1k`` is read from the libraries that ship it: the 1000 synsets in the standard
(sorted-wnid) order from timm, and CLIP's curated class names from open_clip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from roz.errors import DataError
from roz.registry import Registry


@dataclass(frozen=True)
class ClassSet:
    name: str
    wnids: tuple[str, ...]
    names: tuple[str, ...]

    def __post_init__(self):
        if len(self.wnids) != len(self.names):
            raise DataError(f"class set {self.name!r}: {len(self.wnids)} wnids but {len(self.names)} names")
        if len(set(self.wnids)) != len(self.wnids):
            raise DataError(f"class set {self.name!r}: duplicate WordNet IDs")

    def __len__(self) -> int:
        return len(self.wnids)

    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.wnids)}

    def subset(self, wnids, name: str | None = None) -> "ClassSet":
        idx = self.index()
        missing = [w for w in wnids if w not in idx]
        if missing:
            raise DataError(f"class set {self.name!r} lacks {len(missing)} WordNet IDs, e.g. {missing[:5]}")
        return ClassSet(name or f"{self.name}[{len(wnids)}]", tuple(wnids), tuple(self.names[idx[w]] for w in wnids))


#: Class sets by name: a factory per name. Built in: imagenet-1k and cifar-10; higher layers add
#: theirs with ``register_class_set`` (ROZ-Mini's roz-mini: :func:`roz.world.register`).
CLASS_SETS: Registry[Callable[[], ClassSet]] = Registry("class set", DataError)

#: CIFAR classes are not ImageNet classes: the cifar-10 class set uses the class names as ids.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def register_class_set(name: str, factory: Callable[[], ClassSet]) -> None:
    CLASS_SETS.register(name, factory)


def list_class_sets() -> list[str]:
    return CLASS_SETS.names()


def get_class_set(name_or_path: str) -> ClassSet:
    """A registered class set by name, or a JSON file ``{"wnids": [...], "names": [...]}``
    (or a list of ``[wnid, name]`` pairs)."""
    if name_or_path in CLASS_SETS:
        return CLASS_SETS.get(name_or_path)()
    p = Path(name_or_path)
    if p.suffix == ".json" and p.is_file():
        return load_class_set_file(p)
    path, sep, key = str(name_or_path).rpartition("#")
    if sep and path.endswith(".json") and Path(path).is_file():
        return load_class_set_file(Path(path), key)
    raise DataError(
        f"unknown class set {name_or_path!r}",
        hint=f"use one of {list_class_sets()} or a JSON file with 'wnids' and 'names' lists"
        + ("; roz-mini is registered by roz.world.register() (the api, cli and demo call it)"
           if name_or_path == "roz-mini" else ""),
    )


def load_class_set_file(path: Path, key: str | None = None) -> ClassSet:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"cannot read class-set file {path}: {e}") from None
    if key is not None or _is_per_dataset_names(data):
        return _clip_benchmark_names(Path(path), data, key)
    if isinstance(data, dict) and "wnids" in data and "names" in data:
        return ClassSet(str(data.get("name", Path(path).stem)), tuple(data["wnids"]), tuple(data["names"]))
    if isinstance(data, list) and all(isinstance(r, list) and len(r) == 2 for r in data):
        return ClassSet(Path(path).stem, tuple(r[0] for r in data), tuple(r[1] for r in data))
    raise DataError(
        f"class-set file {path} has an unexpected shape",
        hint='expected {"wnids": [...], "names": [...]} or [[wnid, name], ...] or CLIP_benchmark\'s '
             '{"imagenet1k": [1000 names]} (FILE.json#KEY picks an entry)',
    )


def _is_per_dataset_names(data) -> bool:
    return (isinstance(data, dict) and bool(data) and "wnids" not in data
            and all(isinstance(v, list) and all(isinstance(n, str) for n in v) for v in data.values()))


def _clip_benchmark_names(path: Path, data, key: str | None) -> ClassSet:
    """CLIP_benchmark's ``<lang>_classnames.json`` ``{"imagenet1k": [names]}``: ImageNet-1k with those
    names (entry ``key``, default ``imagenet1k``), e.g. a multilingual head."""
    key = key or "imagenet1k"
    if not isinstance(data, dict) or key not in data:
        raise DataError(f"class-names file {path} has no entry {key!r}",
                        hint="entries: " + (", ".join(list(data)[:20]) if isinstance(data, dict) else "none"))
    names = data[key]
    base = imagenet_1k()
    if not isinstance(names, list) or len(names) != len(base):
        raise DataError(f"class-names file {path}#{key}: {len(names) if isinstance(names, list) else 0} names; only "
                        f"ImageNet-1k lists ({len(base)} names in ImageNet order) map to WordNet IDs",
                        hint="for other datasets give a class-set JSON with 'wnids' and 'names'")
    return ClassSet(f"{path.stem}#{key}", base.wnids, tuple(str(n) for n in names))


@lru_cache(maxsize=None)
def imagenet_1k() -> ClassSet:
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES
    from timm.data import ImageNetInfo

    wnids = tuple(ImageNetInfo("imagenet-1k").label_names())
    return ClassSet("imagenet-1k", wnids, tuple(IMAGENET_CLASSNAMES))


@lru_cache(maxsize=None)
def imagenet_lemmas() -> dict[str, str]:
    """WordNet lemma strings per wnid (e.g. 'tench, Tinca tinca'), from timm."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo("imagenet-1k")
    return {w: info.label_name_to_description(w, detailed=False) for w in info.label_names()}


def cifar10_class_set() -> ClassSet:
    return ClassSet("cifar-10", CIFAR10_CLASSES, CIFAR10_CLASSES)


def _register_builtin_class_sets() -> None:
    register_class_set("imagenet-1k", imagenet_1k)
    register_class_set("cifar-10", cifar10_class_set)


CLASS_SETS.add_provider(_register_builtin_class_sets)
