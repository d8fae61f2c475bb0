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

from roz.datasets.presets import PRESETS, expand_presets
from roz.engine.fingerprint import check_same_contents
from roz.models.base import wrap_module  # noqa: F401  (re-exported: roz.api.wrap_module)
from roz.engine.options import SETTING_NAMES, RunOptions, resolve_options
from roz.engine.plan import load_config, plan_units
from roz.engine.record import UnitRecord
from roz.engine.runner import run_units
from roz.engine.store import ResultStore
from roz.engine.validate import validate_config
from roz.errors import ConfigError
from roz.world import register as register_world


def evaluate(model, dataset: str, root: str | Path, *, out: str | Path = "runs/eval", name: str | None = None,
             classes: str | None = None, templates: str | None = None, role: str | None = None,
             label: str | None = None, shift: str | None = None, head: str | None = None, seed: int | None = None,
             limit: int | None = None, on_bad_image: str | None = None, full_logits: bool | None = None,
             dataset_options: dict | None = None, force: bool = False, options: RunOptions | None = None,
             settings: dict | None = None, log=None) -> list[UnitRecord]:
    """Evaluate one model on one dataset (optionally under a shift); one record per unit.

    Per-unit settings left at None take the defaults of ``roz.engine.units.Unit``; ``label`` is the
    dataset's display name (tells two custom datasets apart in one run directory).
    ``model``: a spec string, or a model object (``wrap_module(net, ...)``, any ``RozModel``).
    ``dataset``: a dataset name, or a preset (``natural``) with ``root`` a template (``/data/{name}``)."""
    register_world()  # ROZ-Mini's class set (its shipped models name it)
    entry = {k: v for k, v in dict(spec=_model_spec(model), name=name or _object_name(model), classes=classes, templates=templates, role=role).items()
             if v is not None}
    data = {"name": dataset, "root": str(Path(root).expanduser().resolve()), "options": dataset_options or {},
            **({"label": label} if label is not None else {})}
    if dataset in PRESETS:  # a preset: ROOT is a template ({name}, {wds}); options are {dataset: {key: value}}
        data = {"preset": dataset, "root": data["root"], "options": _per_dataset(dataset_options),
                **({"label_suffix": label} if label is not None else {})}
    per_unit = dict(heads=[head] if head is not None else None, seed=seed, limit=limit, on_bad_image=on_bad_image,
                    full_logits=full_logits)
    cfg = {"models": [entry], "datasets": expand_presets([data]), "shifts": [shift or "none"],
           **{k: v for k, v in per_unit.items() if v is not None}}
    return _execute(cfg, out, force=force, options=options, settings=settings, log=log)


def run(config: str | Path | dict, *, out: str | Path | None = None, force: bool = False,
        force_unit: set[str] | None = None,
        options: RunOptions | None = None, settings: dict | None = None, log=None) -> list[UnitRecord]:
    """Run every unit of a config (YAML path or dict); finished units are skipped."""
    register_world()  # ROZ-Mini's class set (its shipped models name it)
    cfg = load_config(config) if not isinstance(config, dict) else dict(config)
    if isinstance(cfg.get("datasets"), list):
        cfg["datasets"] = expand_presets(cfg["datasets"])
    if isinstance(cfg.get("models"), list):  # model objects -> their python: specs
        cfg["models"] = [_model_entry(m) for m in cfg["models"]]
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

def results_of(run_dirs, fmt: str = "table", include_subsets: bool = False):
    """The results of one or more run directories (merged; a conflicting duplicate is a
    ``StoreError``) as a pandas table in the shape ``fmt``: ``table`` / ``csv`` / ``json`` (the
    metrics table), ``wide`` (models x datasets) or ``testbed`` (the ImageNet testbed's CSV
    columns; whole-dataset units only unless ``include_subsets``). See :mod:`roz.engine.export`."""
    from roz.engine import export

    dirs = [run_dirs] if isinstance(run_dirs, (str, Path)) else list(run_dirs)
    if fmt not in export.FORMATS:
        raise ConfigError(f"unknown results format {fmt!r}", hint=f"use one of {', '.join(export.FORMATS)}")
    if fmt == "wide":
        return export.wide_table(dirs)
    if fmt == "testbed":
        return export.testbed_table(dirs, include_subsets=include_subsets)
    return export.merged_metrics(dirs)


def query(run_dirs, sql: str):
    """A DuckDB SQL query over run directories (views ``samples``, ``metrics``, ``wide``:
    :mod:`roz.engine.query`), as a pandas table."""
    from roz.engine.query import query as run_query

    return run_query([run_dirs] if isinstance(run_dirs, (str, Path)) else list(run_dirs), sql)


# -- data overlap (roz overlap ...) -----------------------------------------------------------------
def _test_sets(tests) -> dict:
    """``[LABEL=]FOLDER`` (an image folder, e.g. ImageNet-style; label: the folder's name) -> {label: test set}."""
    from roz.overlap.pipeline import ImageSet

    out = {}
    for spec in tests or []:
        label, _, root = str(spec).rpartition("=")
        label = label or Path(root).name
        if label in out:
            raise ConfigError(f"test set {label!r} given twice", hint="label them: --test LABEL=FOLDER")
        out[label] = ImageSet(Path(root).expanduser(), label)
    if not out:
        raise ConfigError("no test set given", hint="--test [LABEL=]FOLDER, repeatable")
    return out


def overlap_detect(run_dir: str | Path, tests, corpus: str | Path, *, detector: str = "embedding",
                   encoder: str = "openclip:RN50x16@openai", threshold: float | None = None, corpus_kind: str = "auto",
                   corpus_encoder: str | None = None, cache_dir: str | Path | None = None,
                   memory_budget_gib: float | None = None, index_kind: str = "auto", ground_truth: str | Path | None = None,
                   n_boot: int = 1000, er_boot: int = 200, seed: int = 0, log=print) -> dict:
    """Near-duplicates of each test set (``[LABEL=]FOLDER``) in ``corpus`` (image folder, .parquet/.csv
    path list, webdataset .tar shards, or LAION-layout embeddings); duplicates tables, clean manifests
    and ``overlap.json`` go into ``run_dir``, whose models are re-scored on the clean sets."""
    from roz.overlap.runs import detect_run

    register_world()
    budget = int(memory_budget_gib * 2 ** 30) if memory_budget_gib else None
    return detect_run(run_dir, _test_sets(tests), corpus, detector=detector, encoder=encoder, threshold=threshold,
                      corpus_kind=corpus_kind, corpus_encoder=corpus_encoder, cache_dir=cache_dir, memory_budget=budget,
                      index_kind=index_kind, ground_truth=ground_truth, n_boot=n_boot, er_boot=er_boot, seed=seed,
                      log=log)


def overlap_rescore(run_dir: str | Path, *, n_boot: int | None = None, er_boot: int | None = None,
                    seed: int | None = None) -> dict:
    """Re-score a run's stored per-sample rows on the stored clean sets (no model or detector re-run)."""
    from roz.overlap.runs import rescore_run

    return rescore_run(run_dir, n_boot=n_boot, er_boot=er_boot, seed=seed)


def search_prompts(model: str, method: str, dataset: str, root: str | Path, *, out: str | Path = "prompts.json",
                   shots: int = 16, seed: int = 0, classes: str | None = None, dataset_options: dict | None = None,
                   params: dict | None = None, device: str = "cpu", log=None) -> dict:
    """Search prompts (``autoprompt`` or ``coop``) for a CLIP on a few-shot set of ``dataset`` and write
    the artefact ``out``; use it as ``{"spec": model, "prompts": out}`` in a run config."""
    from roz.models.prompt_search import search_prompts as _search

    register_world()  # ROZ-Mini's class set (its shipped CLIP names it)
    return _search(model, method, dataset, root, out=out, shots=shots, seed=seed, classes=classes,
                   dataset_options=dataset_options, params=params, device=device, log=log)


def _per_dataset(options: dict | None) -> dict:
    """Preset options: ``{dataset: {key: value}}`` as given, or CLI-style ``{"dataset.key": value}``."""
    out: dict = {}
    for k, v in (options or {}).items():
        if isinstance(v, dict):
            out.setdefault(k, {}).update(v)
            continue
        name, dot, key = str(k).partition(".")
        if not dot:
            raise ConfigError(f"dataset option {k!r} of a preset names no dataset",
                              hint="write DATASET.KEY=VALUE, e.g. --option objectnet.mappings=/data/objectnet/mappings")
        out.setdefault(name, {})[key] = v
    return out


def _model_spec(model) -> str:
    """A spec string as given, or the ``python:`` spec of a model object (registered in this process)."""
    if isinstance(model, str):
        return model
    from roz.models.objects import register_model_object

    return register_model_object(model)


def _object_name(model) -> str | None:
    return None if isinstance(model, str) else getattr(model, "name", None)


def _model_entry(m):
    if isinstance(m, dict) and not isinstance(m.get("spec"), (str, type(None))):
        return {"name": _object_name(m["spec"]), **m, "spec": _model_spec(m["spec"])}
    return m if isinstance(m, (str, dict)) else {"spec": _model_spec(m), "name": _object_name(m)}
