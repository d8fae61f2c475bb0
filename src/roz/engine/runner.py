"""Executors: units -> store. ``run_units`` skips finished units (``force`` recomputes).

The local executor runs units in order in this process, reusing built models; the Ray executor
(``executor='ray'``, needs ``pip install roz[ray]``) runs one task per unit, each writing its own
result to the shared run directory — the store's atomic writes make that safe.
"""

from __future__ import annotations

import time

import torch

from roz.datasets.base import LabelSpace
from roz.datasets.classes import ClassSet
from roz.datasets.registry import create_dataset, dataset_info
from roz.engine.env import environment
from roz.engine.evaluate import run_eval
from roz.engine.labelspace import LabelMap
from roz.engine.options import RunOptions  # noqa: F401  (re-exported: defined in engine.options)
from roz.engine.store import ResultStore
from roz.engine.units import Unit
from roz.errors import RozError
from roz.models.adapters import create_model
from roz.models.base import RozModel
from roz.shifts.registry import create_shift


class ModelCache:
    def __init__(self):
        self._m: dict = {}

    def get(self, ref, device) -> RozModel:
        key = (ref.spec, ref.classes, ref.templates, ref.name, ref.role, str(device))
        if key not in self._m:
            self._m[key] = create_model(ref.spec, classes=ref.classes, templates=ref.templates, name=ref.label,
                                        role=ref.role, device=device)
        return self._m[key]


def _subset_head(model: RozModel, labels: LabelSpace, ds_name: str):
    """A zero-shot head over only the dataset's label names (identity label map)."""
    if not hasattr(model, "with_classes"):
        raise RozError(f"head=subset needs a zero-shot model; {model.name} is a {model.role} classifier",
                       hint="use head=full for standard models (the class mask)")
    ids = tuple(f"{ds_name}:{i}" for i in range(len(labels)))
    sub = model.with_classes(ClassSet(f"{ds_name}-labels", ids, tuple(labels.names)))
    return sub, LabelMap(ids, LabelSpace.singletons(ids, labels.names))


def execute_unit(unit: Unit, store: ResultStore, opts: RunOptions, models: ModelCache | None = None) -> dict:
    models = models or ModelCache()
    info = dataset_info(unit.dataset.name)
    ds = create_dataset(unit.dataset.name, unit.dataset.root, on_bad_image=unit.on_bad_image,
                        **dict(unit.dataset.options))
    model = models.get(unit.model, opts.device)
    label_map = None
    if unit.head == "subset":
        model, label_map = _subset_head(model, ds.labels, unit.dataset.display)
    label_map = label_map or LabelMap(model.wnids, ds.labels, what=ds.name)
    t0 = time.perf_counter()
    shift = create_shift(unit.shift_dict() or {}, dataset=ds)
    sequence_protocol = None
    if unit.kind == "perturbation":  # ImageNet-P: released videos or sequences generated per image
        from roz.engine.sequence_unit import run_sequence_unit

        table, metrics, sequence_protocol = run_sequence_unit(model, ds, label_map, unit, opts, store=store)
        skipped = [r for r, ok in zip(table.column("path").to_pylist(), table.column("ok").to_pylist()) if not ok] \
            if table.num_rows else []
        attack_protocol = None
        shift = None  # recorded as the unit's shift dict; generator details are in protocol.sequence
    elif unit.attack:
        from roz.engine.attack_unit import run_attack_unit

        table, metrics, attack_protocol = run_attack_unit(model, ds, label_map, unit, opts)
        skipped = []
    else:
        table, skipped, _ = run_eval(model, ds, store, unit.unit_id, shift=shift, seed=unit.seed, shard=unit.shard,
                                     limit=unit.limit, batch_size=opts.batch_size, workers=opts.workers,
                                     device=opts.device, amp=opts.amp, full_logits=unit.full_logits,
                                     part_size=opts.part_size, progress=opts.progress, label_map=label_map)
        df = table.to_pandas()
        metrics = ds.aggregate(df[df["ok"]]) if len(df) else ds.aggregate(df)
        if "written_label" in df.columns:  # typographic shift or dataset: accuracy + attack success rate
            from roz.metrics.typographic import aggregate_typographic

            metrics.update(aggregate_typographic(df))
        metrics["n_skipped"] = len(skipped)
        attack_protocol = None
    seconds = time.perf_counter() - t0
    desc = model.describe()
    record = {
        "unit_id": unit.unit_id,
        "kind": unit.kind,
        "model": {"name": unit.model.label, "spec": unit.model.spec, "role": desc["role"], "identity": desc["identity"],
                  "classes": desc["classes"], "n_classes": desc["n_classes"], "weights_sha256": unit.model.weights},
        "dataset": {**ds.describe(), "name": unit.dataset.display, "registry_name": unit.dataset.name,
                    "paper_order": info.paper_order, "fingerprint": unit.dataset.fingerprint},
        "shift": {**(unit.shift_dict() or {}), **(shift.params() if shift is not None else {})} or None,
        "attack": attack_protocol,
        "metrics": metrics,
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
            "on_bad_image": unit.on_bad_image, "dataset_protocol": ds.protocol,
            **({"sequence": sequence_protocol} if sequence_protocol is not None else {}),
        },
        "skipped_files": skipped,
        "env": environment(opts.device),
        "timing": {"seconds": round(seconds, 3), "images_per_s": round(len(table) / max(seconds, 1e-9), 2)},
    }
    store.write_unit(record, table)
    return record


def run_units(units: list[Unit], run_dir, opts: RunOptions | None = None, force: bool = False,
              executor: str = "local", config: dict | None = None, log=None) -> list[dict]:
    """Run every unit not yet in the store; return all units' records (finished ones included)."""
    opts = opts or RunOptions()
    store = ResultStore(run_dir, config=config)
    todo = []
    for u in units:
        if force:
            store.clear_unit(u.unit_id)
        if not store.is_done(u.unit_id):
            todo.append(u)
    if log:
        log(f"{len(units)} units, {len(units) - len(todo)} already done, {len(todo)} to run")
    if executor == "ray" and todo:
        _run_ray(todo, str(run_dir), opts)
    elif executor == "local":
        models = ModelCache()
        for i, u in enumerate(todo):
            if log:
                log(f"[{i + 1}/{len(todo)}] {u.unit_id}")
            execute_unit(u, store, opts, models)
    elif executor != "ray":
        raise RozError(f"unknown executor {executor!r}; use local or ray")
    return [store.unit(u.unit_id) for u in units]


def _run_ray(units: list[Unit], run_dir: str, opts: RunOptions) -> None:
    try:
        import ray
    except ImportError:
        raise RozError("executor 'ray' needs Ray", hint="pip install 'roz[ray]'") from None
    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
    gpus = 1 if str(opts.device).startswith("cuda") else 0

    @ray.remote(num_gpus=gpus)
    def _task(u):
        torch.set_num_threads(1)
        return execute_unit(u, ResultStore(run_dir), opts)["unit_id"]

    ray.get([_task.remote(u) for u in units])
