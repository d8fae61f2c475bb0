"""The paper preset: load ``paper.yaml`` (or a copy), apply overrides, expand it into a plan.

A plan is plain data: the prompt-search steps (CLIP-Auto), one run config for ``roz run``, the
overlap step and the reports, plus ``missing``: every dataset root that is absent and every unit
group skipped because of it (partial data is fine; nothing is skipped silently)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from roz.errors import ConfigError

PRESET_FILE = "paper.yaml"
_KEYS = {"out", "seed", "clip_models", "clip_auto", "baselines", "datasets", "shifts", "paper_attacks",
         "modern_attacks", "overlap", "reports"}


def shipped_preset_path() -> Path:
    return Path(str(resources.files("roz.paper").joinpath(PRESET_FILE)))


def load_preset(path: str | Path | None = None) -> dict:
    """The preset mapping (the shipped one when ``path`` is None)."""
    p = Path(path).expanduser() if path else shipped_preset_path()
    if not p.is_file():
        raise ConfigError(f"preset {p}: no such file", hint="omit --preset for the shipped one (roz paper --show)")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"preset {p} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"preset {p} must be a mapping", hint=f"keys: {', '.join(sorted(_KEYS))}")
    return data


def _merge(base, over):
    """Mappings merge key by key (a null value removes the key); anything else (lists, scalars) replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = _merge(base.get(k), v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(over)


def apply_overrides(preset: dict, override_files=(), sets=()) -> dict:
    """``--override FILE.yaml`` (merged in order) then ``--set KEY=YAML`` (KEY may be dotted:
    ``datasets.imagenet-r.root=/x``; the value is read as YAML: ``[a, b]``, ``{...}``, ``3``)."""
    out = copy.deepcopy(preset)
    for f in override_files or ():
        out = _merge(out, load_preset(f))
    for item in sets or ():
        key, eq, raw = str(item).partition("=")
        if not eq or not key:
            raise ConfigError(f"--set {item!r} is not KEY=VALUE", hint="e.g. --set datasets.imagenet-r.root=/x/imagenet-r")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {item!r}: the value is not YAML: {e}") from None
        nested = value
        for part in reversed(key.split(".")):
            nested = {part: nested}
        out = _merge(out, nested)
    unknown = sorted(set(out) - _KEYS)
    if unknown:
        raise ConfigError(f"paper preset: unknown keys {unknown}", hint=f"keys: {', '.join(sorted(_KEYS))}")
    return out


@dataclass
class PaperPlan:
    """What `roz paper` will do, in order."""

    out: Path
    prompt_steps: list[dict]
    config: dict
    overlap: dict | None
    reports: list[dict]
    datasets: dict[str, str]  # present datasets (label) -> root
    loaders: dict[str, str] = field(default_factory=dict)  # label -> registered dataset name
    missing: list[str] = field(default_factory=list)


def _root(name: str, entry, data_root: str | None) -> str:
    root = entry.get("root") if isinstance(entry, dict) else entry
    if not isinstance(root, str) or not root:
        raise ConfigError(f"dataset {name!r}: no root", hint="datasets: {NAME: {root: '{data_root}/NAME'}}")
    if "{data_root}" in root and not data_root:
        raise ConfigError(f"dataset {name!r}: root {root!r} needs --data-root", hint="roz paper --data-root /data")
    return str(Path(root.replace("{data_root}", str(data_root or ""))).expanduser())


def _cells(label: str, base: dict, kind: str, missing: list) -> list[dict]:
    """A release with one dataset per cell (``cells: corruption``: ImageNet-C's 15 x 5; ``cells:
    perturbation``: ImageNet-P's 10 benchmark perturbations at difficulty 1), one entry per cell;
    cells absent from a present root are listed in ``missing``."""
    from roz.datasets.release_names import CORRUPTIONS, PERTURBATIONS, SEVERITIES

    if kind == "corruption":
        grid = [({"corruption": c, "severity": s}, f"{c}/{s}", f"{label}-{c}-{s}") for c in CORRUPTIONS for s in SEVERITIES]
    elif kind == "perturbation":
        grid = [({"perturbation": p, "difficulty": 1}, p, f"{label}-{p}") for p in PERTURBATIONS]
    else:
        raise ConfigError(f"dataset {label!r}: unknown cells {kind!r}", hint="cells: corruption or perturbation")
    root = Path(base["root"])
    out = []
    for options, sub, cell_label in grid:
        if root.is_dir() and not (root / sub).is_dir():
            missing.append(f"dataset {label}: cell {sub} missing under {root}")
            continue
        out.append({**base, "options": options, "label": cell_label})
    return out


def _models(preset: dict, out: Path) -> tuple[list[dict], list[dict]]:
    auto = preset.get("clip_auto") or {}
    models, steps = [], []
    for m in preset.get("clip_models") or []:
        models.append({"name": m["name"], "spec": m["spec"], "role": "zeroshot"})
        if m.get("auto"):
            art = out / "prompts" / f"{m['name']}.json"
            steps.append({"model": m["spec"], "name": m["name"], "out": str(art), "method": auto.get("method", "autoprompt"),
                          "dataset": auto.get("dataset", "imagenet-val"), "shots": int(auto.get("shots", 16)),
                          "seed": int(auto.get("seed", 0)), "params": dict(auto.get("params") or {})})
            models.append({"name": f"{m['name']}-auto", "spec": m["spec"], "prompts": str(art)})
    for m in preset.get("baselines") or []:
        models.append({"name": m["name"], "spec": m["spec"], "role": m.get("role", "standard")})
    return models, steps


def _restrict(entry: dict, present: dict, what: str, missing: list) -> dict | None:
    """``entry`` with its ``datasets`` cut to the present ones; None (listed) when none is left."""
    want = list(entry.get("datasets") or [])
    have = [d for d in want if d in present]
    if want and not have:
        missing.append(f"skipped {what}: dataset(s) {want} missing")
        return None
    if len(have) < len(want):
        missing.append(f"{what}: only on {have} ({sorted(set(want) - set(have))} missing)")
    return {**entry, "datasets": have} if want else dict(entry)


def _attacks(preset: dict, present: dict, missing: list) -> list[dict]:
    out = []
    for group in ("paper_attacks", "modern_attacks"):
        g = preset.get(group) or {}
        for a in g.get("attacks") or []:
            extra = {"surrogate": g["surrogate"]} if g.get("surrogate") and str(a.get("name")).startswith("transfer-") else {}
            entry = _restrict({**(g.get("common") or {}), **extra, **a}, present, f"attack {a.get('name')}", missing)
            if entry is not None:
                out.append(entry)
    return out


def expand(preset: dict, *, data_root: str | None, corpus: str | None = None, out: str | Path | None = None,
           exists=None) -> PaperPlan:
    """The plan of ``preset`` for data under ``data_root``; ``exists(name, root)`` says whether a
    dataset is present (default: its root is a directory)."""
    exists = exists or (lambda name, root: Path(root).is_dir())
    out = Path(out or preset.get("out") or "runs/paper")
    missing: list[str] = []
    roots = {name: _root(name, e, data_root) for name, e in (preset.get("datasets") or {}).items()}
    present = {n: r for n, r in roots.items() if exists(n, r)}
    missing += [f"dataset {n}: no data at {r}" for n, r in roots.items() if n not in present]
    models, steps = _models(preset, out)
    step_data = {s["dataset"] for s in steps}
    if steps and not step_data <= set(present):
        missing.append(f"skipped CLIP-Auto (prompt search): few-shot dataset {sorted(step_data - set(present))} missing")
        models = [m for m in models if "prompts" not in m]
        steps = []
    shifts = ["none"]
    for s in preset.get("shifts") or []:
        if s.get("unless") in present:
            continue  # e.g. ImageNet-C: the released files are evaluated instead
        entry = _restrict({k: v for k, v in s.items() if k != "unless"}, present, f"shift {s.get('shift')}", missing)
        if entry is not None:
            shifts.append(entry)
    loaders = {n: (e.get("name") if isinstance(e, dict) else None) or n for n, e in (preset.get("datasets") or {}).items()}
    data = []
    for n, r in present.items():
        cells = (preset["datasets"][n] or {}).get("cells") if isinstance(preset["datasets"][n], dict) else None
        base = {"name": loaders[n], "root": r, **({"label": n} if loaders[n] != n else {})}
        data += _cells(n, base, cells, missing) if cells else [base]
    config = {"out": str(out), "name": "roz-paper", "seed": int(preset.get("seed", 0)), "models": models,
              "datasets": data, "shifts": shifts,
              "attacks": _attacks(preset, present, missing)}
    ov = preset.get("overlap") or {}
    overlap = None
    if corpus and ov:
        tests = [f"{d}={present[d]}" for d in ov.get("datasets") or [] if d in present]
        missing += [f"overlap: test set {d} missing" for d in ov.get("datasets") or [] if d not in present]
        overlap = {"corpus": str(corpus), "encoder": ov.get("encoder", "openclip:RN50x16@openai"), "tests": tests} \
            if tests else None
    elif ov:
        missing.append("skipped overlap: no --corpus given")
    reports = [dict(r) for r in preset.get("reports") or []]
    return PaperPlan(out=out, prompt_steps=steps, config=config, overlap=overlap, reports=reports,
                     datasets=present, loaders={n: loaders[n] for n in present}, missing=missing)
