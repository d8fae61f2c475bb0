"""ImageNet (ILSVRC2012) validation set, and its class-restricted variants.

Layouts accepted for ``imagenet-val`` (searched in this order):

* class folders: ``ROOT/<wnid>/*.JPEG`` or ``ROOT/val/<wnid>/*.JPEG``;
* the flat release ``ROOT[/val]/ILSVRC2012_val_00000001.JPEG ...`` with the devkit ground truth
  ``ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt`` (one ILSVRC2012_ID per
  line, image 1 first) whose IDs are mapped to WordNet IDs by ``data/meta.mat`` -- the devkit IDs
  are NOT the sorted-wnid indices models use;
* Kaggle's flat ``ILSVRC/Data/CLS-LOC/val/*.JPEG`` with ``LOC_val_solution.csv`` (first token of
  ``PredictionString`` is the wnid).

The protocol is always 1000-way: the label space is the full ImageNet-1k class list whatever
subset of files is present (size checks belong to ``roz datasets check``).

Restricted variants (the testbed's ``val-on-*-classes``): ImageNet val images of a class subset,
scored with the logits restricted to that subset (a class mask). The subset comes from metadata:
timm's shipped ImageNet-R / -A synset lists, and the ObjectNet download's ``mappings/`` folder.
``val-on-objectnet-classes`` further collapses the 125 mapped classes into the 113 ObjectNet
classes (max over each class's group), as the testbed does.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from roz.datasets.base import EvalDataset, LabelSpace, is_wnid
from roz.datasets.classes import imagenet_1k
from roz.datasets.images import is_image_file
from roz.datasets.info import DatasetInfo
from roz.errors import DataError

INFOS: list[DatasetInfo] = []  # this family's datasets; roz.datasets.registry registers them

SOURCE = "https://image-net.org/download-images.php (ILSVRC2012 validation images + devkit t12)"
LAYOUT = (
    "  ROOT/<wnid>/<image>.JPEG          (or ROOT/val/<wnid>/...; 1000 folders x 50 images)\n"
    "  or flat: ROOT/ILSVRC2012_val_00000001.JPEG ... (or ROOT/val/...) plus\n"
    "    ROOT/ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt and data/meta.mat\n"
    "    (or pass devkit=PATH), or Kaggle's ROOT/LOC_val_solution.csv (pass ground_truth=PATH elsewhere)"
)
FLAT_RE = re.compile(r"ILSVRC2012_val_(\d{8})\.(jpe?g|png)$", re.IGNORECASE)
DEVKIT_NAMES = ("ILSVRC2012_devkit_t12", "devkit", "ILSVRC2012_devkit")


# ----------------------------------------------------------------------------- ground truth
def load_meta_mat(path: Path) -> dict[int, str]:
    """ILSVRC2012_ID -> wnid for the 1000 leaf classes, from the devkit's ``data/meta.mat``."""
    import numpy as np
    import scipy.io

    try:
        m = scipy.io.loadmat(str(path), squeeze_me=False)
    except Exception as e:  # noqa: BLE001 - scipy raises many kinds
        raise DataError(f"imagenet-val: cannot read devkit {path}: {type(e).__name__}: {e}") from None
    if "synsets" not in m:
        raise DataError(f"imagenet-val: {path} has no 'synsets' table (is it the ILSVRC2012 devkit meta.mat?)")
    s = m["synsets"].reshape(-1)
    out = {}
    for row in s:
        sid = int(np.asarray(row["ILSVRC2012_ID"]).squeeze())
        wnid = str(np.asarray(row["WNID"]).squeeze())
        nchild = int(np.asarray(row["num_children"]).squeeze()) if "num_children" in s.dtype.names else 0
        if nchild == 0 and is_wnid(wnid):
            out[sid] = wnid
    return out


def load_devkit_ground_truth(devkit: Path) -> dict[int, str]:
    """image number (1-based) -> wnid from the devkit ground truth + meta.mat."""
    devkit = Path(devkit)
    data = devkit / "data" if (devkit / "data").is_dir() else devkit
    gt = data / "ILSVRC2012_validation_ground_truth.txt"
    meta = data / "meta.mat"
    for p in (gt, meta):
        if not p.is_file():
            raise DataError(f"imagenet-val: devkit file {p} is missing",
                            hint="extract ILSVRC2012_devkit_t12.tar.gz next to the images or pass devkit=PATH")
    id_to_wnid = load_meta_mat(meta)
    out = {}
    with open(gt) as f:
        for n, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            sid = int(line)
            if sid not in id_to_wnid:
                raise DataError(f"imagenet-val: {gt} line {n}: ILSVRC2012_ID {sid} is not a leaf class of {meta}")
            out[n] = id_to_wnid[sid]
    return out


def load_kaggle_solution(path: Path) -> dict[int, str]:
    out = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            m = re.match(r"ILSVRC2012_val_(\d{8})", row.get("ImageId", ""))
            if not m:
                continue
            wnid = (row.get("PredictionString") or "").split()[:1]
            if not wnid or not is_wnid(wnid[0]):
                raise DataError(f"imagenet-val: {path}: bad PredictionString for {row.get('ImageId')}")
            out[int(m.group(1))] = wnid[0]
    if not out:
        raise DataError(f"imagenet-val: {path} has no ImageId,PredictionString rows")
    return out


def _flat_dir(root: Path) -> Path | None:
    for d in (root, root / "val", root / "ILSVRC" / "Data" / "CLS-LOC" / "val"):
        if d.is_dir():
            try:
                with os.scandir(d) as it:
                    if any(FLAT_RE.match(e.name) for e in it):
                        return d
            except OSError:
                pass
    return None


def _find_ground_truth(root: Path, devkit, ground_truth) -> tuple[dict[int, str], str]:
    if ground_truth is not None:
        p = Path(ground_truth).expanduser()
        if p.suffix.lower() == ".csv":
            return load_kaggle_solution(p), f"kaggle:{p.name}"
        if p.is_dir():
            return load_devkit_ground_truth(p), "devkit"
        # a ground-truth txt: meta.mat must sit next to it
        return load_devkit_ground_truth(p.parent), "devkit"
    if devkit is not None:
        return load_devkit_ground_truth(Path(devkit).expanduser()), "devkit"
    for base in (root, root.parent):
        for name in DEVKIT_NAMES:
            if (base / name).is_dir():
                return load_devkit_ground_truth(base / name), "devkit"
        if (base / "LOC_val_solution.csv").is_file():
            return load_kaggle_solution(base / "LOC_val_solution.csv"), "kaggle:LOC_val_solution.csv"
    raise DataError(
        f"imagenet-val: flat ILSVRC2012_val_*.JPEG files under {root} but no ground truth found",
        hint="put ILSVRC2012_devkit_t12/ (or Kaggle's LOC_val_solution.csv) in ROOT, or pass devkit=PATH / ground_truth=PATH",
    )


def scan_imagenet_val(root: Path, devkit=None, ground_truth=None) -> tuple[list[tuple[str, str]], str]:
    """``([(relative path, wnid)], layout)`` for every ImageNet val image under ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"imagenet-val: dataset root {root} does not exist or is not a directory")
    for base in (root, root / "val"):
        if base.is_dir():
            folders = sorted(e.name for e in os.scandir(base) if e.is_dir() and is_wnid(e.name))
            if folders:
                items = []
                for w in folders:
                    d = base / w
                    files = sorted(f for f in os.listdir(d) if is_image_file(f) and not f.startswith("."))
                    if not files:
                        raise DataError(f"imagenet-val: class folder {d} contains no images",
                                        hint="a partial copy? re-extract the dataset, or remove the empty folder")
                    items += [(os.path.relpath(d / f, root), w) for f in files]
                return items, "class-folders"
    flat = _flat_dir(root)
    if flat is None:
        raise DataError(f"imagenet-val: no WordNet-ID class folders and no ILSVRC2012_val_*.JPEG files under {root}")
    gt, source = _find_ground_truth(root, devkit, ground_truth)
    items, unknown = [], []
    for f in sorted(os.listdir(flat)):
        m = FLAT_RE.match(f)
        if not m:
            continue
        n = int(m.group(1))
        if n not in gt:
            unknown.append(f)
            continue
        items.append((os.path.relpath(flat / f, root), gt[n]))
    if unknown:
        raise DataError(f"imagenet-val: {len(unknown)} images have no ground-truth entry (e.g. {unknown[:3]})",
                        hint="the ground truth file does not match these images")
    return items, f"flat+{source}"


# ----------------------------------------------------------------------------- datasets
def imagenet_val_dataset(root: Path, devkit=None, ground_truth=None, on_bad_image: str = "fail",
                         classes=None, name: str = "imagenet-val", protocol: dict | None = None,
                         groups: dict[str, tuple[str, ...]] | None = None, _scanned=None) -> EvalDataset:
    """ImageNet val; ``classes`` (list of wnids) restricts images AND logits to that subset;
    ``groups`` (label name -> wnids, disjoint) instead collapses the subset into those labels: an
    image of any wnid of a group has that label, and the label's logit is the max over its group
    (the engine's LabelMap), so predicting a sibling class of the same group counts as correct."""
    cs = imagenet_1k()
    index = cs.index()
    # _scanned: ([(path, wnid)], layout) read elsewhere (a CLIP_benchmark collection, roz.datasets.wds_layouts)
    items, layout = _scanned or scan_imagenet_val(Path(root), devkit=devkit, ground_truth=ground_truth)
    bad = sorted({w for _, w in items if w not in index})
    if bad:
        raise DataError(f"{name}: {len(bad)} class folders are not ImageNet-1k classes (e.g. {bad[:3]})")
    if groups is not None:
        labels = LabelSpace([tuple(g) for g in groups.values()], list(groups))
        pos = {w: i for i, g in enumerate(labels.groups) for w in g}
        n_in = len(pos)
        proto = {"label_space": f"{len(labels)} labels collapsing {n_in} ImageNet classes "
                                "(logits max-merged per label)",
                 "restricted": True, "collapsed": True, "n_classes": len(labels), "n_imagenet_classes": n_in}
    elif classes is None:
        labels = LabelSpace.singletons(cs.wnids, cs.names)
        pos = cs.index()
        proto = {"label_space": "imagenet-1k (1000-way)"}
    else:
        wanted = sorted(set(classes), key=index.__getitem__)  # ImageNet index order
        sub = cs.subset(wanted)
        labels = LabelSpace.singletons(sub.wnids, sub.names)
        pos = sub.index()
        proto = {"label_space": f"{len(wanted)} ImageNet classes (logits masked to the subset)",
                 "restricted": True, "n_classes": len(wanted)}
    samples = [(p, pos[w]) for p, w in items if w in pos]
    return EvalDataset(
        name=name, root=Path(root), samples=samples, labels=labels,
        protocol={"dataset": name, "layout": layout, "class_names": "open_clip IMAGENET_CLASSNAMES",
                  **proto, **(protocol or {})},
        on_bad_image=on_bad_image,
    )


def timm_synsets(which: str) -> list[str]:
    """The 200 wnids of ImageNet-R (``'r'``) or -A (``'a'``) as shipped with timm."""
    from importlib import resources

    name = {"r": "imagenet_r_synsets.txt", "a": "imagenet_a_synsets.txt"}[which]
    try:
        text = resources.files("timm.data").joinpath("_info").joinpath(name).read_text()
    except (FileNotFoundError, ModuleNotFoundError) as e:
        raise DataError(f"cannot read timm's {name}: {e}", hint="install timm>=0.9") from None
    return [w.strip() for w in text.split() if w.strip()]


def _val(root, **o):
    return imagenet_val_dataset(root, **o)


def _val_r(root, **o):
    return imagenet_val_dataset(root, classes=timm_synsets("r"), name="val-on-imagenet-r-classes",
                                protocol={"class_subset": "imagenet-r (timm imagenet_r_synsets.txt)"}, **o)


def _val_a(root, **o):
    return imagenet_val_dataset(root, classes=timm_synsets("a"), name="val-on-imagenet-a-classes",
                                protocol={"class_subset": "imagenet-a (timm imagenet_a_synsets.txt)"}, **o)


def _val_objectnet(root, objectnet_root=None, mappings=None, **o):
    from roz.datasets.objectnet import find_mappings, load_objectnet_mapping

    if mappings is None and objectnet_root is None:
        raise DataError(
            "val-on-objectnet-classes needs the ObjectNet mappings",
            hint="pass objectnet_root=PATH (the ObjectNet download) or mappings=PATH (its mappings/ folder)",
        )
    mdir = Path(mappings).expanduser() if mappings is not None else find_mappings(Path(objectnet_root).expanduser())
    mp = load_objectnet_mapping(mdir)
    n_in = len({w for g in mp.groups.values() for w in g})
    # The testbed (accuracy_topk_subselected_and_collapsed) collapses the mapped logits into the
    # ObjectNet classes by max, exactly as the objectnet dataset itself is scored: a sibling
    # ImageNet class of the same ObjectNet class is correct.
    return imagenet_val_dataset(
        root, groups=mp.groups, name="val-on-objectnet-classes",
        protocol={"class_subset": f"ImageNet classes mapped to ObjectNet ({n_in} classes from {len(mp.groups)} "
                                  "ObjectNet classes; objectnet mappings/)",
                  "scoring": "logits of the mapped ImageNet classes max-merged per ObjectNet class; correct if "
                             "the image's ObjectNet class wins (testbed val-on-objectnet-classes, collapsed)",
                  "label_names": "ObjectNet class names (head=subset builds the head from them)"},
        **o)


_COMMON = dict(layout=LAYOUT, source=SOURCE)
INFOS.append(DatasetInfo(
    name="imagenet-val", factory=_val, description="ImageNet ILSVRC2012 validation set, 1000-way",
    expected_counts={"total": 50000, "per_class": 50, "n_classes": 1000}, paper_order=0,
    tags=("natural", "imagenet"), **_COMMON))
INFOS.append(DatasetInfo(
    name="val-on-imagenet-r-classes", factory=_val_r,
    description="ImageNet val restricted to the 200 ImageNet-R classes (images and logits)",
    expected_counts={"total": 10000, "per_class": 50, "n_classes": 200}, paper_order=31,
    tags=("natural", "imagenet", "restricted"), **_COMMON))
INFOS.append(DatasetInfo(
    name="val-on-imagenet-a-classes", factory=_val_a,
    description="ImageNet val restricted to the 200 ImageNet-A classes (images and logits)",
    expected_counts={"total": 10000, "per_class": 50, "n_classes": 200}, paper_order=41,
    tags=("natural", "imagenet", "restricted"), **_COMMON))
INFOS.append(DatasetInfo(
    name="val-on-objectnet-classes", factory=_val_objectnet,
    description="ImageNet val images of the 125 ImageNet classes mapped to ObjectNet, scored over the 113 "
                "ObjectNet classes (max-merged logits; option objectnet_root=PATH or mappings=PATH)",
    expected_counts={"total": 6250, "n_classes": 113}, paper_order=51,
    tags=("natural", "imagenet", "restricted"), **_COMMON))
