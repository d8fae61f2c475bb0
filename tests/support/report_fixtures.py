"""A small fixture run written straight into a ResultStore (no engine, no model)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from roz.engine.record import UnitRecord
from roz.engine.store import ResultStore

EVIL = "<script>alert(1)</script>"

# model -> role, accuracies (%) on the natural datasets
MODELS = {
    "resnet18": ("standard", {"imagenet-val": 69.8, "imagenetv2-matched-frequency": 57.3, "imagenet-r": 33.1, "imagenet-sketch": 20.2}),
    "resnet34": ("standard", {"imagenet-val": 73.3, "imagenetv2-matched-frequency": 61.2, "imagenet-r": 36.1, "imagenet-sketch": 23.5}),
    "resnet50": ("standard", {"imagenet-val": 76.1, "imagenetv2-matched-frequency": 63.3, "imagenet-r": 36.2, "imagenet-sketch": 24.1}),
    "resnet101": ("standard", {"imagenet-val": 77.4, "imagenetv2-matched-frequency": 65.7, "imagenet-r": 39.3, "imagenet-sketch": 27.0}),
    "densenet121": ("standard", {"imagenet-val": 74.4, "imagenetv2-matched-frequency": 62.2, "imagenet-r": 37.3, "imagenet-sketch": 24.2}),
    "vgg16": ("standard", {"imagenet-val": 71.6, "imagenetv2-matched-frequency": 58.8, "imagenet-r": 27.9, "imagenet-sketch": 17.5}),
    "clip-rn50": ("zeroshot", {"imagenet-val": 59.8, "imagenetv2-matched-frequency": 52.6, "imagenet-r": 60.5, "imagenet-sketch": 35.4}),
    "clip-rn50-auto": ("zeroshot-auto", {"imagenet-val": 61.0, "imagenetv2-matched-frequency": 53.4, "imagenet-r": 63.0, "imagenet-sketch": 36.0}),
    EVIL: ("zeroshot", {"imagenet-val": 63.3, "imagenetv2-matched-frequency": 55.8, "imagenet-r": 69.3}),
}
N_SAMPLES = 200
# ImageNet-P units: (model, role, flip_prob as a fraction, top5_dist), perturbation gaussian_noise, difficulty 1
PERTURBATION_UNITS = (("resnet50", "standard", 0.25, 2.0), (EVIL, "zeroshot", 0.125, 1.5))


def _samples(acc: float, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    correct = rng.random(N_SAMPLES) < acc / 100.0
    return pa.table({"idx": np.arange(N_SAMPLES), "correct": correct,
                     "correct5": correct | (rng.random(N_SAMPLES) < 0.5)})


def _unit(uid, model, role, dataset, metrics, kind="eval", shift=None, attack=None, n=N_SAMPLES):
    return UnitRecord.from_json({"unit_id": uid, "kind": kind, "model": {"name": model, "spec": f"fixture:{model}", "role": role, "identity": {}},
            "dataset": {"name": dataset, "root": "/nonexistent", "n": n, "protocol": {}},
            "shift": shift, "attack": attack, "metrics": metrics, "protocol": {"resize": 224, "seed": 0},
            "skipped_files": [], "env": {"torch": "2.x", "device": "cpu"}, "timing": {"seconds": 1.0}})


def make_run(root) -> ResultStore:
    store = ResultStore(root, config={"models": list(MODELS), "note": EVIL})
    k = 0
    for model, (role, accs) in MODELS.items():
        for ds, acc in accs.items():
            k += 1
            samples = None
            if role.startswith("zeroshot") and ds == "imagenet-r":
                samples = _samples(acc, k)
                acc = 100.0 * float(np.mean(samples.column("correct").to_numpy()))
            store.write_unit(_unit(f"u{k:03d}", model, role, ds, {"top1": acc, "top5": min(99.0, acc + 15), "n": N_SAMPLES}),
                             samples)
    for model, role, base in (("resnet50", "standard", 76.1), ("clip-rn50", "zeroshot", 59.8)):
        for c, drop in (("gaussian_noise", 30.0), ("fog", 15.0)):
            for sev in (1, 3):
                k += 1
                store.write_unit(_unit(f"c{k:03d}", model, role, "imagenet-val", {"top1": base - drop * sev / 3},
                                       shift={"name": "corruption", "corruption": c, "severity": sev}), None)
    for model, role in (("resnet50", "standard"), ("clip-rn50", "zeroshot"), (EVIL, "zeroshot")):
        k += 1
        store.write_unit(_unit(f"a{k:03d}", model, role, "imagenet-val",
                               {"clean_acc": 70.0, "robust_acc@1/255": 30.0, "robust_acc@4/255": 2.0},
                               kind="attack", attack={"name": "pgd", "eps": 4 / 255, "steps": 10}), None)
        k += 1
        store.write_unit(_unit(f"t{k:03d}", model, role, "imagenet-val", {"top1": 40.0, "success_rate": 35.0},
                               shift={"name": "typographic", "font": "arial"}), None)
    for model, role, fp, t5 in PERTURBATION_UNITS:
        k += 1
        store.write_unit(_unit(f"p{k:03d}", model, role, "imagenet-val",
                               {"flip_prob": fp, "top5_dist": t5, "top1": 50.0, "n": 40}, kind="perturbation",
                               shift={"name": "perturbation", "perturbation": "gaussian_noise", "difficulty": 1},
                               n=40), None)
    write_overlap(root)
    return store


def overlap_json() -> dict:
    """An ``overlap.json`` as the demo writes it (``roz.overlap.overlap_report`` summary), with a
    hostile split name, model name and file name."""
    def row(model, full, clean, over):
        return {"model": model, "n_full": 200, "n_clean": 188, "n_overlap": 12, "overlap_frac": 0.06,
                "acc_full": full, "acc_full_lo": full - 3.0, "acc_full_hi": full + 3.0,
                "acc_clean": clean, "acc_clean_lo": clean - 3.0, "acc_clean_hi": clean + 3.0,
                "acc_overlap": over, "acc_overlap_cp_lo": over - 30.0, "acc_overlap_cp_hi": min(100.0, over + 20.0),
                "delta_full_minus_clean": full - clean, "delta_full_minus_clean_lo": full - clean - 0.5,
                "delta_full_minus_clean_hi": full - clean + 0.5, "delta_check": full - clean,
                "overlap_minus_clean": over - clean, "overlap_minus_clean_lo": -5.0, "overlap_minus_clean_hi": 20.0,
                "p_overlap_gt_clean": 0.03}
    prot = {"method": "phash", "verify": "ncc", "threshold": 0.94, "n_test": 200, "n_corpus": 5000,
            "n_overlap": 12, "n_boot": 1000, "seed": 0, "corpus_dir": "/x/" + EVIL}
    return {
        "imagenet-r": {"detection": {"precision": 0.75, "recall": 0.9, "tp": 9, "fp": 3, "fn": 1, "n_true": 10,
                                     "false_positive_files": [f"/x/{EVIL}.png", "/x/b.png", "/x/c.png"],
                                     "missed_files": ["/x/d.png"], "split": "imagenet-r"},
                       "accuracy": [row("clip-rn50", 61.5, 60.25, 81.0), row(EVIL, 70.0, 69.5, 77.8)],
                       "n_duplicates": 12, "protocol": prot},
        EVIL: {"detection": None, "accuracy": [row("resnet50", 36.2, 36.0, 39.3)], "n_duplicates": 7,
               "protocol": {**prot, "n_overlap": 7}},
    }


def write_overlap(root, data=None) -> None:
    import json
    from pathlib import Path

    (Path(root) / "overlap.json").write_text(json.dumps(overlap_json() if data is None else data))


@pytest.fixture(scope="session")
def fixture_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    make_run(root)
    return root
