"""ImageNet-O (Hendrycks et al. 2021): 2,000 out-of-distribution images in 200 ImageNet class folders.

Each image is filed under the ImageNet class a ResNet-50 confidently (and wrongly) predicts for it;
CLIP_benchmark scores it as 200-way classification with the 1000-way logits masked to the 200
classes, and so does ROZ. The mask is the set of class folders present (``ROOT/<wnid>/*``); a
CLIP_benchmark collection (``wds_imagenet-o``) gives the 200 classes through ``classnames.txt``
(CLIP's ImageNet names in ImageNet order), read back to WordNet IDs here.
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

TOTAL = 2000
SOURCE = "https://github.com/hendrycks/natural-adv-examples (imagenet-o.tar)"
LAYOUT = ("  ROOT/<wnid>/<image>   (200 WordNet-ID class folders; ROOT may also contain imagenet-o/; 2,000 images)\n"
          "  or a CLIP_benchmark collection (wds_imagenet-o): ROOT/test/*.tar + ROOT/classnames.txt")


def _protocol(n: int, mask: str) -> dict:
    return {"dataset": "imagenet-o", "label_space": f"{n} ImageNet classes (1000-way logits masked)", "mask": mask,
            "n_classes": n, "class_names": "open_clip IMAGENET_CLASSNAMES",
            "note": "out-of-distribution images labelled with the class a ResNet-50 predicts (CLIP_benchmark's "
                    "classification protocol)"}


def imagenet_o_dataset(root: Path, on_bad_image: str = "fail") -> EvalDataset:
    root = Path(root)
    base = descend(root, ("imagenet-o",), has_wnid_folders)
    folders = scan_class_folders(base, "imagenet-o", expect="wnid")
    cs = imagenet_1k()
    index = cs.index()
    bad = [w for w in folders if w not in index]
    if bad:
        raise DataError(f"imagenet-o: {len(bad)} class folders are not ImageNet-1k classes (e.g. {bad[:3]})")
    wnids = sorted(folders, key=index.__getitem__)
    sub = cs.subset(wnids)
    samples = [(os.path.relpath(base / f, root), i) for i, w in enumerate(wnids) for f in folders[w]]
    return EvalDataset(name="imagenet-o", root=root, samples=samples, labels=LabelSpace.singletons(sub.wnids, sub.names),
                       protocol=_protocol(len(wnids), "class folders of the dataset"), on_bad_image=on_bad_image)


def wnids_from_names(names: list[str], what: str) -> list[str]:
    """ImageNet wnids of CLIP class names listed in ImageNet order. Two names occur twice in CLIP's
    list ('missile': 657, 744; 'sunglasses': 836, 837); such a name cannot be read back (an error)."""
    cs = imagenet_1k()
    out, last = [], -1
    for n in names:
        hits = [i for i, x in enumerate(cs.names) if x == n and i > last]
        if not hits:
            raise DataError(f"{what}: class name {n!r} is not an ImageNet-1k class name after index {last} "
                            "(classnames.txt must list CLIP's ImageNet names in ImageNet order)")
        if len(hits) > 1:
            raise DataError(f"{what}: class name {n!r} names ImageNet classes {hits}; the collection cannot say which",
                            hint="use the original layout (WordNet-ID class folders)")
        out.append(cs.wnids[hits[0]])
        last = hits[0]
    return out


def imagenet_o_wds(root: Path, on_bad_image: str = "fail") -> EvalDataset:
    from roz.datasets.shards import ShardEvalDataset
    from roz.datasets.wds_collection import check_labels, read_collection

    col = read_collection(root)
    if col.classnames is None:
        raise DataError(f"imagenet-o: {root}/classnames.txt is missing; it names the 200 classes")
    wnids = wnids_from_names(col.classnames, "imagenet-o")
    check_labels(col, len(wnids), "imagenet-o")
    sub = imagenet_1k().subset(wnids)
    return ShardEvalDataset(name="imagenet-o", root=Path(root), samples=[(n, c) for n, c, _ in col.samples],
                            labels=LabelSpace.singletons(sub.wnids, sub.names),
                            protocol={**_protocol(len(wnids), "classnames.txt of the collection"), **col.describe()},
                            on_bad_image=on_bad_image, members={n: m for n, _, m in col.samples})


INFOS.append(DatasetInfo(
    name="imagenet-o", factory=lambda root, **o: imagenet_o_dataset(root, **o),
    description="ImageNet-O: 200 classes, 1000-way logits restricted to them (CLIP_benchmark's classification "
                "protocol for the OOD set)",
    layout=LAYOUT, source=SOURCE, expected_counts={"total": TOTAL, "n_classes": 200},
    paper_order=45, tags=("natural", "restricted"),
))
