"""Stylized-ImageNet (Geirhos et al. 2019) as released: ``ROOT/<wnid>/*``.

The released tree (made with ``bethgelab/stylize-datasets``) has ``train/`` and ``val/`` splits of
wnid folders; point ROOT at the split, or at the parent and pass ``split=val`` (the default when
ROOT has no wnid folders but a ``val/`` folder). For stylising any other dataset on the fly see
``roz.shifts.stylize.Stylize``.
"""

from __future__ import annotations

import os
from pathlib import Path

from roz.datasets.base import EvalDataset, is_wnid
from roz.datasets.imagefolder import wnid_folder_dataset
from roz.datasets.info import DatasetInfo
from roz.errors import DataError

INFOS: list[DatasetInfo] = []  # this family's datasets; roz.datasets.registry registers them

LAYOUT = ("  ROOT/<wnid>/<image>   e.g. ROOT/n01440764/ILSVRC2012_val_00000293.png\n"
          "  (or ROOT/val/<wnid>/... with split=val)")


def _has_wnid_folders(root: Path) -> bool:
    return root.is_dir() and any(e.is_dir() and is_wnid(e.name) for e in os.scandir(root))


def stylized_imagenet_dataset(root: Path, split: str | None = None, classes: str = "imagenet-1k",
                              on_bad_image: str = "fail") -> EvalDataset:
    root = Path(root)
    if split is None and not _has_wnid_folders(root) and _has_wnid_folders(root / "val"):
        split = "val"
    if split is not None:
        if not (root / split).is_dir():
            raise DataError(f"stylized-imagenet: split folder {root / split} does not exist")
        root = root / split
    return wnid_folder_dataset("stylized-imagenet", root, classes=classes, on_bad_image=on_bad_image,
                               protocol={"split": split or "root", "stylization": "AdaIN alpha=1 (released)"})


INFOS.append(DatasetInfo("stylized-imagenet", stylized_imagenet_dataset, layout=LAYOUT,
                         description="Stylized-ImageNet (Geirhos et al. 2019): ImageNet images restyled with AdaIN",
                         source="https://github.com/rgeirhos/Stylized-ImageNet (generate with bethgelab/stylize-datasets)",
                         expected_counts={"total": 50000, "per_class": 50, "n_classes": 1000}, paper_order=320, tags=("synthetic", "style")))
