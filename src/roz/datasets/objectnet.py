"""ObjectNet (Barbu et al. 2019) under the testbed's ``objectnet-1.0-beta`` protocol.

Layout: ``ROOT/images/<folder>/*.png`` and ``ROOT/mappings/`` with the three JSON files that ship
in the download:

* ``folder_to_objectnet_label.json``: folder name -> ObjectNet class name (313 classes);
* ``objectnet_to_imagenet_1k.json``: ObjectNet class name -> ImageNet class names, ``'; '``-separated
  (113 ObjectNet classes overlap ImageNet, mapped to 125 ImageNet classes);
* ``imagenet_to_labels.json``: ImageNet index (as a string) -> that class's lemma string.

Protocol (Taori et al. 2020 testbed):

* only images of the 113 mapped ObjectNet classes are evaluated (18,514 images in the release);
* a 2-pixel border is cropped from every image (ObjectNet frames have a 1-2 px border) before
  the model's own resize/center-crop (``pre_transform``); skip with ``pre_cropped=True`` for
  copies that were cropped already (recorded);
* the logits are restricted to the 125 ImageNet classes mapped to ObjectNet and the prediction
  is correct when it is any ImageNet class mapped to the image's ObjectNet class. Here each
  ObjectNet class is one label whose group is its mapped ImageNet classes (max-merge); the groups
  are disjoint, so argmax-then-lookup and max-merge-then-argmax agree (``top5`` is over the 113
  merged labels, a ROZ addition -- the testbed reports top-1 only).

The label names are ObjectNet's own class names, so the alternative zero-shot head
(``head=subset``) is the variant "head built from ObjectNet's 113 names"; the default head is the
full ImageNet head with the mapping above.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from roz.datasets._util import MetaEvalDataset, read_json
from roz.datasets.base import EvalDataset, LabelSpace
from roz.datasets.classes import imagenet_1k
from roz.datasets.images import is_image_file
from roz.datasets.info import DatasetInfo
from roz.errors import DataError

INFOS: list[DatasetInfo] = []  # this family's datasets; roz.datasets.registry registers them

PROTOCOL = "objectnet-1.0-beta"
MAPPING_FILES = ("folder_to_objectnet_label.json", "objectnet_to_imagenet_1k.json", "imagenet_to_labels.json")
SUBDIRS = ("objectnet-1.0", "objectnet")
TESTBED_TOTAL = 18514
RELEASE_TOTAL = 50000
LAYOUT = ("  ROOT/images/<folder>/<image>.png   (313 class folders, e.g. ROOT/images/alarm_clock/...)\n"
          "  ROOT/mappings/folder_to_objectnet_label.json, objectnet_to_imagenet_1k.json, imagenet_to_labels.json\n"
          "  (ROOT may also contain objectnet-1.0/; 18,514 images in the 113 ImageNet-overlapping classes)")
SOURCE = "https://objectnet.dev/download.html (objectnet-1.0.zip)"


class BorderCrop:
    """Crop ``border`` pixels from every side (PIL.ImageOps.crop), the testbed's ObjectNet step."""

    def __init__(self, border: int = 2):
        self.border = int(border)

    def __call__(self, img: Image.Image) -> Image.Image:
        if img.width <= 2 * self.border or img.height <= 2 * self.border:
            return img
        return ImageOps.crop(img, border=self.border)

    def __repr__(self):
        return f"BorderCrop({self.border})"


@dataclass
class ObjectNetMapping:
    folder_to_label: dict[str, str]
    groups: dict[str, tuple[str, ...]]  # mapped ObjectNet label -> ImageNet wnids (file order)
    indices: dict[str, tuple[int, ...]]  # same, as ImageNet-1k indices


def find_mappings(root: Path) -> Path:
    root = Path(root)
    for base in (root, *(root / s for s in SUBDIRS)):
        if (base / "mappings").is_dir():
            return base / "mappings"
    if all((root / f).is_file() for f in MAPPING_FILES):
        return root
    raise DataError(f"objectnet: no mappings/ folder under {root}",
                    hint="the mappings/ folder ships in objectnet-1.0.zip next to images/")


def load_objectnet_mapping(mappings: Path) -> ObjectNetMapping:
    """Resolve the ``'; '``-separated ImageNet lemma strings exactly through ``imagenet_to_labels.json``."""
    mappings = Path(mappings)
    f2l = read_json(mappings / MAPPING_FILES[0], "objectnet")
    o2i = read_json(mappings / MAPPING_FILES[1], "objectnet")
    i2l = read_json(mappings / MAPPING_FILES[2], "objectnet")
    cs = imagenet_1k()
    lemma_to_idx: dict[str, list[int]] = {}
    for k, lemma in i2l.items():
        idx = int(k)
        if not 0 <= idx < len(cs):
            raise DataError(f"objectnet: {mappings / MAPPING_FILES[2]}: index {k} is not an ImageNet-1k index")
        lemma_to_idx.setdefault(lemma, []).append(idx)
    labels = set(f2l.values())
    groups, indices = {}, {}
    for on_label, names in o2i.items():
        if on_label not in labels:
            raise DataError(f"objectnet: {mappings / MAPPING_FILES[1]} maps {on_label!r}, which no folder has "
                            f"in {MAPPING_FILES[0]}")
        idx = []
        for lemma in names.split("; "):
            hits = lemma_to_idx.get(lemma)
            if not hits:
                raise DataError(f"objectnet: ImageNet class name {lemma!r} (for {on_label!r}) is not in "
                                f"{mappings / MAPPING_FILES[2]}")
            if len(hits) > 1:
                raise DataError(f"objectnet: ImageNet class name {lemma!r} is ambiguous (indices {hits})")
            idx.append(hits[0])
        indices[on_label] = tuple(idx)
        groups[on_label] = tuple(cs.wnids[i] for i in idx)
    seen: dict[int, str] = {}
    for lab, idx in indices.items():
        for i in idx:
            if i in seen:
                raise DataError(f"objectnet: ImageNet class {i} is mapped to both {seen[i]!r} and {lab!r}",
                                hint="the ObjectNet protocol needs disjoint groups")
            seen[i] = lab
    return ObjectNetMapping(dict(f2l), groups, indices)


def objectnet_dataset(root: Path, mappings=None, border: int = 2, pre_cropped: bool = False,
                      on_bad_image: str = "fail") -> EvalDataset:
    root = Path(root)
    base = next((b for b in (root, *(root / s for s in SUBDIRS)) if (b / "images").is_dir()), None)
    if base is None:
        raise DataError(f"objectnet: no images/ folder under {root}")
    mdir = Path(mappings).expanduser() if mappings is not None else find_mappings(base)
    mp = load_objectnet_mapping(mdir)
    label_names = list(mp.groups)
    pos = {label: i for i, label in enumerate(label_names)}
    images = base / "images"
    samples, meta, n_unmapped, unknown = [], [], 0, []
    for entry in sorted(os.scandir(images), key=lambda e: e.name):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        label = mp.folder_to_label.get(entry.name)
        if label is None:
            unknown.append(entry.name)
            continue
        files = sorted(f for f in os.listdir(entry.path) if is_image_file(f) and not f.startswith("."))
        if label not in pos:
            n_unmapped += len(files)
            continue
        if not files:
            raise DataError(f"objectnet: class folder {Path(entry.path)} contains no images",
                            hint="a partial copy? re-extract the dataset")
        for f in files:
            samples.append((os.path.relpath(os.path.join(entry.path, f), root), pos[label]))
            meta.append(label)
    if unknown:
        raise DataError(f"objectnet: {len(unknown)} folders under {images} are not in {MAPPING_FILES[0]} "
                        f"(e.g. {unknown[:3]})")
    if not samples:
        raise DataError(f"objectnet: no images of the {len(label_names)} ImageNet-mapped classes under {images}")
    n_in = len({i for idx in mp.indices.values() for i in idx})
    return MetaEvalDataset(
        name="objectnet", root=root, samples=samples, labels=LabelSpace(list(mp.groups.values()), label_names),
        protocol={"dataset": "objectnet", "protocol": PROTOCOL, "n_classes": len(label_names),
                  "n_imagenet_classes": n_in, "n_objectnet_classes_total": len(set(mp.folder_to_label.values())),
                  "n_images_excluded_unmapped": n_unmapped, "border_crop_px": 0 if pre_cropped else int(border),
                  "pre_cropped": bool(pre_cropped),
                  "scoring": "logits restricted to the mapped ImageNet classes; correct if the argmax is any "
                             "ImageNet class mapped to the image's ObjectNet class (max-merge per class)",
                  "label_names": "ObjectNet class names (head=subset builds the head from them)"},
        on_bad_image=on_bad_image,
        pre_transform=None if pre_cropped else BorderCrop(border),
        meta={"objectnet_class": meta},
    )


INFOS.append(DatasetInfo(
    name="objectnet", factory=lambda root, **o: objectnet_dataset(root, **o),
    description="ObjectNet 1.0, testbed protocol objectnet-1.0-beta: 113 ImageNet-overlapping classes, "
                "2-px border crop, mapped-class scoring (options: pre_cropped, border, mappings)",
    layout=LAYOUT, source=SOURCE,
    expected_counts={"total": TESTBED_TOTAL, "n_classes": 113},
    paper_order=50, tags=("natural", "restricted"),
))
