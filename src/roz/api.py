"""The Python API: every CLI command is one function here.

    import roz.api as roz
    rec = roz.evaluate("timm:resnet50", "imagenet-val", "/data/imagenet", out="runs/r50")
    recs = roz.run("run.yaml", settings={"device": "cuda:1"})
    df = roz.results("runs/r50")

Both ``evaluate`` and ``run`` take the same path: a config dict -> one validation of everything
(``ConfigError`` listing every problem, before anything runs) -> units -> the engine. Execution
settings are a ``RunOptions`` (``options``) and/or a ``settings`` dict of the ones given
explicitly (the CLI's flags); precedence: ``settings`` > the config's values > ``options`` > defaults.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from roz.engine.fingerprint import check_same_contents
from roz.engine.options import SETTING_NAMES, RunOptions, resolve_options
from roz.engine.plan import load_config, plan_units
from roz.engine.record import UnitRecord
from roz.engine.runner import run_units
from roz.engine.store import ResultStore
from roz.engine.validate import validate_config
from roz.errors import ConfigError
from roz.world import register as register_world


def evaluate(model: str, dataset: str, root: str | Path, *, out: str | Path = "runs/eval", name: str | None = None,
             classes: str | None = None, templates: str | None = None, role: str | None = None,
             label: str | None = None, shift: str | None = None, head: str | None = None, seed: int | None = None,
             limit: int | None = None, on_bad_image: str | None = None, full_logits: bool | None = None,
             dataset_options: dict | None = None, force: bool = False, options: RunOptions | None = None,
             settings: dict | None = None, log=None) -> list[UnitRecord]:
    """Evaluate one model on one dataset (optionally under a shift); one record per unit.

    Per-unit settings left at None take the defaults of ``roz.engine.units.Unit``; ``label`` is the
    dataset's display name (tells two custom datasets apart in one run directory)."""
    register_world()  # ROZ-Mini's class set (its shipped models name it)
    entry = {k: v for k, v in dict(spec=model, name=name, classes=classes, templates=templates, role=role).items()
             if v is not None}
    data = {"name": dataset, "root": str(Path(root).expanduser().resolve()), "options": dataset_options or {},
            **({"label": label} if label is not None else {})}
    per_unit = dict(heads=[head] if head is not None else None, seed=seed, limit=limit, on_bad_image=on_bad_image,
                    full_logits=full_logits)
    cfg = {"models": [entry], "datasets": [data], "shifts": [shift or "none"],
           **{k: v for k, v in per_unit.items() if v is not None}}
    return _execute(cfg, out, force=force, options=options, settings=settings, log=log)


def run(config: str | Path | dict, *, out: str | Path | None = None, force: bool = False,
        force_unit: set[str] | None = None,
        options: RunOptions | None = None, settings: dict | None = None, log=None) -> list[UnitRecord]:
    """Run every unit of a config (YAML path or dict); finished units are skipped."""
    register_world()  # ROZ-Mini's class set (its shipped models name it)
    cfg = load_config(config) if not isinstance(config, dict) else dict(config)
    out = out or cfg.get("out")
    if not out:
        raise ConfigError("no output directory: set 'out' in the config or pass --out")
    return _execute(cfg, out, force=force, options=options, settings=settings, log=log, force_unit=force_unit)


def _execute(cfg: dict, out, *, force: bool, options: RunOptions | None, settings: dict | None, log,
             force_unit: set[str] | None = None) -> list[UnitRecord]:
    base = {k: v for k, v in asdict(options).items() if k in SETTING_NAMES} if options is not None else {}
    given = {k: v for k, v in (settings or {}).items() if v is not None}
    unknown = sorted(set(given) - set(SETTING_NAMES))
    if unknown:
        raise ConfigError(f"unknown run settings {unknown}", hint=f"settings: {', '.join(SETTING_NAMES)}")
    # one validation of config + settings: flags replace the config's values before it is checked
    conf = validate_config({**{k: v for k, v in base.items() if k not in cfg}, **cfg, **given})
    opts = resolve_options(conf.model_dump(include=set(SETTING_NAMES)),
                           progress=options.progress if options is not None else False)
    conf = conf.model_copy(update={"amp": opts.amp})
    units = plan_units(conf)
    if _has_run(out):  # refuse to mix results on other contents of a dataset
        check_same_contents(units, ResultStore(out, create=False).records(skip_broken=True), force)
    return run_units(units, out, opts, force=force, executor=str(opts.executor), config=cfg, log=log,
                     force_unit=force_unit,
                     worker_setup=(register_world,))


def _has_run(out) -> bool:
    """Is ``out`` (a path, or a URL: :mod:`roz.engine.remote`) an existing run directory?"""
    from roz.engine.remote import Remote, is_url

    if is_url(out):
        return Remote(str(out)).read("run.json") is not None
    return (Path(out) / "run.json").is_file()


def results(run_dir: str | Path):
    """The metrics table of a run directory (pandas), in the paper's dataset order."""
    return ResultStore(run_dir, create=False).metrics_table(paper_order=True)