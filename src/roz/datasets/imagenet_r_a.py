"""ImageNet-R (Hendrycks et al. 2021) and ImageNet-A (Hendrycks et al. 2021): ``ROOT/<wnid>/*``.

Both cover 200 ImageNet classes. The testbed's protocol (used here): the model's 1000-way logits
are restricted to the dataset's classes (a class mask) before the argmax. The mask is derived from
the class folders that ship with the dataset, which must equal the published 200-class list (timm's
``imagenet_r_synsets.txt`` / ``imagenet_a_synsets.txt``) -- a copy with missing or extra class
folders is an error unless the option ``allow_partial=true`` is given (recorded in the protocol).
"""

from __future__ import annotations

import os
from pathlib import Path

from roz.datasets._util import descend, has_wnid_folders
from roz.datasets.base import EvalDataset, LabelSpace, scan_class_folders
from roz.datasets.classes import imagenet_1k
from roz.datasets.imagenet import timm_synsets
from roz.datasets.info import DatasetInfo
from roz.errors import DataError

INFOS: list[DatasetInfo] = []  # this family's datasets; roz.datasets.registry registers them

INFO = {
    "imagenet-r": dict(total=30000, sub=("imagenet-r",), which="r",
                       source="https://github.com/hendrycks/imagenet-r (imagenet-r.tar)"),
    "imagenet-a": dict(total=7500, sub=("imagenet-a",), which="a",
                       source="https://github.com/hendrycks/natural-adv-examples (imagenet-a.tar)"),
}


def _layout(name):
    return (f"  ROOT/<wnid>/<image>   (200 WordNet-ID class folders, e.g. ROOT/n01443537/...;\n"
            f"  ROOT may also contain {name}/; {INFO[name]['total']:,} images)")


def parse_flag(value, what: str) -> bool:
    """A boolean loader option given as a bool or as CLI text (``--option KEY=true``)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise DataError(f"{what}={value!r} is not a boolean", hint=f"pass {what}=true or {what}=false")


def restricted_wnid_dataset(root: Path, name: str, on_bad_image: str = "fail", allow_partial=False) -> EvalDataset:
    root = Path(root)
    allow_partial = parse_flag(allow_partial, "allow_partial")
    base = descend(root, INFO[name]["sub"], has_wnid_folders)
    folders = scan_class_folders(base, name, expect="wnid")
    cs = imagenet_1k()
    index = cs.index()
    bad = [w for w in folders if w not in index]
    if bad:
        raise DataError(f"{name}: {len(bad)} class folders are not ImageNet-1k classes (e.g. {bad[:3]})")
    wnids = sorted(folders, key=index.__getitem__)
    published = timm_synsets(INFO[name]["which"])
    missing = sorted(set(published) - set(wnids))
    extra = sorted(set(wnids) - set(published))
    # The mask is the set of folders present, while the reference (val-on-*-classes) always uses
    # the published 200: a partial copy would silently score a different, easier task.
    if (missing or extra) and not allow_partial:
        raise DataError(
            f"{name}: the copy at {base} has {len(wnids)} class folders, the published dataset has "
            f"{len(published)}: {len(missing)} missing (e.g. {missing[:5]}), {len(extra)} not published "
            f"(e.g. {extra[:5]}); the class mask would differ from the reference's {len(published)} classes",
            hint=f"re-download {INFO[name]['source']}, or pass --option allow_partial=true (dataset option "
                 "allow_partial: true) to evaluate on the folders present (recorded in the protocol)")
    sub = cs.subset(wnids)
    samples = [(os.path.relpath(base / f, root), i) for i, w in enumerate(wnids) for f in folders[w]]
    return EvalDataset(
        name=name, root=root, samples=samples, labels=LabelSpace.singletons(sub.wnids, sub.names),
        protocol={"dataset": name, "label_space": f"{len(wnids)} ImageNet classes (1000-way logits masked)",
                  "mask": "class folders of the dataset", "n_classes": len(wnids),
                  "mask_matches_published": not (missing or extra), "allow_partial": allow_partial,
                  "n_published_classes": len(published), "n_missing_classes": len(missing),
                  "n_unpublished_classes": len(extra),
                  "class_names": "open_clip IMAGENET_CLASSNAMES"},
        on_bad_image=on_bad_image,
    )


for _name, _order in (("imagenet-r", 30), ("imagenet-a", 40)):
    INFOS.append(DatasetInfo(
        name=_name, factory=(lambda n: lambda root, **o: restricted_wnid_dataset(root, n, **o))(_name),
        description=f"{_name.replace('imagenet', 'ImageNet')}: 200 classes, 1000-way logits restricted to them "
                    "(option allow_partial=true for a copy missing classes)",
        layout=_layout(_name), source=INFO[_name]["source"],
        expected_counts={"total": INFO[_name]["total"], "n_classes": 200, "classes": f"timm:{INFO[_name]['which']}"},
        paper_order=_order, tags=("natural", "restricted"),
    ))
