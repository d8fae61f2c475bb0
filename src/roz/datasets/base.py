"""The dataset contract every loader implements.

A dataset is a list of samples ``(path, target)`` plus a **label space**: for each of its labels,
the group of WordNet IDs that count as that label. The engine maps the label space onto any
model's output classes (also WordNet IDs) and max-merges logits within each group, which covers
the protocols of the paper's datasets with one mechanism:

* ImageNet val: 1000 singleton groups (identity);
* ImageNet-R / -A: 200 singleton groups (the class mask of the testbed);
* ObjectNet: one group per ObjectNet class with every ImageNet class mapped to it (a prediction is
  correct if it is any ImageNet class mapped to the image's class);
* ImageNet-Vid-Robust / YTBB-Robust: ImageNet logits max-merged into 30 / 24 video classes.

``label_names`` are the names a zero-shot head built from only this dataset's classes uses
(``head="subset"``), as opposed to the default full head plus mask (``head="full"``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import Dataset

from roz.datasets.filenames import ESCAPING, is_storable, storable_path
from roz.datasets.images import check_decode, check_max_pixels, default_max_pixels, is_image_file, load_image
from roz.datasets.policy import BadImagePolicy
from roz.errors import DataError


def is_wnid(name: str) -> bool:
    return len(name) == 9 and name[0] == "n" and name[1:].isdigit()


@dataclass
class LabelSpace:
    """Per dataset label: the WordNet IDs that count as it, and a prompt-ready name."""

    groups: list[tuple[str, ...]]
    names: list[str]

    def __post_init__(self):
        if len(self.groups) != len(self.names):
            raise DataError(f"label space: {len(self.groups)} groups but {len(self.names)} names")
        if any(len(g) == 0 for g in self.groups):
            raise DataError("label space: a label with no WordNet ID")

    def __len__(self) -> int:
        return len(self.groups)

    @classmethod
    def singletons(cls, wnids, names) -> "LabelSpace":
        return cls([(w,) for w in wnids], list(names))



@dataclass
class EvalDataset(Dataset):
    """Base loader. Subclasses fill ``samples`` and ``labels`` in ``__init__``.

    ``__getitem__`` returns ``(image, target, index, ok)``: ``image`` is ``transform(pil)``
    (the model's preprocessing), ``ok`` is False only for a bad image under ``on_bad_image='skip'``
    (the image is then zeros and the engine drops and lists the sample).
    """

    name: str
    root: Path
    samples: list[tuple[str, int]]
    labels: LabelSpace
    protocol: dict = field(default_factory=dict)
    on_bad_image: str = "fail"
    transform: Callable | None = None
    pre_transform: Callable | None = None  # PIL -> PIL, part of the protocol (e.g. ObjectNet border crop)
    decode: str = "roz"  # image decoder (roz.datasets.images.DECODERS), recorded as protocol["decode"]
    max_image_pixels: int | None = None  # decompression-bomb limit (None: Pillow's), recorded

    def __post_init__(self):
        if self.on_bad_image not in tuple(BadImagePolicy):
            raise DataError(f"on_bad_image must be 'fail' or 'skip', got {self.on_bad_image!r}")
        self.set_decode(self.decode)
        self.set_max_image_pixels(self.max_image_pixels)
        escaped = sum(1 for p, _ in self.samples if not is_storable(str(p)))
        if escaped:
            self.protocol = {**self.protocol, "non_utf8_paths": escaped, "path_escaping": ESCAPING}

    def set_decode(self, decode: str) -> None:
        """Choose the image decoder; the choice is part of the protocol record."""
        self.decode = check_decode(decode)
        self.protocol = {**self.protocol, "decode": decode}

    def set_max_image_pixels(self, limit: int | None) -> None:
        """Images over ``limit`` pixels are bad images (Pillow's bomb guard); recorded in the protocol."""
        self.max_image_pixels = check_max_pixels(limit)
        self.protocol = {**self.protocol, "max_image_pixels": self.max_image_pixels or default_max_pixels()}

    def __len__(self) -> int:
        return len(self.samples)

    def stored_path(self, i: int) -> str:
        """Sample ``i``'s path as written to the store (see ``roz.datasets.filenames``)."""
        return storable_path(self.samples[i][0])

    def path(self, i: int) -> Path:
        p = Path(self.samples[i][0])
        return p if p.is_absolute() else self.root / p

    def valid_labels(self, i: int) -> tuple[int, ...]:
        """Labels counted as correct for sample ``i`` (multi-label datasets override)."""
        return (self.samples[i][1],)

    def sample_meta(self) -> dict[str, list]:
        """Extra per-sample columns written to the store (e.g. video anchor ids)."""
        return {}

    def aggregate(self, rows) -> dict[str, float]:
        """Dataset metrics from the per-sample table (pandas DataFrame with ``correct``,
        ``correct5`` and the ``sample_meta`` columns). Default: top-1 / top-5 in percent."""
        n = len(rows)
        if n == 0:
            return {"top1": float("nan"), "top5": float("nan"), "n": 0}
        return {"top1": 100.0 * float(rows["correct"].mean()), "top5": 100.0 * float(rows["correct5"].mean()), "n": n}

    def metric_names(self) -> list[str]:
        return ["top1", "top5"]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "root": str(self.root), "n": len(self), "n_labels": len(self.labels),
                "protocol": dict(self.protocol)}

    def load(self, i: int):
        """Sample ``i``'s decoded RGB image (loaders whose images are not plain files override it)."""
        return load_image(self.path(i), self.decode, self.max_image_pixels)

    def __getitem__(self, i: int):
        try:
            img = self.load(i)
            if self.pre_transform is not None:
                img = self.pre_transform(img)
            x = self.transform(img) if self.transform is not None else img
            return x, self.samples[i][1], i, True
        except DataError:
            if self.on_bad_image == "fail":
                raise
            return self._blank(), self.samples[i][1], i, False

    def _blank(self):
        size = getattr(self.transform, "output_size", None) or (3, 224, 224)
        return torch.zeros(size)


def scan_class_folders(root: Path, what: str, expect: str = "wnid", allow_empty: bool = False) -> dict[str, list[str]]:
    """``{folder_name: sorted relative image paths}`` for every class folder under ``root``.

    ``expect='wnid'`` requires WordNet-ID folder names (``n01440764``); ``'int'`` decimal indices.
    Raises DataError on a missing root, a wrongly named folder, or an empty class folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{what}: dataset root {root} does not exist or is not a directory")
    out: dict[str, list[str]] = {}
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        if expect == "wnid" and not is_wnid(entry.name):
            raise DataError(
                f"{what}: class folder {Path(entry.path)} is not a WordNet ID",
                hint="expected folders named like n01440764 (one per class); move other folders out of the root",
            )
        if expect == "int" and not entry.name.isdigit():
            raise DataError(f"{what}: class folder {Path(entry.path)} is not a class index (0..999)")
        files = sorted(
            os.path.join(entry.name, f) for f in os.listdir(entry.path)
            if is_image_file(f) and not f.startswith(".")
        )
        if not files and not allow_empty:
            raise DataError(f"{what}: class folder {Path(entry.path)} contains no images",
                            hint="a partial copy? re-extract the dataset, or remove the empty folder")
        out[entry.name] = files
    if not out:
        raise DataError(f"{what}: no class folders found under {root}")
    return out
