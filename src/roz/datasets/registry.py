"""Dataset registry: one ``create_dataset(name, root, **options)`` entry point.

Each dataset family lives in its own module and registers its names at import time with
``register_dataset``; ``roz datasets`` lists them with their expected layout and source.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from roz.datasets.base import EvalDataset
from roz.errors import DataError

# Modules that register dataset families (imported lazily on first registry access).
FAMILY_MODULES = [
    "roz.datasets.imagefolder",
    "roz.datasets.imagenet",
    "roz.datasets.imagenetv2",
    "roz.datasets.sketch",
    "roz.datasets.imagenet_r_a",
    "roz.datasets.objectnet",
    "roz.datasets.video",
    "roz.datasets.imagenet_c",
    "roz.datasets.imagenet_p",
    "roz.datasets.stylized",
    "roz.datasets.typographic",
    "roz.datasets.cifar",
]


@dataclass
class DatasetInfo:
    name: str
    factory: Callable[..., EvalDataset]
    description: str
    layout: str  # the expected directory layout, shown in errors and `roz datasets`
    source: str = ""  # where to download it
    expected_counts: dict | None = None  # {"total": N, "per_class": {...}} or {"total": [N1, N2]}
    metrics: tuple[str, ...] = ("top1", "top5")
    paper_order: int = 100  # position in the paper's tables
    unit_kind: str = "eval"  # the engine's unit kind for this dataset (roz.engine.kinds), e.g. "perturbation"
    tags: tuple[str, ...] = field(default_factory=tuple)


_REGISTRY: dict[str, DatasetInfo] = {}
_loaded = False


def register_dataset(info: DatasetInfo) -> None:
    _REGISTRY[info.name] = info


def _load_families() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in FAMILY_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise


def list_datasets() -> list[DatasetInfo]:
    _load_families()
    return sorted(_REGISTRY.values(), key=lambda d: (d.paper_order, d.name))


def dataset_info(name: str) -> DatasetInfo:
    _load_families()
    if name not in _REGISTRY:
        import difflib

        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        raise DataError(
            f"unknown dataset {name!r}",
            hint=(f"did you mean {', '.join(close)}? " if close else "") + "`roz datasets` lists the registered names",
        )
    return _REGISTRY[name]


def create_dataset(name: str, root: str | Path, restrict_classes: str | None = None, decode: str = "roz",
                   **options) -> EvalDataset:
    """Build the loader ``name`` over ``root``; errors show the expected layout and source.

    ``restrict_classes``: a class set (name or JSON file); the label space is masked to it (see
    :func:`restrict_label_space`) — e.g. ``roz-mini`` to read ROZ-Mini's ImageNetV2-layout split
    with models that only know the world's classes. Recorded in the dataset protocol.
    ``decode``: the image decoder, ``roz`` or ``testbed`` (see ``roz.datasets.images``); recorded.
    """
    from roz.datasets.images import check_decode

    check_decode(decode)
    ds = _create(name, root, **options)
    ds.set_decode(decode)
    if restrict_classes:
        from roz.datasets.classes import get_class_set

        ds = restrict_label_space(ds, get_class_set(restrict_classes))
    return ds


def restrict_label_space(ds: EvalDataset, classes) -> EvalDataset:
    """Mask ``ds``'s label space to the WordNet IDs of ``classes`` (a class mask, as for ImageNet-R).

    Each label's group is intersected with the class set; labels left empty are removed, and so
    are their samples (counted in the protocol). Removing labels is only allowed for single-label
    datasets (multi-label ones keep their indices in their own metadata).
    """
    from roz.datasets.base import LabelSpace

    keep = set(classes.wnids)
    groups = [tuple(w for w in g if w in keep) for g in ds.labels.groups]
    kept = [i for i, g in enumerate(groups) if g]
    if not kept:
        raise DataError(f"{ds.name}: none of its labels is in class set {classes.name!r}")
    if len(kept) < len(groups) and type(ds).valid_labels is not EvalDataset.valid_labels:
        raise DataError(f"{ds.name}: cannot drop labels of a multi-label dataset via restrict_classes")
    new_index = {old: new for new, old in enumerate(kept)}
    before = len(ds.samples)
    ds.samples = [(p, new_index[t]) for p, t in ds.samples if t in new_index]
    ds.labels = LabelSpace([groups[i] for i in kept], [ds.labels.names[i] for i in kept])
    ds.protocol = {**ds.protocol, "restricted_to": classes.name, "n_labels_after_restriction": len(kept),
                   "samples_dropped_by_restriction": before - len(ds.samples)}
    return ds


def _create(name: str, root: str | Path, **options) -> EvalDataset:
    info = dataset_info(name)
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(
            f"{name}: dataset root {root} does not exist",
            hint=f"expected layout:\n{info.layout}" + (f"\n  download: {info.source}" if info.source else ""),
        )
    try:
        return info.factory(root, **options)
    except DataError as e:
        if "expected layout" in str(e):
            raise
        raise DataError(e.what, hint=(e.hint + "\n  " if e.hint else "") + f"expected layout:\n{info.layout}"
                        + (f"\n  download: {info.source}" if info.source else "")) from None
    except TypeError as e:
        raise DataError(f"{name}: bad dataset option ({e})") from None
