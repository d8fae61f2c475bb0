"""A run directory with per-sample rows on a planted-duplicate world's test set (no model): four
standard models and one zero-shot model that is right on every planted duplicate."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from roz.engine.record import UnitRecord
from roz.engine.store import ResultStore

STANDARD = {"std-a": (60.0, 30.0), "std-b": (66.0, 35.0), "std-c": (71.0, 41.0), "std-d": (75.0, 44.0)}
ZEROSHOT = ("zs", 62.0, 55.0)


def _unit(uid, model, role, dataset, acc, n):
    return UnitRecord.from_json({"unit_id": uid, "kind": "eval",
                                 "model": {"name": model, "spec": f"fixture:{model}", "role": role, "identity": {}},
                                 "dataset": {"name": dataset, "root": "/nonexistent", "n": n, "protocol": {}},
                                 "shift": None, "attack": None, "metrics": {"top1": acc, "n": n},
                                 "protocol": {"seed": 0}, "skipped_files": [], "env": {}, "timing": {}})


def make_overlap_run(root, n_test: int, planted: set[int], split: str = "mini-r", seed: int = 0) -> ResultStore:
    rng = np.random.default_rng(seed)
    store = ResultStore(root, config={"note": "overlap fixture"})
    models = [(m, "standard", ref, shift) for m, (ref, shift) in STANDARD.items()] + [(ZEROSHOT[0], "zeroshot", *ZEROSHOT[1:])]
    for k, (m, role, ref, shift) in enumerate(models):
        store.write_unit(_unit(f"ref{k}", m, role, "mini-val", ref, 1000), None)
        correct = rng.random(n_test) < shift / 100.0
        if role == "zeroshot":
            correct[sorted(planted)] = True  # "memorised" duplicates
        samples = pa.table({"index": np.arange(n_test), "correct": correct})
        store.write_unit(_unit(f"shift{k}", m, role, split, 100.0 * correct.mean(), n_test), samples)
    return store
