"""ImageNet-C as released on disk: ``ROOT/<corruption>/<severity 1-5>/<wnid>/*.JPEG``.

One dataset instance is one (corruption, severity) cell; :func:`imagenet_c_cells` enumerates
the cells present under a root (the engine runs one unit per cell and ``roz.metrics.corruption``
turns the per-cell errors into mCE). The 15 benchmark corruptions and the 4 extra (validation)
corruptions of the release are known by name; the protocol records the corruption, its group
and the severity.
"""

from __future__ import annotations

import os
from pathlib import Path

from roz.datasets.base import EvalDataset
from roz.datasets.imagefolder import wnid_folder_dataset
from roz.datasets.info import DatasetInfo
from roz.datasets.release_names import CORRUPTION_GROUPS, CORRUPTIONS, EXTRA_CORRUPTIONS, SEVERITIES
from roz.errors import DataError

INFOS: list[DatasetInfo] = []  # this family's datasets; roz.datasets.registry registers them

GROUPS = {**CORRUPTION_GROUPS, "extra": EXTRA_CORRUPTIONS}
ALL_CORRUPTIONS = CORRUPTIONS + EXTRA_CORRUPTIONS

LAYOUT = ("  ROOT/<corruption>/<severity>/<wnid>/<image>   e.g. ROOT/gaussian_noise/3/n01440764/"
          "ILSVRC2012_val_00000293.JPEG\n  (15 corruptions + 4 extra, severities 1..5, 1000 wnid folders each)")


def corruption_group(name: str) -> str:
    for g, names in GROUPS.items():
        if name in names:
            return g
    return "custom"


def imagenet_c_cells(root: str | Path, corruptions=None, severities=SEVERITIES) -> list[tuple[str, int, Path]]:
    """``[(corruption, severity, path)]`` for every cell present under ``root`` (benchmark order,
    then extras, then other corruption folders alphabetically). ``corruptions`` restricts the
    names (default all present); a requested cell that is missing raises ``DataError``."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"imagenet-c: dataset root {root} does not exist", hint=f"expected layout:\n{LAYOUT}")
    present = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    order = [c for c in ALL_CORRUPTIONS if c in present] + [c for c in present if c not in ALL_CORRUPTIONS]
    wanted = order if corruptions is None else list(corruptions)
    cells, missing = [], []
    for c in wanted:
        for s in severities:
            p = root / c / str(int(s))
            if p.is_dir():
                cells.append((c, int(s), p))
            elif corruptions is not None:
                missing.append(f"{c}/{s}")
    if missing:
        raise DataError(f"imagenet-c: {len(missing)} requested cells are missing under {root}, e.g. {missing[:5]}",
                        hint=f"expected layout:\n{LAYOUT}")
    if not cells:
        raise DataError(f"imagenet-c: no <corruption>/<severity> folders under {root}", hint=f"expected layout:\n{LAYOUT}")
    return cells


def imagenet_c_dataset(root: Path, corruption: str | None = None, severity: int | None = None,
                       classes: str = "imagenet-1k", on_bad_image: str = "fail") -> EvalDataset:
    root = Path(root)
    if corruption is None or severity is None:
        raise DataError("imagenet-c: options corruption=<name> and severity=<1..5> are required",
                        hint="e.g. corruption=gaussian_noise severity=3; `imagenet_c_cells(root)` lists the cells present")
    try:
        severity = int(severity)
    except (TypeError, ValueError):
        raise DataError(f"imagenet-c: severity must be an integer 1..5, got {severity!r}") from None
    if severity not in SEVERITIES:
        raise DataError(f"imagenet-c: severity must be 1..5, got {severity}")
    cell = root / corruption / str(severity)
    if not cell.is_dir():
        known = "" if corruption in ALL_CORRUPTIONS else f" ({corruption!r} is not an ImageNet-C corruption name)"
        raise DataError(f"imagenet-c: cell {cell} does not exist{known}",
                        hint=f"corruptions: {', '.join(ALL_CORRUPTIONS)}")
    ds = wnid_folder_dataset("imagenet-c", cell, classes=classes, on_bad_image=on_bad_image,
                             protocol={"corruption": corruption, "severity": severity,
                                       "corruption_group": corruption_group(corruption),
                                       # released images are 224x224 crops; the reference test.py only
                                       # converts and normalises them (no resize)
                                       "native_size": 224, "reference_preprocess": "none (already 224x224)"})
    return ds


INFOS.append(DatasetInfo("imagenet-c", imagenet_c_dataset, layout=LAYOUT,
                         description="ImageNet-C (Hendrycks & Dietterich 2019), one corruption/severity cell; options corruption, severity",
                         source="https://zenodo.org/record/2235448 (ImageNet-C tarballs per corruption group)",
                         expected_counts={"total": 50000, "per_class": 50, "n_classes": 1000}, paper_order=300, tags=("synthetic", "corruption")))
