"""ImageNet-P stability metrics: flip probability, top-5 distance, mFR and mT5D.

Definitions follow Hendrycks & Dietterich (2019) and their reference ``ImageNet-P/test.py``:

* **Flip probability** of a perturbation ``p`` with ``m`` sequences of ``n`` frames::

      FP = 1/(m (n-1)) sum_i sum_{j=2..n} 1[f(x_j) != f(x_{j-1})]   (consecutive frames)
      FP = 1/(m (n-1)) sum_i sum_{j=2..n} 1[f(x_j) != f(x_1)]       (noise: vs the first frame)

  Noise sequences (gaussian/shot/speckle noise) are i.i.d. draws, not a temporal ramp, so each
  frame is compared with the first (clean) frame. The reference averages per sequence, then over
  sequences (equal to the formula when all sequences have the same length). With difficulty
  ``d > 1`` non-noise sequences are compared at stride ``d``: frames ``(k, k+d)`` for each offset.
* **Top-5 distance** between the rankings of two frames: with ``sigma(i)`` the rank in the second
  frame of the class ranked ``i`` in the first, ``d = sum_{i=1..5} sum_{j=min(i,sigma(i))+1}^{max(i,
  sigma(i))} 1[1 <= j-1 <= 5]``, i.e. ``sum_i |min(i-1, 5) - min(sigma(i)-1, 5)|``; averaged like FP
  (noise: vs the first frame). Only the top-5 of each frame matters, so per-frame top-5 lists
  suffice (a class outside the second frame's top 5 has ``sigma >= 6``, which the cap makes exact).
* **mFR / mT5D**: the mean over perturbations of FP (T5D); *normalised* by a baseline model (the
  paper: AlexNet) as ``mean_p FP_f(p) / FP_baseline(p)`` -- per-perturbation ratios, then averaged.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import torch


def _is_noise(name_or_flag) -> bool:
    if isinstance(name_or_flag, bool):
        return name_or_flag
    from roz.datasets.release_names import is_noise

    return is_noise(str(name_or_flag))


def _pairs(n: int, noise: bool, step: int) -> list[tuple[int, int]]:
    """Frame pairs compared, exactly as the reference's loops (``step = difficulty``, 1 for noise)."""
    if noise:
        return [(0, j) for j in range(1, n)]
    out = []
    for k in range(step):
        idx = list(range(k, n, step))
        out.extend(zip(idx[:-1], idx[1:]))
    return out


def top5_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """``[..., C] -> [..., 5]`` classes by descending score, ties by class index (scipy's 'ordinal')."""
    order = torch.sort(-logits.float(), dim=-1, stable=True).indices
    return order[..., :5]


def top5_distance_pair(a5: Sequence[int], b5: Sequence[int]) -> int:
    """The paper's top-5 distance between two frames given their top-5 lists (best first)."""
    pos = {int(c): r for r, c in enumerate(b5)}
    return int(sum(abs(i - min(pos.get(int(c), 5), 5)) for i, c in enumerate(a5)))


def _seqs(x) -> list[np.ndarray]:
    """Sequences as arrays; accepts tensors, nested lists, pandas/arrow object columns."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    out = []
    for s in x:
        a = np.asarray(s)
        if a.dtype == object:  # e.g. a parquet round trip: an array of per-frame arrays
            a = np.stack([np.asarray(f) for f in s])
        out.append(a)
    return out


def _per_sequence(sequences, noise, step: int, distance) -> np.ndarray:
    """Mean ``distance(frame_a, frame_b)`` over each sequence's compared frame pairs (NaN: no pair)."""
    noise = _is_noise(noise)
    out = []
    for seq in _seqs(sequences):
        pairs = _pairs(len(seq), noise, 1 if noise else step)
        out.append(float(np.mean([distance(seq[a], seq[b]) for a, b in pairs])) if pairs else float("nan"))
    return np.asarray(out, dtype=np.float64)


def flip_probability_per_sequence(predictions, noise, step: int = 1) -> np.ndarray:
    """Per-sequence flip rate; ``predictions``: ``[m, n]`` top-1 labels (or a list of 1-D arrays)."""
    return _per_sequence(predictions, noise, step, lambda a, b: a != b)


def flip_probability(predictions, noise, step: int = 1) -> float:
    """FP of one perturbation (in [0, 1]). ``noise``: a bool or the perturbation name."""
    v = flip_probability_per_sequence(predictions, noise, step)
    return float(np.nanmean(v)) if len(v) and not np.isnan(v).all() else float("nan")


def top5_distance_per_sequence(top5, noise, step: int = 1) -> np.ndarray:
    """Per-sequence mean top-5 distance; ``top5``: ``[m, n, 5]`` class lists (best first)."""
    return _per_sequence(top5, noise, step, top5_distance_pair)


def top5_distance(top5, noise, step: int = 1) -> float:
    """Mean top-5 distance (T5D) of one perturbation."""
    v = top5_distance_per_sequence(top5, noise, step)
    return float(np.nanmean(v)) if len(v) and not np.isnan(v).all() else float("nan")


def perturbation_scores(top5, name: str, difficulty: int = 1) -> dict[str, float]:
    """``{"flip_prob", "top5_dist", "n"}`` of one perturbation from per-frame top-5 lists ``[m, n, 5]``.

    ``flip_prob`` is a fraction (the paper reports FP in percent in its tables; multiply by 100).
    """
    seqs = _seqs(top5)
    preds = [s[:, 0] for s in seqs]
    noise = _is_noise(name)
    return {"flip_prob": flip_probability(preds, noise, difficulty),
            "top5_dist": top5_distance(seqs, noise, difficulty), "n": len(seqs)}


def _mean_ratio(values: Mapping[str, float], baseline: Mapping[str, float] | None, what: str) -> float:
    if not values:
        return float("nan")
    if baseline is None:
        return float(np.mean([values[p] for p in values]))
    missing = [p for p in values if p not in baseline]
    if missing:
        raise ValueError(f"{what}: the baseline has no result for {missing}")
    zero = [p for p in values if not baseline[p] or math.isnan(baseline[p])]
    if zero:
        raise ValueError(f"{what}: the baseline's value is zero or missing for {zero}; cannot normalise")
    return float(np.mean([values[p] / baseline[p] for p in values]))


def mean_flip_rate(fp: Mapping[str, float], baseline: Mapping[str, float] | None = None) -> float:
    """mFR: mean FP over perturbations; with ``baseline`` (same keys), the mean of ``FP_f / FP_base``."""
    return _mean_ratio(fp, baseline, "mFR")


def mean_top5_distance(t5d: Mapping[str, float], baseline: Mapping[str, float] | None = None) -> float:
    """mT5D: mean T5D over perturbations; with ``baseline``, the mean of ``T5D_f / T5D_base``."""
    return _mean_ratio(t5d, baseline, "mT5D")


def imagenet_p_summary(scores: Mapping[str, Mapping[str, float]],
                       baseline: Mapping[str, Mapping[str, float]] | None = None,
                       baseline_name: str | None = None,
                       perturbations: Sequence[str] | None = None) -> dict[str, float]:
    """Summary of ``{perturbation: {"flip_prob", "top5_dist"}}`` (from :func:`perturbation_scores`).

    Returns per-perturbation ``FP/<p>`` and ``T5D/<p>``, un-normalised ``mFR`` / ``mT5D``, and when a
    ``baseline`` (same structure, e.g. AlexNet's scores) is given, ``mFR_norm`` / ``mT5D_norm`` plus
    ``baseline``. ``perturbations`` restricts the mean (default: every key of ``scores``; the paper's
    mFR uses the 10 test perturbations ``PERTURBATIONS``).
    """
    keys = list(perturbations) if perturbations is not None else list(scores)
    missing = [p for p in keys if p not in scores]
    if missing:
        raise ValueError(f"ImageNet-P summary: no scores for {missing}")
    fp = {p: float(scores[p]["flip_prob"]) for p in keys}
    t5 = {p: float(scores[p]["top5_dist"]) for p in keys}
    out: dict = {f"FP/{p}": fp[p] for p in keys}
    out.update({f"T5D/{p}": t5[p] for p in keys})
    out["mFR"] = mean_flip_rate(fp)
    out["mT5D"] = mean_top5_distance(t5)
    if baseline is not None:
        out["mFR_norm"] = mean_flip_rate(fp, {p: float(baseline[p]["flip_prob"]) for p in keys if p in baseline})
        out["mT5D_norm"] = mean_top5_distance(t5, {p: float(baseline[p]["top5_dist"]) for p in keys if p in baseline})
        out["baseline"] = baseline_name or "baseline"
    return out


def sequences_from_frame_table(rows, value: str = "top5", index: str = "index", frame: str = "frame") -> list[np.ndarray]:
    """Per-sequence arrays from a long table with one row per (sample, frame) -- what an engine
    that runs ``PerturbationFrame`` units stores. ``value`` is a top-5 list column (``[T, 5]`` per
    sequence) or a top-1 prediction column (``[T]``). Every sequence must have all its frames."""
    out = []
    for _, g in rows.sort_values([index, frame]).groupby(index, sort=True):
        f = g[frame].to_numpy()
        if not np.array_equal(f, np.arange(len(f))):
            raise ValueError(f"sequence {g[index].iloc[0]}: frames {f.tolist()} are not 0..{len(f) - 1}")
        out.append(np.stack([np.asarray(v) for v in g[value]]))
    return out


def sequence_top5(forward, frames: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Per-frame top-5 labels ``[B, T, 5]`` of a batch of sequences ``frames [B, T, 3, H, W]``.

    ``forward`` maps ``[N, 3, H, W]`` to label-space logits ``[N, L]`` (model plus label map);
    frames are run ``chunk`` at a time. Store the result per sample (column ``frame_top5``) and
    score with :func:`perturbation_scores`.
    """
    B, T = frames.shape[:2]
    flat = frames.reshape(B * T, *frames.shape[2:])
    outs = []
    with torch.inference_mode():
        for k in range(0, flat.shape[0], chunk):
            outs.append(top5_from_logits(forward(flat[k:k + chunk]).float()).cpu())
    return torch.cat(outs).reshape(B, T, -1)


def mfr_table(rows, baseline_model: str | None = None, perturbations: Sequence[str] | None = None,
              difficulty: int | None = 1):
    """Report-level ImageNet-P table from per-unit results (``ResultStore.perturbation_table()``).

    ``rows``: a pandas table (or an iterable of mappings) with one row per unit: ``model``,
    ``perturbation`` (rows without one are left out), ``difficulty``, ``n`` (default 1),
    ``flip_prob`` (a fraction) and ``top5_dist`` (NaN when absent); ``difficulty`` selects one
    difficulty (``None``: all, averaged per perturbation). One row per model with, in **percent**:

    * ``FP/<p>`` per perturbation, ``mFR`` (un-normalised mean FP), ``mT5D`` (mean top-5 distance,
      not a percentage) and ``T5D/<p>``;
    * with ``baseline_model`` (a model name among the rows): ``mFR_norm`` and ``mT5D_norm`` --
      the mean over perturbations of ``FP_model(p) / FP_baseline(p)`` (x100, as the paper's tables,
      so the baseline scores 100).

    ``perturbations`` fixes the columns (default: the perturbations present, test ones first); a
    model missing one of them gets NaN means. Several units for the same (model, perturbation)
    (e.g. shards, datasets) are combined weighted by ``n``.
    """
    import pandas as pd

    from roz.datasets.release_names import ALL_PERTURBATIONS

    acc: dict[str, dict[str, list]] = {}
    for r in rows.to_dict("records") if isinstance(rows, pd.DataFrame) else rows:
        p, d = r.get("perturbation"), int(r.get("difficulty", 1) or 1)
        if p is None or (isinstance(p, float) and math.isnan(p)) or (difficulty is not None and d != int(difficulty)):
            continue
        n = float(r.get("n", 1) or 1)
        cell = acc.setdefault(str(r.get("model", "?")), {}).setdefault(str(p), [0.0, 0.0, 0.0, 0.0])
        fp = float(r["flip_prob"])  # cell: sum fp*n, n, sum t5d*n, n_t5d
        if not math.isnan(fp):
            cell[0] += fp * n
            cell[1] += n
        t5 = float(r.get("top5_dist", float("nan")))
        if not math.isnan(t5):
            cell[2] += t5 * n
            cell[3] += n
    order = {p: i for i, p in enumerate(ALL_PERTURBATIONS)}
    keys = list(perturbations) if perturbations is not None else \
        sorted({p for v in acc.values() for p in v}, key=lambda q: (order.get(q, len(order)), q))
    fps = {mo: {p: (c[0] / c[1] if c[1] else float("nan")) for p, c in v.items()} for mo, v in acc.items()}
    t5s = {mo: {p: (c[2] / c[3] if c[3] else float("nan")) for p, c in v.items()} for mo, v in acc.items()}
    if baseline_model is not None and baseline_model not in fps:
        raise ValueError(f"mfr_table: no ImageNet-P results for the baseline model {baseline_model!r}; "
                         f"models: {sorted(fps)}")
    rows = []
    for mo in fps:
        fp = {p: fps[mo].get(p, float("nan")) for p in keys}
        t5 = {p: t5s[mo].get(p, float("nan")) for p in keys}
        complete = keys and all(not math.isnan(v) for v in fp.values())
        row = {"model": mo, **{f"FP/{p}": 100.0 * fp[p] for p in keys}}
        row["mFR"] = 100.0 * mean_flip_rate(fp) if complete else float("nan")
        row["mT5D"] = mean_top5_distance(t5) if complete and all(not math.isnan(v) for v in t5.values()) else float("nan")
        if baseline_model is not None:
            bfp = {p: fps[baseline_model].get(p, float("nan")) for p in keys}
            bt5 = {p: t5s[baseline_model].get(p, float("nan")) for p in keys}
            try:
                row["mFR_norm"] = 100.0 * mean_flip_rate(fp, bfp) if complete else float("nan")
            except ValueError:
                row["mFR_norm"] = float("nan")
            try:
                row["mT5D_norm"] = 100.0 * mean_top5_distance(t5, bt5) if complete else float("nan")
            except ValueError:
                row["mT5D_norm"] = float("nan")
        row.update({f"T5D/{p}": t5[p] for p in keys})
        row["n_perturbations"] = sum(not math.isnan(v) for v in fp.values())
        rows.append(row)
    df = pd.DataFrame(rows)
    if len(df):
        df = df.sort_values("mFR", na_position="last").reset_index(drop=True)
        df.attrs.update({"flip_prob_unit": "percent", "baseline": baseline_model, "perturbations": keys,
                         "difficulty": difficulty})
    return df
