"""`roz paper --check`: every dataset copy checked (`roz datasets check`) and every model's weights
looked up in the local caches (offline: nothing is downloaded); all problems listed at once."""

from __future__ import annotations

import os
from pathlib import Path

from roz.paper.preset import PaperPlan


def _weights_problem(spec: str) -> str | None:
    """None when ``spec``'s weights are on this machine; else what is missing and where it was looked for."""
    from roz.models.hub import hf_cached, url_cached

    source, _, rest = spec.partition(":")
    arch, at, weights = rest.partition("@")
    if source == "prompted":  # prompted:ARTEFACT@SPEC: the artefact is made by this command
        return _weights_problem(weights)
    for candidate in (weights, arch):
        if candidate and (os.sep in candidate or candidate.endswith((".pt", ".pth", ".bin", ".safetensors", ".json"))):
            if not Path(candidate).expanduser().exists():
                return f"{spec}: no file {candidate}"
    if source == "openclip" and at and os.sep not in weights:
        import open_clip

        cfg = open_clip.get_pretrained_cfg(arch, weights)
        if not cfg:
            return f"{spec}: open_clip has no pretrained tag {weights!r} for {arch}"
        hub = (cfg.get("hf_hub") or "").rstrip("/")
        if not ((hub and hf_cached(hub)) or (cfg.get("url") and url_cached(cfg["url"], Path.home() / ".cache" / "clip"))):
            return f"{spec}: weights not in the local cache (hf: {hub or '-'}; url: {cfg.get('url') or '-'})"
    if source == "torchvision" and at and os.sep not in weights:
        import torch
        import torchvision

        try:
            url = torchvision.models.get_model_weights(arch)[weights].url
        except (KeyError, ValueError) as e:
            return f"{spec}: torchvision has no weights {weights!r} for {arch} ({e})"
        path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
        if not path.is_file():
            return f"{spec}: weights not in the local cache ({path})"
    return None


def _config_problems(plan: PaperPlan) -> list[str]:
    """The run config as `roz run` validates it (CLIP-Auto models aside: their artefacts come later)."""
    from roz.engine.validate import validate_config
    from roz.errors import ConfigError

    models = [m for m in plan.config["models"] if "prompts" not in m]
    if not models or not plan.config["datasets"]:
        return []
    try:
        validate_config({**plan.config, "models": models})
    except ConfigError as e:
        return [f"run config: {line.strip().removeprefix('- ')}" for line in str(e).splitlines()[1:]]
    return []


def check_plan(plan: PaperPlan, dataset_check=None) -> list[str]:
    """Every problem of ``plan`` at once: missing data (as expanded), dataset copies that fail their
    check, models whose weights are not local. ``dataset_check(name, root, options)`` -> (ok, lines)."""
    problems = list(plan.missing)
    if dataset_check is None:
        from roz.datasets.checks import check_dataset

        def dataset_check(name, root, options):
            res = check_dataset(name, root, **options)
            return res.ok, res.lines
    for d in plan.config["datasets"]:
        ok, lines = dataset_check(d["name"], d["root"], dict(d.get("options") or {}))
        if not ok:
            problems.append(f"dataset {d.get('label') or d['name']} at {d['root']}: " + "; ".join(str(x) for x in lines[:3]))
    problems += _config_problems(plan)
    specs = {m["spec"] for m in plan.config["models"]} | {s["model"] for s in plan.prompt_steps}
    specs |= {a["surrogate"] for a in plan.config["attacks"] if a.get("surrogate")}
    if plan.overlap and plan.overlap["encoder"] != "tiny":
        specs.add(plan.overlap["encoder"])
    for spec in sorted(specs):
        bad = _weights_problem(spec)
        if bad:
            problems.append(f"model {bad}")
    return problems
