"""The unit record: everything the store keeps about one finished unit, built in one place."""

from __future__ import annotations

from roz.engine.env import environment
from roz.engine.kinds import UnitContext, UnitResult
from roz.engine.positions import LIMIT_DRAW, positions_digest


def build_record(ctx: UnitContext, result: UnitResult, kind: str, seconds: float, paper_order: int) -> dict:
    """The unit JSON (without the store's own keys: samples integrity, version, format)."""
    unit, ds, opts, label_map = ctx.unit, ctx.ds, ctx.opts, ctx.label_map
    desc = ctx.model.describe()
    positions = {**positions_digest(ctx.positions), "of": len(ds), "shard": list(unit.shard)}
    if unit.limit is not None:
        positions["limit_draw"] = LIMIT_DRAW
    return {
        "unit_id": unit.unit_id,
        "kind": kind,
        "model": {"name": unit.model.label, "spec": unit.model.spec, "role": desc["role"], "identity": desc["identity"],
                  "classes": desc["classes"], "n_classes": desc["n_classes"], "weights_sha256": unit.model.weights},
        "dataset": {**ds.describe(), "name": unit.dataset.display, "registry_name": unit.dataset.name,
                    "paper_order": paper_order, "fingerprint": unit.dataset.fingerprint},
        "shift": {**(unit.shift_dict() or {}), **(result.shift_params or {})} or None,
        "attack": result.attack,
        "metrics": result.metrics,
        "protocol": {
            "head": unit.head,
            "templates": desc.get("templates"),
            "n_templates": desc.get("n_templates"),
            "logit_scale": desc.get("logit_scale"),
            "preprocess": desc["preprocess"],
            "label_space": {"n_labels": len(ds.labels), "n_model_classes": desc["n_classes"],
                            "merge": "identity" if label_map.identity else "max over each label's WordNet IDs",
                            "model_classes_outside_labels_dropped": True},
            "seed": unit.seed, "shard": list(unit.shard), "limit": unit.limit, "amp": opts.amp,
            "positions": positions,
            "on_bad_image": unit.on_bad_image, "dataset_protocol": ds.protocol,
            **result.protocol,
        },
        "skipped_files": result.skipped,
        "env": environment(opts.device),
        "timing": {"seconds": round(seconds, 3), "images_per_s": round(len(result.table) / max(seconds, 1e-9), 2)},
    }
