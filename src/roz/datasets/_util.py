"""Helpers shared by the natural-distribution-shift loaders (not a public API)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from roz.datasets.images import is_image_file
from roz.errors import DataError


def descend(root: Path, subdirs: tuple[str, ...], marker) -> Path:
    """``root`` itself if ``marker(root)``, else the first ``root/<subdir>`` that satisfies it.

    Lets users point at the extracted archive's parent folder (e.g. ``ROOT/sketch``)."""
    root = Path(root)
    if marker(root):
        return root
    for s in subdirs:
        p = root / s
        if p.is_dir() and marker(p):
            return p
    return root


def has_wnid_folders(p: Path) -> bool:
    try:
        return any(e.is_dir() and len(e.name) == 9 and e.name[0] == "n" and e.name[1:].isdigit() for e in os.scandir(p))
    except OSError:
        return False


def has_int_folders(p: Path) -> bool:
    try:
        return any(e.is_dir() and e.name.isdigit() for e in os.scandir(p))
    except OSError:
        return False


def read_json(path: Path, what: str):
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what}: metadata file {path} is missing",
                        hint="the metadata ships inside the dataset download; re-extract it or pass its folder")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{what}: cannot parse metadata file {path}: {e}") from None


def list_images(folder: Path, rel_to: Path) -> list[str]:
    """Sorted image paths in ``folder`` (not recursive), relative to ``rel_to``."""
    return sorted(
        os.path.relpath(os.path.join(folder, f), rel_to) for f in os.listdir(folder)
        if is_image_file(f) and not f.startswith(".")
    )


def fail_missing(what: str, missing: list[str], total: int, root: Path) -> None:
    if missing:
        raise DataError(
            f"{what}: {len(missing)} of {total} image files listed in the metadata are missing under {root} "
            f"(e.g. {missing[:3]})",
            hint="a partial copy? re-extract the dataset; `roz datasets check` lists what is missing",
        )


# A dataset with extra per-sample columns (picklable, unlike a patched bound method).
from dataclasses import dataclass, field  # noqa: E402

from roz.datasets.base import EvalDataset  # noqa: E402


@dataclass
class MetaEvalDataset(EvalDataset):
    meta: dict = field(default_factory=dict)

    def sample_meta(self) -> dict[str, list]:
        return {k: list(v) for k, v in self.meta.items()}
