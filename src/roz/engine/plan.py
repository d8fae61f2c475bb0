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

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

import yaml

from roz.engine.fingerprint import dataset_fingerprint, weights_sha256
from roz.engine.options import RunOptions
from roz.engine.kinds import dataset_kind
from roz.engine.units import DatasetRef, ModelRef, Unit, freeze
from roz.engine.validate import RunConfig, validate_config
from roz.errors import ConfigError
from roz.shifts.registry import parse_shift


def load_config(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        cfg = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"config {p} is not valid YAML: {e}") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"config {p} must be a mapping with 'models' and 'datasets'")
    base = p.parent
    for d in cfg.get("datasets", []) or []:
        if isinstance(d, dict) and "root" in d and not Path(str(d["root"])).expanduser().is_absolute():
            d["root"] = str((base / str(d["root"])).resolve())
    for m in cfg.get("models", []) or []:
        if isinstance(m, dict) and m.get("prompts") and not Path(str(m["prompts"])).expanduser().is_absolute():
            m["prompts"] = str((base / str(m["prompts"])).resolve())  # a prompt artefact beside the config
        if isinstance(m, dict) and "@" in str(m.get("spec", "")):
            src, w = m["spec"].rsplit("@", 1)
            if w.startswith(("./", "../")):
                m["spec"] = f"{src}@{(base / w).resolve()}"
    return cfg


def plan_units(cfg: dict | RunConfig) -> list[Unit]:
    """Validate a config (``ConfigError`` listing every problem) and expand it into units. The
    units carry their weights' hash, ``amp`` and each dataset root's fingerprint (issue 12)."""
    conf = cfg if isinstance(cfg, RunConfig) else validate_config(cfg)
    amp = RunOptions.amp if conf.amp is None else conf.amp
    models = [ModelRef(spec=m.spec, name=m.name, classes=m.classes, templates=m.templates,
                       role=str(m.role) if m.role else None, weights=weights_sha256(m.spec)) for m in conf.models]
    fingerprint = lru_cache(maxsize=None)(dataset_fingerprint)  # one walk per root per plan
    datasets = [DatasetRef(name=d.name, root=str(d.root), options=freeze(d.options), label=d.label,
                           fingerprint=fingerprint(d.root)) for d in conf.datasets]
    common = dict(seed=conf.seed, on_bad_image=str(conf.on_bad_image), full_logits=conf.full_logits, amp=amp)
    units = _shift_units(conf, models, datasets, common)
    for a in conf.attacks:
        params = a.model_dump(exclude_unset=True, exclude={"datasets", "models", "limit"})
        on = set(a.datasets or [d.display for d in datasets])
        on_models = set(a.models or [m.label for m in models])
        alimit = a.limit if "limit" in a.model_fields_set else conf.limit
        for m in models:
            if m.label not in on_models:
                continue
            for d in datasets:
                if d.display in on and dataset_kind(d.name) == "eval":
                    units.append(Unit(model=m, dataset=d, attack=freeze(_plain(params)), limit=alimit, **common))
    return units


def _plain(params: dict) -> dict:
    """Enum members as their strings (the unit id hashes JSON)."""
    return {k: (str(v) if isinstance(v, StrEnum) else v) for k, v in params.items()}


def _shift_units(conf: RunConfig, models: list[ModelRef], datasets: list[DatasetRef], common: dict) -> list[Unit]:
    # A shift entry is a spec string, or {shift: SPEC, models: [...], datasets: [...], limit: N}
    # to restrict it (e.g. the full corruption grid on a few models only).
    default_ds = set(conf.shift_datasets or [d.display for d in datasets])
    shift_dicts = []  # (shift dict, model names or None, dataset names, limit)
    for s in conf.shifts:
        slimit = s.limit if "limit" in s.model_fields_set else conf.limit
        sel = (set(s.models) if s.models else None, set(s.datasets or default_ds), slimit)
        shift_dicts += [(d, *sel) for d in parse_shift(s.shift)]
    units: list[Unit] = []
    for m in models:
        for d in datasets:
            for sh, only_models, shift_ds, slimit in shift_dicts:
                if sh and (d.display not in shift_ds or (only_models is not None and m.label not in only_models)):
                    continue
                if sh and dataset_kind(d.name) != "eval":  # video sequences: no image shifts on top
                    continue
                for head in conf.heads:
                    for k in range(conf.shards):
                        units.append(Unit(model=m, dataset=d, shift=freeze(sh), head=str(head), shard=(k, conf.shards),
                                          limit=slimit if sh else conf.limit, **common))
    return units
