"""Overlap results of a run directory: detect (``roz overlap detect``) and re-score (``roz overlap
rescore``), written through the result store.

Written per test set ``S``: ``overlap/S.duplicates.parquet`` (one row per test sample) and
``overlap/S.manifest.json`` (the clean manifest); and ``overlap.json``::

    {"format": "roz-overlap/2",
     "protocol": {detector, encoder, threshold (+ source, calibration), index, corpus, n_boot, seed, ...},
     S: {"n_test", "n_duplicates", "detection" (precision/recall vs ground truth or null),
         "accuracy" (rows of analysis.rescore: full / clean / overlap per model), "protocol",
         "files": {"duplicates", "manifest"}},
     "er": {"rows": [(shift, model) ER full vs clean with paired-bootstrap CIs], "skipped", "protocol"},
     "gallery": [{"split", "similarity", "test_file", "corpus_key", "caption", "test_thumb", "corpus_thumb"}],
     "comparisons": {detector: {S: detection}}}

``rescore`` recomputes ``accuracy`` and ``er`` from the stored duplicates tables and the stored
per-sample rows: no model and no detector is re-run.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np

from roz.errors import RozError
from roz.overlap.analysis import overlap_indices, rescore
from roz.overlap.clean_er import clean_er_table
from roz.overlap.pipeline import FORMAT, RESERVED, detect

THUMB = 96


def thumbnail(image) -> str:
    """A small JPEG data URI (the report embeds it as is)."""
    im = image.convert("RGB")
    im.thumbnail((THUMB, THUMB))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _corpus_image(row):
    from roz.overlap.corpus import decode

    p = str(row.get("corpus_file") or "")
    try:
        return decode(p) if p and Path(p).is_file() else None
    except Exception:  # noqa: BLE001  an unreadable corpus file: the gallery shows its key only
        return None


def gallery(dups: dict, top: int = 8) -> list[dict]:
    """The ``top`` most similar test/corpus pairs over all test sets, with embedded thumbnails."""
    from roz.overlap.corpus import decode

    rows = [dict(r, split=s) for s, df in dups.items() for r in df[df["is_duplicate"].astype(bool)].to_dict("records")]
    rows.sort(key=lambda r: -float(r["similarity"]))
    out = []
    for r in rows[:top]:
        cimg = _corpus_image(r)
        out.append({"split": r["split"], "similarity": float(r["similarity"]), "test_file": str(r["test_file"]),
                    "corpus_key": str(r.get("corpus_key") or r.get("corpus_file") or ""),
                    "caption": str(r.get("corpus_caption") or ""),
                    "test_thumb": thumbnail(decode(r["test_file"])),
                    "corpus_thumb": thumbnail(cimg) if cimg is not None else None})
    return out


def _split_entry(store, split, dups, detection, n_boot, seed) -> dict:
    per_model = {r.model.name: store.samples(r.unit_id) for r in store.records()
                 if r.dataset.name == split and not r.shift and not r.attack}
    per_model = {m: f for m, f in per_model.items() if f is not None and "correct" in f}
    acc = rescore(per_model, overlap_indices(dups), n_boot=n_boot, seed=seed) if per_model else None
    return {"n_test": int(len(dups)), "n_duplicates": int(dups["is_duplicate"].sum()), "detection": detection,
            "accuracy": acc.to_dict(orient="records") if acc is not None else [],
            "protocol": {**dups.attrs.get("protocol", {}), "dataset": split, "n_test": int(len(dups)),
                         "n_overlap": int(dups["is_duplicate"].sum()), "n_boot": n_boot, "seed": seed},
            "files": {"duplicates": f"overlap/{split}.duplicates.parquet", "manifest": f"overlap/{split}.manifest.json"}}


def detect_run(run_dir, test_sets: dict, corpus, *, n_boot: int = 1000, er_boot: int = 200, seed: int = 0,
               gallery_size: int = 8, comparisons: dict | None = None, log=print, **detect_kwargs) -> dict:
    """Detect, write duplicates tables + manifests + ``overlap.json`` into ``run_dir``; re-score
    every model found there. ``detect_kwargs`` go to :func:`roz.overlap.pipeline.detect`."""
    from roz.engine.store import ResultStore

    store = ResultStore(run_dir)
    res = detect(test_sets, corpus, seed=seed, log=log, **detect_kwargs)
    summary = {"format": FORMAT, "protocol": {**res["protocol"], "n_boot": n_boot, "er_boot": er_boot, "seed": seed,
                                              "test_sets": {s: str(ds.root) for s, ds in test_sets.items()}}}
    for split, dups in res["duplicates"].items():
        store.write_overlap_duplicates(split, dups)
        store.write_overlap_manifest(split, res["manifests"][split])
        summary[split] = _split_entry(store, split, dups, res["detection"][split], n_boot, seed)
    summary["er"] = clean_er_table(store, res["duplicates"], n_boot=er_boot, seed=seed)
    summary["gallery"] = gallery(res["duplicates"], gallery_size)
    if comparisons:
        summary["comparisons"] = comparisons
    store.write_overlap(summary)
    return summary


def rescore_run(run_dir, *, n_boot: int | None = None, er_boot: int | None = None, seed: int | None = None) -> dict:
    """Recompute the per-model accuracies and the full-vs-clean ER from what the run stored."""
    from roz.engine.store import ResultStore

    store = ResultStore(run_dir, create=False)
    summary = store.read_overlap()
    if not isinstance(summary, dict) or summary.get("format") != FORMAT:
        raise RozError(f"{store.root} has no overlap results of format {FORMAT}", hint="run `roz overlap detect` first")
    prot = summary.get("protocol", {})
    n_boot = prot.get("n_boot", 1000) if n_boot is None else n_boot
    er_boot = prot.get("er_boot", 200) if er_boot is None else er_boot
    seed = prot.get("seed", 0) if seed is None else seed
    dups = {}
    for split in [k for k in summary if k not in RESERVED]:
        df = store.read_overlap_duplicates(split)
        if df is None:
            raise RozError(f"overlap results list test set {split!r} but {store.overlap_file(split, 'duplicates')} "
                           "is missing", hint="re-run `roz overlap detect`")
        df.attrs["protocol"] = summary[split].get("protocol", {})
        dups[split] = df
        summary[split] = _split_entry(store, split, df, summary[split].get("detection"), n_boot, seed)
    summary["er"] = clean_er_table(store, dups, n_boot=er_boot, seed=seed)
    summary["protocol"] = {**prot, "n_boot": n_boot, "er_boot": er_boot, "seed": seed}
    store.write_overlap(summary)
    return summary


def detection_line(split: str, entry: dict) -> str:
    det = entry.get("detection") or {}
    pr = (f"; precision {det['precision']:.3f} recall {det['recall']:.3f} vs ground truth"
          if det and np.isfinite(det.get("precision", np.nan)) else "")
    return f"{split}: {entry['n_duplicates']} of {entry['n_test']} test images are near-duplicates{pr}"
