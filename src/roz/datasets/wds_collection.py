"""CLIP_benchmark's webdataset collections (``wds_imagenet1k``, ``wds_imagenet-r`` ...) on disk.

The format (``clip_benchmark.datasets.builder.build_wds_dataset`` reads it,
``clip_benchmark.webdataset_builder.convert_dataset`` writes it)::

    ROOT/test/nshards.txt                        number of shards N
    ROOT/test/0.tar ... ROOT/test/{N-1}.tar      samples s0000000.webp (or .png/.jpg) + s0000000.cls
    ROOT/classnames.txt                          one class name per line, line k = label k
    ROOT/zeroshot_classification_templates.txt   one template per line, {c} = class name
    ROOT/dataset_type.txt                        optional: classification (default) / multilabel / retrieval

Samples are written in the order of the source dataset (torchvision ``ImageFolder``: sorted class
folders, sorted files) with keys ``s%07d``; ``.cls`` holds the label as decimal text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from roz.datasets.shards import ShardSample, image_member, index_shard_cached, read_int, sample_name
from roz.errors import DataError

SPLIT = "test"
LAYOUT = ("  CLIP_benchmark webdataset: ROOT/test/nshards.txt, ROOT/test/0.tar ... (samples <key>.webp|png|jpg + "
          "<key>.cls),\n  ROOT/classnames.txt, ROOT/zeroshot_classification_templates.txt "
          "(e.g. a local copy of huggingface.co/datasets/clip-benchmark/wds_imagenet1k)")


def is_wds_root(root: Path, split: str = SPLIT) -> bool:
    """True if ``root`` looks like a CLIP_benchmark webdataset collection."""
    d = Path(root) / split
    return (d / "nshards.txt").is_file() or (d.is_dir() and any(d.glob("*.tar")))


@dataclass
class WdsCollection:
    root: Path
    split: str
    shards: list[str]  # relative to root
    samples: list[tuple[str, int, object]]  # (stored name, cls, image Member)
    classnames: list[str] | None
    templates_file: Path | None
    dataset_type: str

    def describe(self) -> dict:
        return {"layout": "clip_benchmark-wds", "split": self.split, "n_shards": len(self.shards),
                "classnames_file": "classnames.txt" if self.classnames is not None else None,
                "templates_file": self.templates_file.name if self.templates_file else None}


def read_lines(p: Path) -> list[str] | None:
    if not p.is_file():
        return None
    return [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


def _shard_paths(root: Path, split: str) -> list[str]:
    d = root / split
    prefix = "" if split == "." else f"{split}/"
    nfile = d / "nshards.txt"
    if nfile.is_file():
        try:
            n = int(nfile.read_text().strip())
        except ValueError:
            raise DataError(f"{nfile} does not hold a shard count", hint="it holds one integer N (shards 0..N-1)") from None
        paths = [f"{prefix}{i}.tar" for i in range(n)]
        missing = [p for p in paths if not (root / p).is_file()]
        if missing:
            raise DataError(f"webdataset {root}: {len(missing)} of {n} shards listed by {nfile} are missing "
                            f"(e.g. {missing[:3]})", hint="a partial download? fetch every shard of the split")
        return paths
    tars = sorted(d.glob("*.tar"), key=lambda p: (not p.stem.isdigit(), int(p.stem) if p.stem.isdigit() else 0, p.name))
    if not tars:
        raise DataError(f"webdataset {root}: no {split}/nshards.txt and no {split}/*.tar shards")
    return [f"{prefix}{p.name}" for p in tars]


def read_collection(root: Path, split: str = SPLIT, image_key: str | None = None,
                    label_key: str = "cls") -> WdsCollection:
    """Index every shard of ``root/split`` (a CLIP_benchmark collection) without decoding images."""
    root = Path(root)
    dtype = (read_lines(root / "dataset_type.txt") or ["classification"])[0].lower()
    if dtype != "classification":
        raise DataError(f"webdataset {root}: dataset_type.txt says {dtype!r}; ROZ evaluates classification sets",
                        hint="multilabel and retrieval collections are not image-classification test sets")
    shards = _shard_paths(root, split)
    samples = []
    for rel in shards:
        for s in index_shard_cached(root / rel, rel):
            samples.append(_entry(root, s, image_key, label_key))
    if not samples:
        raise DataError(f"webdataset {root}: the shards of split {split!r} hold no samples")
    classnames = read_lines(root / "classnames.txt")
    tfile = root / "zeroshot_classification_templates.txt"
    return WdsCollection(root, split, shards, samples, classnames, tfile if tfile.is_file() else None, dtype)


def _entry(root: Path, s: ShardSample, image_key, label_key) -> tuple[str, int, object]:
    ext, member = image_member(s, image_key)
    return sample_name(s, ext), read_int(root, s, label_key), member


def check_labels(col: WdsCollection, n_classes: int, what: str) -> None:
    """Labels must index ``n_classes`` classes and classnames.txt (if present) must list that many."""
    if col.classnames is not None and len(col.classnames) != n_classes:
        raise DataError(f"{what}: {col.root}/classnames.txt lists {len(col.classnames)} classes, the dataset has "
                        f"{n_classes}", hint="is this the collection of another dataset? (e.g. wds_imagenet1k for "
                                             "imagenet-val, wds_imagenet-r for imagenet-r)")
    bad = sorted({c for _, c, _ in col.samples if not 0 <= c < n_classes})
    if bad:
        raise DataError(f"{what}: labels {bad[:5]} in {col.root} are outside 0..{n_classes - 1}")
