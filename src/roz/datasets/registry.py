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


def create_dataset(name: str, root: str | Path, **options) -> EvalDataset:
    """Build the loader ``name`` over ``root``; errors show the expected layout and source."""
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
