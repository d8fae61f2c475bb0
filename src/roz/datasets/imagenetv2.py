"""ImageNetV2 (Recht et al. 2019): three 10,000-image test sets, ``ROOT/<0..999>/*.jpeg``.

The folder name IS the ImageNet-1k class index (the sorted-wnid order models use): the label is
``int(folder)``, never the position of the folder in a string-sorted listing (which would put
``10`` before ``2`` and silently scramble 990 of the 1000 classes). 1000-way protocol.
"""

from __future__ import annotations

import os
from pathlib import Path

from roz.datasets._util import descend, has_int_folders
from roz.datasets.base import EvalDataset, LabelSpace, scan_class_folders
from roz.datasets.classes import imagenet_1k
from roz.datasets.info import DatasetInfo
from roz.errors import DataError

INFOS: list[DatasetInfo] = []  # this family's datasets; roz.datasets.registry registers them

VARIANTS = {
    "matched-frequency": "imagenetv2-matched-frequency-format-val",
    "threshold0.7": "imagenetv2-threshold0.7-format-val",
    "top-images": "imagenetv2-top-images-format-val",
}
SOURCE = "https://huggingface.co/datasets/vaishaal/ImageNetV2 (imagenetv2-<variant>.tar.gz)"


def _layout(variant: str) -> str:
    return (f"  ROOT/<class index 0..999>/<image>.jpeg   e.g. ROOT/0/7e1....jpeg, ROOT/999/...\n"
            f"  (ROOT may also be the folder containing {VARIANTS[variant]}/; 1000 folders x 10 images)")


def imagenetv2_dataset(root: Path, variant: str, on_bad_image: str = "fail") -> EvalDataset:
    name = f"imagenetv2-{variant}"
    root = Path(root)
    base = descend(root, (VARIANTS[variant], f"imagenetv2-{variant}"), has_int_folders)
    folders = scan_class_folders(base, name, expect="int")
    cs = imagenet_1k()
    samples = []
    for folder in sorted(folders, key=int):
        idx = int(folder)
        if idx >= len(cs):
            raise DataError(f"{name}: class folder {base / folder} is not an ImageNet-1k index (0..999)")
        samples += [(os.path.relpath(base / f, root), idx) for f in folders[folder]]
    return EvalDataset(
        name=name, root=root, samples=samples, labels=LabelSpace.singletons(cs.wnids, cs.names),
        protocol={"dataset": name, "variant": variant, "label_space": "imagenet-1k (1000-way)",
                  "label_rule": "label = int(folder name) = ImageNet-1k index (sorted-wnid order)",
                  "class_names": "open_clip IMAGENET_CLASSNAMES"},
        on_bad_image=on_bad_image,
    )


def _factory(variant):
    def f(root, **o):
        return imagenetv2_dataset(root, variant, **o)
    return f


for _i, _v in enumerate(VARIANTS):
    INFOS.append(DatasetInfo(
        name=f"imagenetv2-{_v}", factory=_factory(_v),
        description=f"ImageNetV2 {_v} test set, 1000-way (label = int(folder))",
        layout=_layout(_v), source=SOURCE,
        expected_counts={"total": 10000, "per_class": 10, "n_classes": 1000},
        paper_order=10 + _i, tags=("natural", "imagenetv2"),
    ))
