"""Dataset registry: one ``create_dataset(name, root, **options)`` entry point.

Each dataset family lives in its own module and lists its datasets in ``INFOS``; this module
registers the built-in families explicitly (on the first look-up) and ``register_dataset`` adds
others. ``roz datasets`` lists them with their expected layout and source.
"""

from __future__ import annotations

from pathlib import Path

from roz.datasets import (cifar, custom, imagefolder, imagenet, imagenet_c, imagenet_o, imagenet_p, imagenet_r_a,
                          imagenetv2, objectnet, sketch, stylized, typographic, video)
from roz.datasets.base import EvalDataset, LabelSpace
from roz.datasets.classes import get_class_set
from roz.datasets.info import DatasetInfo
from roz.errors import DataError
from roz.registry import Registry

__all__ = ["DATASETS", "DatasetInfo", "create_dataset", "dataset_info", "list_datasets", "register_dataset",
           "restrict_label_space"]

BUILTIN_FAMILIES = (imagefolder, imagenet, imagenetv2, sketch, imagenet_r_a, imagenet_o, objectnet, video, imagenet_c, imagenet_p,
                    stylized, typographic, cifar, custom)

DATASETS: Registry[DatasetInfo] = Registry("dataset", DataError, hint="`roz datasets` lists the registered names")


def register_dataset(info: DatasetInfo) -> None:
    DATASETS.register(info.name, info)


def _register_builtin_families() -> None:
    for family in BUILTIN_FAMILIES:
        for info in family.INFOS:
            register_dataset(info)


DATASETS.add_provider(_register_builtin_families)


def list_datasets() -> list[DatasetInfo]:
    return sorted(DATASETS.values(), key=lambda d: (d.paper_order, d.name))


def dataset_info(name: str) -> DatasetInfo:
    return DATASETS.get(name)


def create_dataset(name: str, root: str | Path, restrict_classes: str | None = None, decode: str = "roz",
                   max_image_pixels: int | None = None, **options) -> EvalDataset:
    """Build the loader ``name`` over ``root``; errors show the expected layout and source.

    ``restrict_classes``: a class set (name or JSON file); the label space is masked to it (see
    :func:`restrict_label_space`) — e.g. ``roz-mini`` to read ROZ-Mini's ImageNetV2-layout split
    with models that only know the world's classes. Recorded in the dataset protocol.
    ``decode``: the image decoder, ``roz`` or ``testbed`` (see ``roz.datasets.images``); recorded.
    ``max_image_pixels``: the decompression-bomb limit (default Pillow's); recorded.
    """
    from roz.datasets.images import check_decode, check_max_pixels

    check_decode(decode)
    check_max_pixels(max_image_pixels)
    ds = _create(name, root, **options)
    ds.set_decode(decode)
    ds.set_max_image_pixels(max_image_pixels)
    if restrict_classes:
        ds = restrict_label_space(ds, get_class_set(restrict_classes))
    return ds


def restrict_label_space(ds: EvalDataset, classes) -> EvalDataset:
    """Mask ``ds``'s label space to the WordNet IDs of ``classes`` (a class mask, as for ImageNet-R).

    Each label's group is intersected with the class set; labels left empty are removed, and so
    are their samples (counted in the protocol). Removing labels is only allowed for single-label
    datasets (multi-label ones keep their indices in their own metadata).
    """
    keep = set(classes.wnids)
    groups = [tuple(w for w in g if w in keep) for g in ds.labels.groups]
    kept = [i for i, g in enumerate(groups) if g]
    if not kept:
        raise DataError(f"{ds.name}: none of its labels is in class set {classes.name!r}")
    if len(kept) < len(groups) and type(ds).valid_labels is not EvalDataset.valid_labels:
        raise DataError(f"{ds.name}: cannot drop labels of a multi-label dataset via restrict_classes")
    new_index = {old: new for new, old in enumerate(kept)}
    before = len(ds.samples)
    ds.samples = [(p, new_index[t]) for p, t in ds.samples if t in new_index]
    ds.labels = LabelSpace([groups[i] for i in kept], [ds.labels.names[i] for i in kept])
    ds.protocol = {**ds.protocol, "restricted_to": classes.name, "n_labels_after_restriction": len(kept),
                   "samples_dropped_by_restriction": before - len(ds.samples)}
    return ds


def _create(name: str, root: str | Path, **options) -> EvalDataset:
    info = dataset_info(name)
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(
            f"{name}: dataset root {root} does not exist",
            hint=f"expected layout:\n{info.layout}" + (f"\n  download: {info.source}" if info.source else ""),
        )
    try:
        return _factory(name, root, info)(root, **options)
    except DataError as e:
        if "expected layout" in str(e):
            raise
        raise DataError(e.what, hint=(e.hint + "\n  " if e.hint else "") + f"expected layout:\n{info.layout}"
                        + (f"\n  download: {info.source}" if info.source else "")) from None
    except TypeError as e:
        raise DataError(f"{name}: bad dataset option ({e})") from None


def _factory(name: str, root: Path, info: DatasetInfo):
    """The loader for ``root``'s layout: a CLIP_benchmark webdataset collection (auto-detected) or
    the dataset's own layout."""
    from roz.datasets.wds_collection import is_wds_root
    from roz.datasets.wds_layouts import WDS_BUILDERS

    if name in WDS_BUILDERS and is_wds_root(root):
        return WDS_BUILDERS[name]
    return info.factory
