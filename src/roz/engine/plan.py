"""Spec -> plan: a run configuration (YAML or dict) expanded into work units.

Example ``run.yaml``::

    out: runs/my-run
    seed: 0
    models:
      - {spec: "timm:resnet50", name: resnet50}
      - {spec: "openclip:ViT-B-32@openai", name: clip-vit-b32, templates: openai-80}
    datasets:
      - {name: imagenet-val, root: /data/imagenet}
      - {name: imagenet-r, root: /data/imagenet-r}
    shifts: [none, "corruption:fog:3"]     # default: [none]; "perturbation:all" = ImageNet-P sequences
    shift_datasets: [imagenet-val]          # datasets the non-clean shifts apply to (default: all)
    heads: [full]                           # zero-shot: full (mask) and/or subset
    attacks:                                # optional
      - {name: pgd, eps: [0.0039, 0.0078], datasets: [imagenet-val], limit: 500}
    limit: null                             # N samples per dataset, a seeded class-stratified draw (quick runs)
"""

from __future__ import annotations

from pathlib import Path

import yaml

from roz.engine.kinds import dataset_kind
from roz.engine.units import DatasetRef, ModelRef, Unit, freeze
from roz.errors import RozError
from roz.shifts.registry import parse_shift

TOP_KEYS = {"out", "seed", "models", "datasets", "shifts", "shift_datasets", "heads", "attacks", "limit",
            "batch_size", "workers", "device", "amp", "on_bad_image", "full_logits", "shards", "executor",
            "baseline", "report", "name", "reference"}


def load_config(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise RozError(f"config file not found: {p}")
    try:
        cfg = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise RozError(f"config {p} is not valid YAML: {e}") from None
    if not isinstance(cfg, dict):
        raise RozError(f"config {p} must be a mapping with 'models' and 'datasets'")
    base = p.parent
    for d in cfg.get("datasets", []) or []:
        if isinstance(d, dict) and "root" in d and not Path(str(d["root"])).expanduser().is_absolute():
            d["root"] = str((base / str(d["root"])).resolve())
    for m in cfg.get("models", []) or []:
        if isinstance(m, dict) and "@" in str(m.get("spec", "")):
            src, w = m["spec"].rsplit("@", 1)
            if w.startswith(("./", "../")):
                m["spec"] = f"{src}@{(base / w).resolve()}"
    return cfg


def _model_ref(m) -> ModelRef:
    if isinstance(m, str):
        return ModelRef(spec=m)
    if not isinstance(m, dict) or "spec" not in m:
        raise RozError(f"model entry {m!r} needs a 'spec'")
    unknown = set(m) - {"spec", "name", "classes", "templates", "role"}
    if unknown:
        raise RozError(f"model entry {m.get('name', m['spec'])!r}: unknown keys {sorted(unknown)}")
    return ModelRef(**m)


def _dataset_ref(d) -> DatasetRef:
    if not isinstance(d, dict) or "name" not in d or "root" not in d:
        raise RozError(f"dataset entry {d!r} needs 'name' and 'root'")
    unknown = set(d) - {"name", "root", "options", "label"}
    if unknown:
        raise RozError(f"dataset entry {d['name']!r}: unknown keys {sorted(unknown)}")
    return DatasetRef(name=d["name"], root=str(d["root"]), options=freeze(d.get("options")), label=d.get("label"))


def plan_units(cfg: dict) -> list[Unit]:
    unknown = set(cfg) - TOP_KEYS
    if unknown:
        raise RozError(f"config: unknown keys {sorted(unknown)}", hint=f"known keys: {sorted(TOP_KEYS)}")
    models = [_model_ref(m) for m in cfg.get("models") or []]
    datasets = [_dataset_ref(d) for d in cfg.get("datasets") or []]
    if not models or not datasets:
        raise RozError("config needs at least one model and one dataset")
    names = [m.label for m in models]
    if len(set(names)) != len(names):
        raise RozError(f"config: model names must be unique, got {names}", hint="give each model a 'name'")
    seed = int(cfg.get("seed", 0))
    limit = cfg.get("limit")
    heads = cfg.get("heads") or ["full"]
    bad = set(heads) - {"full", "subset"}
    if bad:
        raise RozError(f"config: unknown heads {sorted(bad)}; use full and/or subset")
    # A shift entry is a spec string, or {shift: SPEC, models: [...], datasets: [...], limit: N}
    # to restrict it (e.g. the full corruption grid on a few models only).
    default_ds = set(cfg.get("shift_datasets") or [d.display for d in datasets])
    shift_dicts = []  # (shift dict, model names or None, dataset names, limit)
    for s in cfg.get("shifts") or ["none"]:
        if isinstance(s, dict) and "shift" in s:
            unknown = set(s) - {"shift", "models", "datasets", "limit"}
            if unknown:
                raise RozError(f"shift entry {s['shift']!r}: unknown keys {sorted(unknown)}")
            sel = (set(s["models"]) if s.get("models") else None, set(s.get("datasets") or default_ds), s.get("limit", limit))
            spec = s["shift"]
        else:
            sel, spec = (None, default_ds, limit), s
        shift_dicts += [(d, *sel) for d in parse_shift(spec)]
    common = dict(seed=seed, limit=limit, on_bad_image=cfg.get("on_bad_image", "fail"),
                  full_logits=bool(cfg.get("full_logits", False)))
    shards = int(cfg.get("shards", 1))
    units: list[Unit] = []
    for m in models:
        for d in datasets:
            for sh, only_models, shift_ds, slimit in shift_dicts:
                if sh and (d.display not in shift_ds or (only_models is not None and m.label not in only_models)):
                    continue
                if sh and dataset_kind(d.name) != "eval":  # video sequences: no image shifts on top
                    continue
                for head in heads:
                    for k in range(shards):
                        units.append(Unit(model=m, dataset=d, shift=freeze(sh), head=head, shard=(k, shards),
                                          **{**common, "limit": slimit if sh else limit}))
    for a in cfg.get("attacks") or []:
        if not isinstance(a, dict) or "name" not in a:
            raise RozError(f"attack entry {a!r} needs a 'name'")
        a = dict(a)
        on = set(a.pop("datasets", None) or [d.display for d in datasets])
        on_models = set(a.pop("models", None) or [m.label for m in models])
        alimit = a.pop("limit", limit)
        for m in models:
            if m.label not in on_models:
                continue
            for d in datasets:
                if d.display in on and dataset_kind(d.name) == "eval":
                    units.append(Unit(model=m, dataset=d, attack=freeze(a), seed=seed, limit=alimit,
                                      on_bad_image=common["on_bad_image"]))
    return units
