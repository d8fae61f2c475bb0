"""Typographic-attack metrics: accuracy and attack success rate.

* **accuracy**: prediction == true class (percent);
* **attack success rate (ASR)**: prediction == written class (percent).

Both are over the samples whose words were written (``ok``); skipped images (words did not fit)
are excluded and counted in ``n_skipped``. Predictions must already be restricted to the
candidate classes of the protocol (full label space, union vocabulary, or the binary pair
true-vs-written) -- see ``candidate_logits``.
"""

from __future__ import annotations

import numpy as np
import torch


def _np(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def typographic_scores(preds, targets, written, ok=None) -> dict[str, float]:
    """``{"accuracy", "attack_success_rate", "n", "n_skipped"}`` (rates in percent)."""
    p, t, w = _np(preds).astype(np.int64), _np(targets).astype(np.int64), _np(written).astype(np.int64)
    if not (len(p) == len(t) == len(w)):
        raise ValueError(f"typographic: {len(p)} predictions, {len(t)} targets, {len(w)} written labels")
    k = (w >= 0) if ok is None else (_np(ok).astype(bool) & (w >= 0))
    n = int(k.sum())
    if n == 0:
        return {"accuracy": float("nan"), "attack_success_rate": float("nan"), "n": 0, "n_skipped": int(len(p))}
    return {"accuracy": 100.0 * float((p[k] == t[k]).mean()),
            "attack_success_rate": 100.0 * float((p[k] == w[k]).mean()),
            "n": n, "n_skipped": int(len(p) - n)}


def aggregate_typographic(rows, n_skipped: int = 0) -> dict[str, float]:
    """Scores from a per-sample table with columns ``pred``, ``target``, ``written_label``
    (``-1`` = skipped) and optionally ``ok``; ``n_skipped`` adds samples already dropped."""
    ok = rows["ok"] if "ok" in rows.columns else None
    out = typographic_scores(rows["pred"].to_numpy(), rows["target"].to_numpy(), rows["written_label"].to_numpy(), ok)
    out["n_skipped"] += int(n_skipped)
    return out


def candidate_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Restrict ``logits [B, L]`` to each sample's candidate labels (``mask [B, L]`` bool):
    non-candidates get ``-inf`` so argmax/top-k only see the protocol's candidates."""
    return logits.masked_fill(~mask.to(logits.device, torch.bool), float("-inf"))
