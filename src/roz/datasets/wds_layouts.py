"""ROZ's natural-shift datasets read from CLIP_benchmark webdataset collections.

A local copy of ``wds_imagenet1k``, ``wds_imagenetv2``, ``wds_imagenet_sketch``, ``wds_imagenet-r``,
``wds_imagenet-a``, ``wds_objectnet`` or ``wds_imagenet-o`` is accepted as the root of ``imagenet-val``,
``imagenetv2-*``, ``imagenet-sketch``, ``imagenet-r``, ``imagenet-a``, ``objectnet`` or ``imagenet-o``
(and ``wds_imagenet1k`` of the ``val-on-*-classes`` variants)
(the registry detects the layout). The protocol is the original layout's: same label space,
class masks and ObjectNet border crop + mapping; only the sample paths differ
(``test/0.tar/s0000000.webp``) and the protocol records ``layout: clip_benchmark-wds``.

How CLIP_benchmark numbers the labels (``clip_benchmark/datasets/builder.py``):

* ImageNet, V2, Sketch: the ImageNet-1k index (sorted-wnid order);
* ImageNet-R / -A: the position among the dataset's 200 wnids in sorted order (torchvision
  ``ImageFolder`` over the 200 class folders);
* ObjectNet (``objectnet.py``, from wise-ft): the position among the sorted *folder names* of the
  113 ImageNet-mapped ObjectNet classes; ``classnames.txt`` holds their ObjectNet names in
  lower case. The collection does not carry ObjectNet's ``mappings/``, so the mapping to ImageNet
  classes is read from the ObjectNet download (option ``mappings=PATH``, or ``ROOT/mappings``).
"""

from __future__ import annotations

from pathlib import Path

from roz.datasets.base import EvalDataset, LabelSpace
from roz.datasets.classes import imagenet_1k
from roz.datasets.imagenet_o import imagenet_o_wds
from roz.datasets.shards import ShardEvalDataset
from roz.datasets.wds_collection import WdsCollection, check_labels, read_collection
from roz.errors import DataError


def _dataset(col: WdsCollection, name: str, samples, labels: LabelSpace, protocol: dict, on_bad_image: str,
             **extra) -> EvalDataset:
    members = {n: m for n, _, m in col.samples}
    return ShardEvalDataset(name=name, root=col.root, samples=samples, labels=labels,
                            protocol={**protocol, **col.describe()}, on_bad_image=on_bad_image,
                            members=members, **extra)


def imagenet_1000_way(root: Path, name: str, protocol: dict, on_bad_image: str = "fail") -> EvalDataset:
    """imagenet-val / imagenetv2-* / imagenet-sketch: label = ImageNet-1k index."""
    col = read_collection(root)
    cs = imagenet_1k()
    check_labels(col, len(cs), name)
    samples = [(n, c) for n, c, _ in col.samples]
    return _dataset(col, name, samples, LabelSpace.singletons(cs.wnids, cs.names),
                    {"dataset": name, "label_space": "imagenet-1k (1000-way)",
                     "class_names": "open_clip IMAGENET_CLASSNAMES", **protocol}, on_bad_image)


def imagenet_val(root: Path, on_bad_image: str = "fail") -> EvalDataset:
    return imagenet_1000_way(root, "imagenet-val", {}, on_bad_image)


def imagenetv2(variant: str):
    def build(root: Path, on_bad_image: str = "fail") -> EvalDataset:
        return imagenet_1000_way(root, f"imagenetv2-{variant}",
                                 {"variant": variant, "label_rule": "label = .cls = ImageNet-1k index"}, on_bad_image)
    return build


def sketch(root: Path, on_bad_image: str = "fail") -> EvalDataset:
    from roz.datasets.sketch import sketch_variant

    ds = imagenet_1000_way(root, "imagenet-sketch", {}, on_bad_image)
    ds.protocol = {**ds.protocol, "version": sketch_variant(len(ds)), "n_images": len(ds)}
    return ds


def restricted(name: str, which: str):
    """imagenet-r / imagenet-a: label k = the k-th of the published 200 wnids in ImageNet order."""

    def build(root: Path, on_bad_image: str = "fail", allow_partial=False) -> EvalDataset:
        from roz.datasets.imagenet import timm_synsets
        from roz.datasets.imagenet_r_a import parse_flag

        col = read_collection(root)
        cs = imagenet_1k()
        index = cs.index()
        wnids = sorted(timm_synsets(which), key=index.__getitem__)
        check_labels(col, len(wnids), name)
        sub = cs.subset(wnids)
        samples = [(n, c) for n, c, _ in col.samples]
        return _dataset(col, name, samples, LabelSpace.singletons(sub.wnids, sub.names),
                        {"dataset": name, "label_space": f"{len(wnids)} ImageNet classes (1000-way logits masked)",
                         "mask": "the published class list (classnames.txt order)", "n_classes": len(wnids),
                         "mask_matches_published": True, "allow_partial": parse_flag(allow_partial, "allow_partial"),
                         "n_published_classes": len(wnids), "n_missing_classes": 0, "n_unpublished_classes": 0,
                         "class_names": "open_clip IMAGENET_CLASSNAMES"}, on_bad_image)
    return build


def _objectnet_mappings(root: Path, mappings) -> Path:
    if mappings is not None:
        return Path(mappings).expanduser()
    if (Path(root) / "mappings").is_dir():
        return Path(root) / "mappings"
    raise DataError(f"objectnet: {root} is a CLIP_benchmark webdataset collection, which does not carry ObjectNet's "
                    "mappings/ (the ObjectNet-to-ImageNet class mapping)",
                    hint="pass --option mappings=PATH (the mappings/ folder of objectnet-1.0.zip), or copy that "
                         "folder to ROOT/mappings")


def objectnet(root: Path, mappings=None, border: int = 2, pre_cropped=False, on_bad_image: str = "fail") -> EvalDataset:
    from roz.datasets.imagenet_r_a import parse_flag
    from roz.datasets.objectnet import PROTOCOL, BorderCrop, load_objectnet_mapping

    pre_cropped = parse_flag(pre_cropped, "pre_cropped")
    col = read_collection(root)
    mp = load_objectnet_mapping(_objectnet_mappings(root, mappings))
    # CLIP_benchmark's label k is the k-th sorted folder name among the mapped classes
    folders = sorted({f for f, lab in mp.folder_to_label.items() if lab in mp.groups})
    check_labels(col, len(folders), "objectnet")
    wanted = [mp.folder_to_label[f] for f in folders]
    if col.classnames is not None and [c.lower() for c in col.classnames] != [w.lower() for w in wanted]:
        diff = [(a, b) for a, b in zip(col.classnames, wanted) if a.lower() != b.lower()]
        raise DataError(f"objectnet: {col.root}/classnames.txt does not match the mappings' classes in sorted-folder "
                        f"order (e.g. {diff[:3]})", hint="are the mappings/ from the same ObjectNet release?")
    label_names = list(mp.groups)
    pos = {label: i for i, label in enumerate(label_names)}
    samples = [(n, pos[wanted[c]]) for n, c, _ in col.samples]
    n_in = len({i for idx in mp.indices.values() for i in idx})
    protocol = {"dataset": "objectnet", "protocol": PROTOCOL, "n_classes": len(label_names), "n_imagenet_classes": n_in,
                "n_objectnet_classes_total": len(set(mp.folder_to_label.values())),
                "n_images_excluded_unmapped": None,  # CLIP_benchmark left them out of the collection
                "border_crop_px": 0 if pre_cropped else int(border),
                "pre_cropped": bool(pre_cropped),
                "scoring": "logits restricted to the mapped ImageNet classes; correct if the argmax is any "
                           "ImageNet class mapped to the image's ObjectNet class (max-merge per class)",
                "label_names": "ObjectNet class names (head=subset builds the head from them)"}
    return _dataset(col, "objectnet", samples, LabelSpace(list(mp.groups.values()), label_names), protocol,
                    on_bad_image, pre_transform=None if pre_cropped else BorderCrop(border),
                    meta={"objectnet_class": [label_names[t] for _, t in samples]})


def val_restricted(name: str):
    """val-on-imagenet-r/-a/objectnet-classes read from ``wds_imagenet1k``: ImageNet val's own builder
    (same class subset, mask or collapse) over the collection's samples."""

    def build(root: Path, on_bad_image: str = "fail", **options) -> EvalDataset:
        from dataclasses import fields

        from roz.datasets import imagenet

        factory = {"val-on-imagenet-r-classes": imagenet._val_r, "val-on-imagenet-a-classes": imagenet._val_a,
                   "val-on-objectnet-classes": imagenet._val_objectnet}[name]
        col = read_collection(root)
        cs = imagenet_1k()
        check_labels(col, len(cs), name)
        items = [(n, cs.wnids[c]) for n, c, _ in col.samples]
        ds = factory(root, on_bad_image=on_bad_image, _scanned=(items, "clip_benchmark-wds"), **options)
        ds.protocol = {**ds.protocol, **col.describe()}
        return ShardEvalDataset(**{f.name: getattr(ds, f.name) for f in fields(EvalDataset)},
                                members={n: m for n, _, m in col.samples})
    return build


#: ROZ dataset name -> builder over a CLIP_benchmark collection root.
WDS_BUILDERS = {
    "imagenet-val": imagenet_val,
    **{f"imagenetv2-{v}": imagenetv2(v) for v in ("matched-frequency", "threshold0.7", "top-images")},
    "imagenet-sketch": sketch,
    "imagenet-r": restricted("imagenet-r", "r"),
    "imagenet-a": restricted("imagenet-a", "a"),
    "objectnet": objectnet,
    "imagenet-o": imagenet_o_wds,
    **{n: val_restricted(n)
       for n in ("val-on-imagenet-r-classes", "val-on-imagenet-a-classes", "val-on-objectnet-classes")},
}
