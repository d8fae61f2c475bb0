"""Threshold calibration and detection scoring against ground truth.

* ``pick_threshold(similarity, label, target_precision)``: the lowest threshold whose precision on
  the labelled queries is >= the target (i.e. the most recall at that precision). The threshold
  is put half-way between the last accepted score and the next lower one, so it does not sit
  exactly on a calibration sample.
* ``calibrate_with_ground_truth``: labelled pairs (e.g. ROZ-Mini's ``planted_duplicates.json``):
  a test image is positive iff it has a planted copy in the corpus.
* ``calibrate_synthetic``: no ground truth — sample corpus images; for positives replace the
  corpus image by an altered copy (``alter_image``) and query with the original; for negatives
  remove the corpus image and query with it. Corpus images that truly are near-duplicates of
  each other become false "false positives" here, so the threshold errs on the safe side.

Precision/recall here are per *test image* (what cleaning a test set needs): flagged images
that truly have a copy / images with a copy that are flagged. ``pair_accuracy`` adds how often
the reported ``corpus_file`` is one of the true copies.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from PIL import Image, ImageEnhance

from roz.errors import DataError


def alter_image(img: Image.Image, rng: np.random.Generator, *, max_crop: float = 4 / 64,
                brightness: float = 0.1, quality: tuple[int, int] = (70, 92), rescale: tuple[float, float] = (1.0, 1.0)) -> Image.Image:
    """A planted-duplicate style alteration (as ROZ-Mini's ``compose.near_duplicate``): crop
    1..``max_crop`` of each side's length in total (random split), resize back to the original size
    (times a ``rescale`` factor), brightness x U(1 +- ``brightness``), JPEG re-encode at ``quality``."""
    img = img.convert("RGB")
    W, H = img.size
    c = rng.uniform(min(1.0 / W, max_crop), max_crop)
    cw, ch = c * W, c * H
    left, t = rng.uniform(0, cw), rng.uniform(0, ch)
    s = rng.uniform(*rescale)
    out = img.resize((max(8, round(W * s)), max(8, round(H * s))), Image.Resampling.BICUBIC,
                     box=(left, t, W - (cw - left), H - (ch - t)))
    out = ImageEnhance.Brightness(out).enhance(rng.uniform(1 - brightness, 1 + brightness))
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=int(rng.integers(*quality)))
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def precision_recall(similarity: np.ndarray, label: np.ndarray, threshold: float) -> dict:
    s = np.nan_to_num(np.asarray(similarity, dtype=np.float64), nan=-np.inf)
    y = np.asarray(label, dtype=bool)
    pred = s >= threshold
    tp, fp, fn = int((pred & y).sum()), int((pred & ~y).sum()), int((~pred & y).sum())
    return {"threshold": float(threshold), "tp": tp, "fp": fp, "fn": fn,
            "precision": tp / (tp + fp) if tp + fp else float("nan"),
            "recall": tp / (tp + fn) if tp + fn else float("nan")}


def pick_threshold(similarity, label, target_precision: float = 0.99) -> dict:
    """Lowest threshold with precision >= target on ``(similarity, label)``; ``met_target`` False
    (and the highest-precision threshold) when no threshold reaches it."""
    s = np.nan_to_num(np.asarray(similarity, dtype=np.float64), nan=-np.inf)
    y = np.asarray(label, dtype=bool)
    if y.sum() == 0:
        raise DataError("pick_threshold: no positive (duplicate) examples to calibrate on")
    order = np.argsort(-s, kind="stable")
    ss, yy = s[order], y[order]
    tp, fp = np.cumsum(yy), np.cumsum(~yy)
    last = np.r_[ss[1:] != ss[:-1], True]  # cut only between distinct scores
    prec, rec = tp / (tp + fp), tp / y.sum()
    ok = last & (prec >= target_precision) & np.isfinite(ss)
    met = bool(ok.any())
    if met:
        j = int(np.flatnonzero(ok)[-1])
    else:
        cand = np.flatnonzero(last & np.isfinite(ss))
        j = int(cand[np.argmax(prec[cand] + 1e-9 * rec[cand])])
    nxt = ss[j + 1] if j + 1 < len(ss) and np.isfinite(ss[j + 1]) else ss[j] - 1e-3
    thr = float((ss[j] + nxt) / 2)
    curve = pd.DataFrame({"threshold": ss[last], "precision": prec[last], "recall": rec[last]})
    return {**precision_recall(s, y, thr), "target_precision": target_precision, "met_target": met,
            "n_pos": int(y.sum()), "n_neg": int((~y).sum()), "curve": curve}


# ----------------------------------------------------------------------------- ground truth

def _parts(p: str | os.PathLike) -> tuple[str, ...]:
    return tuple(x for x in Path(str(p).replace("\\", "/")).parts if x not in (".", "/"))


class _SuffixMatcher:
    """Match ground-truth paths (relative, to an unknown root) to actual paths by path suffix."""

    def __init__(self, paths: Sequence[str | os.PathLike]):
        self.by_name: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        for i, p in enumerate(paths):
            parts = _parts(p)
            if parts:
                self.by_name.setdefault(parts[-1], []).append((parts, i))

    def find(self, rel: str) -> int | None:
        r = _parts(rel)
        if not r:
            return None
        # the whole ground-truth path must be a suffix of the actual one; no partial matches (a
        # shorter suffix would let "mini-sketch/n1/0.png" match ".../mini-r/n1/0.png")
        hits = [i for parts, i in self.by_name.get(r[-1], []) if parts[-len(r):] == r]
        return hits[0] if len(hits) == 1 else None


def load_ground_truth(path: str | os.PathLike) -> pd.DataFrame:
    """``planted_duplicates.json`` (a list of ``{corpus_file, split, test_file}``) -> DataFrame."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"cannot read overlap ground truth {p}: {e}") from None
    if isinstance(data, dict):
        data = data.get("pairs", data.get("planted", []))
    if not isinstance(data, list) or not all(isinstance(r, dict) and "corpus_file" in r and "test_file" in r for r in data):
        raise DataError(f"{p}: expected a list of {{corpus_file, split, test_file}} records")
    df = pd.DataFrame(data)
    if "split" not in df:
        df["split"] = ""
    return df[["test_file", "corpus_file", "split"]]


def ground_truth_labels(duplicates: pd.DataFrame, truth: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int]:
    """For each row of a duplicates table: (has a true copy, reported corpus file is a true copy),
    and the number of ground-truth records whose test file is in the table."""
    tm = _SuffixMatcher(duplicates["test_file"].tolist())
    corpus_names = duplicates["corpus_file"].tolist()
    n = len(duplicates)
    has, copies = np.zeros(n, bool), [set() for _ in range(n)]
    matched = 0
    for rec in truth.itertuples(index=False):
        i = tm.find(rec.test_file)
        if i is None:
            continue
        matched += 1
        has[i] = True
        copies[i].add(_parts(rec.corpus_file))
    right = np.zeros(n, bool)
    for i in np.flatnonzero(has):
        cf = _parts(corpus_names[i])
        right[i] = any(cf[-len(c):] == c or c[-len(cf):] == cf or (cf and c and cf[-1] == c[-1]) for c in copies[i])
    return has, right, matched


def evaluate_detection(duplicates: pd.DataFrame, truth: pd.DataFrame | str | os.PathLike, split: str | None = None) -> dict:
    """Per-test-image precision/recall of ``duplicates.is_duplicate`` against ground truth
    (only its records of ``split`` when given)."""
    if not isinstance(truth, pd.DataFrame):
        truth = load_ground_truth(truth)
    if split is not None:
        truth = truth[truth["split"] == split]
    has, right, matched = ground_truth_labels(duplicates, truth)
    pred = duplicates["is_duplicate"].to_numpy(bool)
    tp, fp, fn = int((pred & has).sum()), int((pred & ~has).sum()), int((~pred & has).sum())
    return {"tp": tp, "fp": fp, "fn": fn, "n_test": len(duplicates), "n_true": int(has.sum()),
            "n_truth_records_matched": matched,
            "precision": tp / (tp + fp) if tp + fp else float("nan"),
            "recall": tp / (tp + fn) if tp + fn else float("nan"),
            "pair_accuracy": float(right[pred & has].mean()) if tp else float("nan"),
            "false_positive_files": duplicates.loc[pred & ~has, "test_file"].tolist()[:50],
            "missed_files": duplicates.loc[~pred & has, "test_file"].tolist()[:50]}


def calibrate_with_ground_truth(detector, test_paths, truth, target_precision: float = 0.99) -> dict:
    """Query a fitted ``OverlapDetector`` without a threshold and pick one on ground-truth labels."""
    if not isinstance(truth, pd.DataFrame):
        truth = load_ground_truth(truth)
    df = detector.query(test_paths, threshold=np.inf)
    has, _, _ = ground_truth_labels(df, truth)
    return pick_threshold(df["similarity"].to_numpy(), has, target_precision)


def calibrate_synthetic(detector, n_pos: int = 200, n_neg: int = 400, seed: int = 0,
                        target_precision: float = 0.99, alter_kwargs: dict | None = None) -> dict:
    """Calibrate a fitted ``OverlapDetector`` on altered copies of its own corpus images (see module doc).

    The detector's index is restored afterwards.
    """
    from roz.overlap.hashing import open_image_fast

    ok_ids = np.flatnonzero(detector.corpus_ok)
    if len(ok_ids) < 4:
        raise DataError("calibrate_synthetic: the corpus has fewer than 4 readable images")
    rng = np.random.default_rng(seed)
    n_pos = min(n_pos, len(ok_ids) // 2)
    n_neg = min(n_neg, len(ok_ids) - n_pos - 1)
    pick = rng.choice(ok_ids, size=n_pos + n_neg, replace=False)
    pos, neg = pick[:n_pos], pick[n_pos:]
    originals = [open_image_fast(detector.corpus_paths[i]) for i in pick]
    altered = [alter_image(im, rng, **(alter_kwargs or {})) for im in originals[:n_pos]]
    saved = (detector.corpus_feats, detector.corpus_ok)
    try:
        feats = {k: v.copy() for k, v in saved[0].items()}
        ok = saved[1].copy()
        alt = detector.features_pil(altered, test_side=False)
        for k in feats:
            feats[k][pos] = alt[k] if k == "feats" else alt[k][:, :feats[k].shape[1]]
        ok[neg] = False  # negatives: their own image leaves the corpus
        detector._set_corpus(feats, ok)
        q = detector.features_pil(originals, test_side=True)
        best, sim, _ = detector.score(q, np.ones(len(pick), bool))
    finally:
        detector._set_corpus(*saved)
    label = np.r_[np.ones(n_pos, bool), np.zeros(n_neg, bool)]
    out = pick_threshold(sim, label, target_precision)
    out.update(source="synthetic", seed=seed, pair_accuracy=float((best[:n_pos] == pos).mean()),
               alter=dict(alter_kwargs or {}))
    return out
