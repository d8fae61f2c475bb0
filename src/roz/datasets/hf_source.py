"""Hugging Face ``datasets`` on disk as an evaluation source (read with the ``datasets`` library).

Two local forms, both offline:

* a ``save_to_disk`` directory (``dataset_dict.json`` + one folder per split, or a single
  ``Dataset`` with ``state.json``): opened with ``datasets.load_from_disk`` (memory-mapped Arrow);
* a local copy of a Hub dataset repository (``data/<split>-*.parquet`` or ``<split>/*.parquet``):
  read with the ``parquet`` builder, its Arrow cache under ``ROZ_HOME/cache/hf-datasets``.

The image column is read undecoded (``datasets.Image(decode=False)``: the stored bytes or file
path) and decoded by ROZ's decoder, so bad images follow ``--on-bad-image`` like any file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from roz.datasets.base import EvalDataset
from roz.datasets.images import load_image, load_image_bytes
from roz.errors import DataError


def _pick_split(splits: list[str], split: str | None, root: Path) -> str:
    if split is not None:
        if split not in splits:
            raise DataError(f"hf: {root} has no split {split!r}", hint=f"splits: {', '.join(splits)} (option split=NAME)")
        return split
    for s in ("test", "validation", "val"):
        if s in splits:
            return s
    if len(splits) == 1:
        return splits[0]
    raise DataError(f"hf: {root} has splits {splits}; which one to evaluate?", hint="pass option split=NAME")


def _parquet_splits(root: Path) -> dict[str, list[str]]:
    files = sorted(p for p in root.rglob("*.parquet") if not any(part.startswith(".") for part in p.parts))
    out: dict[str, list[str]] = {}
    for p in files:
        rel = p.relative_to(root).parts
        split = rel[-2] if len(rel) > 1 and rel[-2] != "data" else p.name.split("-")[0].split(".")[0]
        out.setdefault(split, []).append(str(p))
    return out


def open_hf(root: Path, split: str | None, image_column: str, label_column: str):
    """``(datasets.Dataset, split, class names or None, layout)``."""
    import datasets

    root = Path(root)
    if (root / "dataset_dict.json").is_file() or (root / "state.json").is_file():
        loaded = datasets.load_from_disk(str(root))
        if isinstance(loaded, datasets.DatasetDict):
            split = _pick_split(list(loaded), split, root)
            ds = loaded[split]
        else:
            ds, split = loaded, split or "train"
        how = "hf-save_to_disk"
    else:
        parts = _parquet_splits(root)
        if not parts:
            raise DataError(f"hf: {root} is neither a save_to_disk directory nor a folder of Parquet files")
        split = _pick_split(list(parts), split, root)
        from roz.paths import cache_dir

        ds = datasets.load_dataset("parquet", data_files={split: parts[split]}, split=split,
                                   cache_dir=str(cache_dir("hf-datasets")))
        how = "hf-parquet"
    for col in (image_column, label_column):
        if col not in ds.column_names:
            raise DataError(f"hf: split {split!r} has no column {col!r} (columns: {ds.column_names})",
                            hint="pass image_column=NAME / label_column=NAME")
    feature = ds.features[label_column]
    names = list(feature.names) if isinstance(feature, datasets.ClassLabel) else None
    ds = ds.cast_column(image_column, datasets.Image(decode=False)).select_columns([image_column, label_column])
    return ds, split, names, how


@dataclass
class HFEvalDataset(EvalDataset):
    """Samples are rows of a ``datasets.Dataset`` (pickles by file reference: cheap for workers)."""

    table: object = None
    image_column: str = "image"

    def path(self, i: int) -> Path:
        return self.root / self.samples[i][0]

    def load(self, i: int):
        row = int(self.samples[i][0].rsplit("/", 1)[1])  # not i: restrict_classes may drop samples
        cell = self.table[row][self.image_column]
        if cell.get("bytes"):
            return load_image_bytes(cell["bytes"], f"{self.root}[{self.samples[i][0]}]", self.decode,
                                    self.max_image_pixels)
        if cell.get("path"):
            return load_image(cell["path"], self.decode, self.max_image_pixels)
        raise DataError(f"hf: row {self.samples[i][0]} of {self.root} has no image")
