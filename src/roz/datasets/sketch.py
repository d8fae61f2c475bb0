"""ImageNet-Sketch (Wang et al. 2019): ``ROOT/sketch/<wnid>/*.JPEG`` (or ``ROOT/<wnid>/...``).

1000-way protocol. The public release has 50,889 images; the testbed (Taori et al. 2020) evaluates
a 50,000-image version (50 per class). Both are accepted; the protocol records which one was found
(``release-50889``, ``testbed-50000`` or ``other``).
"""

from __future__ import annotations

import os
from pathlib import Path

from roz.datasets._util import descend, has_wnid_folders
from roz.datasets.base import EvalDataset, LabelSpace, scan_class_folders
from roz.datasets.classes import imagenet_1k
from roz.datasets.info import DatasetInfo
from roz.errors import DataError

INFOS: list[DatasetInfo] = []  # this family's datasets; roz.datasets.registry registers them

RELEASE_TOTAL = 50889
TESTBED_TOTAL = 50000
LAYOUT = ("  ROOT/sketch/<wnid>/<image>.JPEG  (or ROOT/<wnid>/...; 1000 class folders;\n"
          "  50,889 images in the release, 50,000 in the testbed's version)")
SOURCE = "https://github.com/HaohanWang/ImageNet-Sketch (Google Drive / huggingface.co/datasets/imagenet_sketch)"


def sketch_variant(n: int) -> str:
    return {RELEASE_TOTAL: "release-50889", TESTBED_TOTAL: "testbed-50000"}.get(n, "other")


def sketch_dataset(root: Path, on_bad_image: str = "fail") -> EvalDataset:
    root = Path(root)
    base = descend(root, ("sketch", "imagenet-sketch", "ImageNet-Sketch"), has_wnid_folders)
    folders = scan_class_folders(base, "imagenet-sketch", expect="wnid")
    cs = imagenet_1k()
    index = cs.index()
    bad = [w for w in folders if w not in index]
    if bad:
        raise DataError(f"imagenet-sketch: {len(bad)} class folders are not ImageNet-1k classes (e.g. {bad[:3]})")
    samples = [(os.path.relpath(base / f, root), index[w]) for w in sorted(folders) for f in folders[w]]
    return EvalDataset(
        name="imagenet-sketch", root=root, samples=samples, labels=LabelSpace.singletons(cs.wnids, cs.names),
        protocol={"dataset": "imagenet-sketch", "label_space": "imagenet-1k (1000-way)",
                  "version": sketch_variant(len(samples)), "n_images": len(samples),
                  "class_names": "open_clip IMAGENET_CLASSNAMES"},
        on_bad_image=on_bad_image,
    )


INFOS.append(DatasetInfo(
    name="imagenet-sketch", factory=lambda root, **o: sketch_dataset(root, **o),
    description="ImageNet-Sketch, 1000-way (release 50,889 or testbed 50,000 images; recorded)",
    layout=LAYOUT, source=SOURCE,
    expected_counts={"total": [RELEASE_TOTAL, TESTBED_TOTAL], "n_classes": 1000},
    paper_order=20, tags=("natural",),
))
