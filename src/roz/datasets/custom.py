"""User datasets in the formats the field already uses: ``folder``, ``wds`` and ``hf``.

* ``folder``: an ImageFolder with ordinary class names (``ROOT/golden_retriever/*.jpg``), optionally
  a class-names JSON (``class_names=FILE``: folder -> name / wnid) -- the strict WordNet-ID variant
  stays ``imagefolder``;
* ``wds``: webdataset tar shards of any image-classification set (``ROOT/*.tar`` or
  ``ROOT/<split>/*.tar``), image + integer label per sample, class names from ``classnames.txt``;
* ``hf``: a Hugging Face ``datasets`` dataset on disk (``save_to_disk`` output, or a local copy of a
  Hub dataset repository with Parquet files), image and label columns, class names from the label
  column's ``ClassLabel`` feature.

Label spaces follow ``roz.datasets.custom_labels``. Tell two of them apart in one run with
``--label NAME`` (dataset key ``label:``).
"""

from __future__ import annotations

from pathlib import Path

from roz.datasets.base import EvalDataset, scan_class_folders
from roz.datasets.custom_labels import label_space, read_class_names_file, space_from_entries
from roz.datasets.info import DatasetInfo
from roz.errors import DataError

INFOS: list[DatasetInfo] = []  # this family's datasets; roz.datasets.registry registers them


def folder_dataset(root: Path, class_names=None, on_bad_image: str = "fail") -> EvalDataset:
    root = Path(root)
    folders = scan_class_folders(root, "folder", expect="name")
    keys = sorted(folders)
    if class_names:
        labels, proto = space_from_entries(keys, read_class_names_file(class_names, "folder"), "folder")
        proto["class_names_file"] = str(Path(class_names).expanduser())
    else:
        names = keys if all(len(k) == 9 and k[0] == "n" and k[1:].isdigit() for k in keys) else \
            [k.replace("_", " ") for k in keys]
        labels, proto = label_space(names, None, "folder")
        proto["class_names"] = proto["class_names"] if names is keys else "folder names ('_' read as ' ')"
    samples = [(f, i) for i, k in enumerate(keys) for f in folders[k]]
    return EvalDataset(name="folder", root=root, samples=samples, labels=labels,
                       protocol={"dataset": "folder", "layout": "class folders", **proto}, on_bad_image=on_bad_image)


def wds_dataset(root: Path, split: str = "test", image_key: str | None = None, label_key: str = "cls",
                classnames=None, classes: str | None = None, on_bad_image: str = "fail") -> EvalDataset:
    from roz.datasets.shards import ShardEvalDataset
    from roz.datasets.wds_collection import is_wds_root, read_collection, read_lines

    root = Path(root)
    col = read_collection(root, split if is_wds_root(root, split) else ".", image_key=image_key, label_key=label_key)
    names = read_lines(Path(classnames).expanduser()) if classnames else col.classnames
    if classnames and names is None:
        raise DataError(f"wds: class-names file {classnames} does not exist")
    n = max(c for _, c, _ in col.samples) + 1
    labels, proto = label_space(names, classes, "wds", n_labels=n)
    bad = sorted({c for _, c, _ in col.samples if not 0 <= c < len(labels)})
    if bad:
        raise DataError(f"wds: labels {bad[:5]} are outside the {len(labels)} classes")
    return ShardEvalDataset(name="wds", root=root, samples=[(s, c) for s, c, _ in col.samples], labels=labels,
                            protocol={"dataset": "wds", **proto, **col.describe(), "layout": "webdataset",
                                      "image_key": image_key or "first of webp/png/jpg/jpeg", "label_key": label_key},
                            on_bad_image=on_bad_image, members={s: m for s, _, m in col.samples})


def hf_dataset(root: Path, split: str | None = None, image_column: str = "image", label_column: str = "label",
               classes: str | None = None, on_bad_image: str = "fail") -> EvalDataset:
    from roz.datasets.hf_source import HFEvalDataset, open_hf

    table, split, names, how = open_hf(Path(root), split, image_column, label_column)
    targets = [int(t) for t in table[label_column]]
    labels, proto = label_space(names, classes, "hf", n_labels=max(targets) + 1 if targets else 0)
    bad = sorted({t for t in targets if not 0 <= t < len(labels)})
    if bad:
        raise DataError(f"hf: labels {bad[:5]} in column {label_column!r} are outside the {len(labels)} classes",
                        hint="a split with unlabelled rows (-1)? evaluate a labelled split")
    samples = [(f"{split}/{i}", t) for i, t in enumerate(targets)]
    return HFEvalDataset(name="hf", root=Path(root), samples=samples, labels=labels,
                         protocol={"dataset": "hf", "layout": how, "split": split, "image_column": image_column,
                                   "label_column": label_column, **proto},
                         on_bad_image=on_bad_image, table=table, image_column=image_column)


INFOS.append(DatasetInfo(
    name="folder", factory=lambda root, **o: folder_dataset(root, **o),
    description="ImageFolder with ordinary class names (option class_names=FILE.json: folder -> name / wnid)",
    layout="  ROOT/<class name>/<image>   e.g. ROOT/golden_retriever/1.jpg (names, or WordNet IDs)",
    paper_order=901))
INFOS.append(DatasetInfo(
    name="wds", factory=lambda root, **o: wds_dataset(root, **o),
    description="webdataset tar shards of any classification set (options split, image_key, label_key, "
                "classnames=FILE, classes=CLASS_SET)",
    layout="  ROOT/<split>/*.tar or ROOT/*.tar (samples <key>.jpg|png|webp + <key>.cls), ROOT/classnames.txt",
    paper_order=902))
INFOS.append(DatasetInfo(
    name="hf", factory=lambda root, **o: hf_dataset(root, **o),
    description="Hugging Face datasets dir (save_to_disk, or a Hub repo copy with Parquet files); options split, "
                "image_column, label_column, classes=CLASS_SET",
    layout="  ROOT/dataset_dict.json + ROOT/<split>/ (save_to_disk), or ROOT/**/<split>-*.parquet (Hub repo copy)",
    paper_order=903))
