"""Clean test sets: a manifest of the samples kept after removing detected duplicates, and a
dataset view that applies it.

Manifest (JSON, ``MANIFEST_FORMAT``): ``dataset``, ``n_full``, ``kept_indices`` /
``kept_paths`` (sample indices and the dataset's relative sample paths, in dataset order),
``removed`` (index, path, nearest corpus file, similarity), ``detection`` (the detector's
protocol: method, threshold, ...). Indices refer to ``EvalDataset.samples``; paths let
``filter_dataset`` refuse a manifest made for a different copy or version of the dataset.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from roz.datasets.base import EvalDataset
from roz.errors import DataError

MANIFEST_FORMAT = "roz-overlap-manifest/1"


def _rel(ds: EvalDataset | None, i: int, paths) -> str:
    return str(ds.samples[i][0]) if ds is not None else str(paths[i])


def build_manifest(duplicates: pd.DataFrame, dataset: EvalDataset | None = None, *, name: str | None = None) -> dict:
    """Clean manifest from a duplicates table (``detect.find_overlap``) over the dataset's samples in order."""
    n = len(dataset) if dataset is not None else len(duplicates)
    if len(duplicates) != n or not np.array_equal(duplicates["test_index"].to_numpy(), np.arange(n)):
        raise DataError(f"build_manifest: the duplicates table has {len(duplicates)} rows, not one per sample "
                        f"(0..{n - 1}) of the dataset", hint="run find_overlap on [ds.path(i) for i in range(len(ds))]")
    paths = duplicates["test_file"].tolist()
    dup = duplicates["is_duplicate"].to_numpy(bool)
    kept = np.flatnonzero(~dup)
    removed = [{"index": int(i), "path": _rel(dataset, i, paths), "corpus_file": str(duplicates["corpus_file"].iat[i]),
                "similarity": float(duplicates["similarity"].iat[i])} for i in np.flatnonzero(dup)]
    return {"format": MANIFEST_FORMAT, "dataset": name or (dataset.name if dataset is not None else ""),
            "n_full": n, "n_kept": int(len(kept)), "n_removed": len(removed),
            "kept_indices": [int(i) for i in kept], "kept_paths": [_rel(dataset, i, paths) for i in kept],
            "removed": removed, "detection": dict(duplicates.attrs.get("protocol", {}))}


def write_manifest(path: str | os.PathLike, manifest: dict) -> Path:
    from roz.engine.store import atomic_write_json

    atomic_write_json(Path(path), manifest)
    return Path(path)


def read_manifest(path: str | os.PathLike) -> dict:
    p = Path(path)
    try:
        m = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"cannot read clean-set manifest {p}: {e}") from None
    if m.get("format") != MANIFEST_FORMAT:
        raise DataError(f"{p} is not a ROZ overlap manifest (format {m.get('format')!r}, expected {MANIFEST_FORMAT})")
    return m


class SubsetDataset(EvalDataset):
    """A view of ``base`` restricted to ``indices`` (in that order). Sample ``i`` of the view is
    sample ``indices[i]`` of the base; ``sample_meta`` adds ``orig_index`` so results can be
    joined back to the full set. ``transform`` / ``pre_transform`` / ``on_bad_image`` set on the
    view are used when loading."""

    def __init__(self, base: EvalDataset, indices, name: str, extra_protocol: dict | None = None):
        self.base = base
        self.indices = [int(i) for i in indices]
        super().__init__(name=name, root=base.root, samples=[base.samples[i] for i in self.indices],
                         labels=base.labels, protocol={**dict(base.protocol), **(extra_protocol or {})},
                         on_bad_image=base.on_bad_image, transform=base.transform, pre_transform=base.pre_transform,
                         decode=base.decode, max_image_pixels=base.max_image_pixels)

    def path(self, i: int) -> Path:
        return self.base.path(self.indices[i])

    def valid_labels(self, i: int):
        return self.base.valid_labels(self.indices[i])

    def sample_meta(self) -> dict[str, list]:
        meta = {k: [v[j] for j in self.indices] for k, v in self.base.sample_meta().items()}
        meta["orig_index"] = list(self.indices)
        return meta

    def aggregate(self, rows):
        return self.base.aggregate(rows)

    def metric_names(self):
        return self.base.metric_names()

    def __getitem__(self, i: int):
        b = self.base
        b.transform, b.pre_transform, b.on_bad_image = self.transform, self.pre_transform, self.on_bad_image
        x, target, _, ok = b[self.indices[i]]
        return x, target, i, ok


def filter_dataset(dataset: EvalDataset, manifest: dict | str | os.PathLike, which: str = "clean") -> SubsetDataset:
    """``which='clean'``: the kept samples; ``'overlap'``: only the removed (duplicate) ones."""
    if not isinstance(manifest, dict):
        manifest = read_manifest(manifest)
    if which not in ("clean", "overlap"):
        raise DataError(f"filter_dataset: which must be 'clean' or 'overlap', got {which!r}")
    if manifest.get("n_full") != len(dataset):
        raise DataError(f"manifest for {manifest.get('dataset')!r} covers {manifest.get('n_full')} samples, "
                        f"dataset {dataset.name!r} has {len(dataset)}", hint="re-run the overlap detection on this dataset")
    kept = manifest["kept_indices"]
    for i, p in zip(kept, manifest["kept_paths"]):
        if str(dataset.samples[i][0]) != p and str(dataset.path(i)) != p:
            raise DataError(f"manifest sample {i} is {p!r} but dataset {dataset.name!r} has {dataset.samples[i][0]!r}",
                            hint="the dataset changed since the manifest was made; re-run the overlap detection")
    idx = kept if which == "clean" else [r["index"] for r in manifest["removed"]]
    det = manifest.get("detection", {})
    return SubsetDataset(dataset, idx, name=f"{dataset.name}-{which}",
                         extra_protocol={"overlap_subset": which, "overlap_method": det.get("method"),
                                         "overlap_threshold": det.get("threshold"), "n_full": len(dataset)})
