"""Generic ImageFolder-by-WordNet-ID dataset: ``ROOT/<wnid>/*.{JPEG,png,...}``.

The label space is the set of class folders present (sorted by wnid); label names come from the
class set named by ``classes`` (default ``imagenet-1k``, CLIP's curated names).
"""

from __future__ import annotations

from pathlib import Path

from roz.datasets.base import EvalDataset, LabelSpace, scan_class_folders
from roz.datasets.classes import get_class_set
from roz.datasets.info import DatasetInfo

INFOS: list[DatasetInfo] = []  # this family's datasets; roz.datasets.registry registers them

LAYOUT = "  ROOT/<wnid>/<image>   e.g. ROOT/n01440764/img_0001.JPEG (one folder per class, WordNet IDs)"


def wnid_folder_dataset(name: str, root: Path, classes: str = "imagenet-1k", on_bad_image: str = "fail",
                        protocol: dict | None = None, allow_empty: bool = False) -> EvalDataset:
    folders = scan_class_folders(root, name, expect="wnid", allow_empty=allow_empty)
    cs = get_class_set(classes)
    wnids = sorted(folders)
    sub = cs.subset(wnids)
    samples = [(f, i) for i, w in enumerate(wnids) for f in folders[w]]
    return EvalDataset(
        name=name, root=Path(root), samples=samples, labels=LabelSpace.singletons(sub.wnids, sub.names),
        protocol={"label_space": f"{len(wnids)} wnid folders", "class_names": cs.name, **(protocol or {})},
        on_bad_image=on_bad_image,
    )


def _imagefolder(root: Path, **opts) -> EvalDataset:
    return wnid_folder_dataset("imagefolder", root, **opts)


INFOS.append(DatasetInfo(
    name="imagefolder",
    factory=_imagefolder,
    description="any folder tree of images grouped by WordNet ID (custom test sets, ROZ-Mini splits)",
    layout=LAYOUT,
    paper_order=900,
))
