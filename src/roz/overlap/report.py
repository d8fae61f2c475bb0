"""``overlap_report``: the whole overlap analysis for one test set, as the demo/CLI calls it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd

from roz.datasets.base import EvalDataset
from roz.errors import DataError
from roz.overlap.analysis import overlap_indices, owed_to_overlap, rescore
from roz.overlap.calibrate import evaluate_detection, load_ground_truth
from roz.overlap.clean import build_manifest, write_manifest
from roz.overlap.detect import OverlapDetector, list_images


def overlap_report(test_dataset: EvalDataset, corpus_dir: Path, per_sample_by_model: dict[str, pd.DataFrame],
                   method: str = "phash", threshold: float | None = None, seed: int = 0, *,
                   ground_truth: str | os.PathLike | pd.DataFrame | None = None, manifest_path: str | os.PathLike | None = None,
                   pairs: list[tuple[str, str]] | None = None, n_boot: int = 1000, detector: OverlapDetector | None = None,
                   ground_truth_split: str | None = None, **detector_kwargs) -> dict:
    """Detect near-duplicates of ``test_dataset`` in the images under ``corpus_dir``, build the clean
    manifest, and re-score every model's per-sample results on full / clean / overlap.

    Returns ``{"duplicates": DataFrame (one row per test sample), "manifest": dict,
    "accuracy": DataFrame (one row per model, ``analysis.rescore``), "owed": DataFrame or None
    (``analysis.owed_to_overlap`` for ``pairs``), "detection": precision/recall dict or None (when
    ``ground_truth`` is given; only its records of ``ground_truth_split``, by default the split
    named like the dataset or its root folder — ROZ-Mini's test paths are relative to the split,
    so records of another split could otherwise match same-named files), "protocol": dict}``. ``detector``: a fitted ``OverlapDetector`` to
    reuse (e.g. one corpus, several test splits); otherwise one is built from ``method`` and
    ``detector_kwargs`` (``verify``, ``encoder``, ``k``, ``crops``, ``workers``, ...).
    """
    t0 = time.perf_counter()
    if detector is None:
        detector = OverlapDetector(method, **detector_kwargs).fit(list_images(corpus_dir))
    elif detector.method != method:
        raise DataError(f"overlap_report: detector uses {detector.method!r}, method={method!r} was asked")
    test_paths = [test_dataset.path(i) for i in range(len(test_dataset))]
    dups = detector.query(test_paths, threshold)
    manifest = build_manifest(dups, test_dataset)
    if manifest_path is not None:
        write_manifest(manifest_path, manifest)
    ov = overlap_indices(dups)
    acc = rescore(per_sample_by_model, ov, n_boot=n_boot, seed=seed) if per_sample_by_model else pd.DataFrame()
    owed = owed_to_overlap(per_sample_by_model, ov, pairs, n_boot=n_boot, seed=seed) if pairs else None
    detection = None
    if ground_truth is not None:
        truth = ground_truth if isinstance(ground_truth, pd.DataFrame) else load_ground_truth(ground_truth)
        split = ground_truth_split or _infer_split(truth, test_dataset)
        detection = {**evaluate_detection(dups, truth, split), "split": split}
    protocol = {**dups.attrs.get("protocol", {}), "dataset": test_dataset.name, "corpus_dir": str(corpus_dir),
                "seed": seed, "n_boot": n_boot, "n_test": len(test_paths), "n_overlap": len(ov),
                "total_s": time.perf_counter() - t0}
    if getattr(detector, "calibration", None) is not None:
        protocol["calibration"] = {k: v for k, v in detector.calibration.items() if k != "curve"}
    return {"duplicates": dups, "manifest": manifest, "accuracy": acc, "owed": owed, "detection": detection,
            "protocol": protocol}


def _infer_split(truth: pd.DataFrame, ds: EvalDataset) -> str | None:
    splits = {str(x) for x in truth["split"].unique() if str(x)}
    if len(splits) <= 1:
        return None
    for cand in (ds.name, Path(ds.root).name, ds.name.removeprefix("roz-")):
        if cand in splits:
            return cand
    raise DataError(f"overlap ground truth covers splits {sorted(splits)}; none is named like dataset {ds.name!r}",
                    hint="pass ground_truth_split=")


def world_detection(world_root: str | os.PathLike, splits=("mini-r", "mini-sketch"), method: str = "phash",
                    threshold: float | None = None, detector: OverlapDetector | None = None, **detector_kwargs) -> dict:
    """Run the detector on a built ROZ-Mini world (``<root>/<split>/<wnid>/*.png`` against
    ``<root>/corpus/images``) and score it against ``<root>/corpus/planted_duplicates.json``.
    Returns ``{split: {"duplicates", "detection"}, "protocol": ...}``; the corpus is indexed once."""
    root = Path(world_root)
    det = detector or OverlapDetector(method, **detector_kwargs).fit(list_images(root / "corpus" / "images"))
    gt_path = root / "corpus" / "planted_duplicates.json"
    truth = load_ground_truth(gt_path) if gt_path.is_file() else None
    out = {}
    for split in splits:
        dups = det.query(list_images(root / split), threshold)
        out[split] = {"duplicates": dups, "detection": evaluate_detection(dups, truth, split) if truth is not None else None}
    out["protocol"] = det.describe()
    return out
