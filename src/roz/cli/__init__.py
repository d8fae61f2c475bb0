"""The ``roz`` command line. Every command is a thin shell over a function in ``roz.api`` (or the
module named in its help), so anything the CLI does is scriptable from Python.

Run settings (``--batch-size``, ``--workers``, ``--device``, ``--amp``, ``--part-size``,
``--executor``) default to None = "not given": a flag overrides the config's value, which overrides
the default (``roz.engine.options.RunOptions``). Errors print as one line + hint, never a traceback:
exit 2 for a ``RozError`` (bad input the user can fix: options, config, specs, data, run directory;
validation errors come before anything runs), 1 for any other failure (a bug, a library or OS
error, a refused pickle).
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.text import Text

from roz import __version__
from roz.datasets.policy import BadImagePolicy
from roz.engine.options import Executor
from roz.engine.units import Head
from roz.errors import RozError
from roz.metrics.effective import Protocol

from roz.cli.common import (  # noqa: F401  (re-exported: roz.cli.app is the Typer app)
    _PLAIN, app, datasets_app, world_app, models_app, console, err, BATCH, WORKERS, DEVICE, AMP, PART, EXECUTOR, _log, _settings, _options, _visible, _cell, _print_table,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"roz {__version__}", markup=False)
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")):
    """ROZ - robustness of zero-shot image classifiers."""


@app.command("eval")
def eval_cmd(
    model: str = typer.Option(..., "--model", "-m", help="Model spec, e.g. timm:resnet50, openclip:ViT-B-32@openai, "
                              "hf:/path/to/clip, torchvision:resnet152@/w.pth (see `roz models`)."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Registered dataset name (see `roz datasets`)."),
    root: Path = typer.Option(..., "--root", "-r", "--dataset-root", help="Dataset root directory (for a preset a "
                              "template: /data/{name}, or /data/{wds} for CLIP_benchmark copies)."),
    out: str = typer.Option("runs/eval", "--out", "-o", help="Run directory, a path or a URL (results are added to it)."),
    name: Optional[str] = typer.Option(None, help="Display name of the model."),
    label: Optional[str] = typer.Option(None, help="Display name of the dataset (tells two custom datasets apart)."),
    classes: Optional[str] = typer.Option(None, help="Class set of a zero-shot head (name or JSON file)."),
    templates: Optional[str] = typer.Option(None, help="Prompt templates: openai-80 (default), simple, photo, or a file."),
    shift: Optional[str] = typer.Option(None, help="Shift: corruption:fog:3, corruption:all, typographic, "
                                        "perturbation:rotate, perturbation:all (ImageNet-P), word-cards (reading "
                                        "probe), ..."),
    head: Optional[Head] = typer.Option(None, help="Zero-shot head on class-restricted datasets: full (mask) or "
                                        "subset [default: full]."),
    seed: Optional[int] = typer.Option(None, help="Seed of every random choice (shifts, attacks) [default: 0]."),
    limit: Optional[int] = typer.Option(None, help="Evaluate N samples: a seeded, class-stratified random draw (the draw is recorded)."),
    on_bad_image: Optional[BadImagePolicy] = typer.Option(None, help="fail or skip (skipped files are listed in the "
                                                          "result) [default: fail]."),
    full_logits: Optional[bool] = typer.Option(None, "--full-logits/--top5-logits",
                                               help="Store every logit per sample [default: top-5]."),
    batch_size: Optional[int] = BATCH, workers: Optional[int] = WORKERS, device: Optional[str] = DEVICE,
    amp: Optional[bool] = AMP, part_size: Optional[int] = PART,
    force: bool = typer.Option(False, help="Recompute even if the unit is already in the store."),
    option: Optional[List[str]] = typer.Option(None, "--option", help="Dataset loader option KEY=VALUE, e.g. "
                                               "class_names=names.json (for a preset: DATASET.KEY=VALUE); repeatable."),
):
    """Evaluate one model on one dataset (one work unit, or a grid with --shift corruption:all).

    With a preset (-d natural) ROOT is a template: -r '/data/{name}' or CLIP_benchmark copies -r '/data/{wds}'."""
    from roz import api

    recs = api.evaluate(model, dataset, root, out=out, name=name, label=label, classes=classes, templates=templates,
                        dataset_options=_kv(option, "option") or None,
                        shift=shift, head=head, seed=seed, limit=limit, on_bad_image=on_bad_image,
                        full_logits=full_logits, force=force, options=_options(), log=_log,
                        settings=_settings(batch_size=batch_size, workers=workers, device=device, amp=amp,
                                           part_size=part_size))
    _print_table(api.results(out).query("unit_id in @ids", local_dict={"ids": [r.unit_id for r in recs]})
                 .drop(columns=["unit_id"]), title=str(out))


@app.command("run")
def run_cmd(
    config: Path = typer.Argument(..., help="Run config (YAML): models x datasets x shifts x attacks."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Run directory, a path or a URL (s3://, gs://, ...) "
                                      "(default: the config's 'out')."),
    executor: Optional[Executor] = EXECUTOR,
    batch_size: Optional[int] = BATCH, workers: Optional[int] = WORKERS, device: Optional[str] = DEVICE,
    amp: Optional[bool] = AMP, part_size: Optional[int] = PART,
    force: bool = typer.Option(False, help="Recompute finished units (also: accept changed dataset contents)."),
    force_unit: Optional[List[str]] = typer.Option(None, "--force-unit",
                                                   help="Recompute only this unit (its id; repeatable)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join (ray executor) "
                                          "[default: RAY_ADDRESS, else a local Ray instance]."),
    shard_size: Optional[int] = typer.Option(None, "--shard-size", help="Split eval/attack units of more samples "
                                             "into shards that run in parallel [default: no sharding]."),
    retries: Optional[int] = typer.Option(None, "--retries", help="Extra attempts of a failing unit or of a "
                                          "unit whose Ray worker died [default: 2]."),
):
    """Run a whole matrix from a config; finished units are skipped, interrupted ones resume.

    A flag overrides the config's value of the same setting; the config overrides the default."""
    from roz import api
    from roz.engine.plan import load_config

    cfg = load_config(config)
    target = out or cfg.get("out")
    api.run(cfg, out=out, force=force, force_unit=set(force_unit or ()), options=_options(), log=_log,
            settings=_settings(batch_size=batch_size, workers=workers, device=device, amp=amp, part_size=part_size,
                               executor=executor, address=address, shard_size=shard_size, retries=retries))
    _print_table(api.results(target).drop(columns=["unit_id"]), title=str(target))


@models_app.callback()
def models_cmd(ctx: typer.Context):
    """Model sources and spec syntax, plus the models shipped with ROZ-Mini (`roz models list` for more)."""
    if ctx.invoked_subcommand:
        return
    from roz.models import adapters

    print(adapters.__doc__)  # plain text: a spec grammar is never re-wrapped or read as markup
    from roz.world.prompts import CHECKPOINTS as ck, PROMPTS_MANIFEST, prompt_files, shipped_prompted

    if ck.is_dir():
        print("ROZ-Mini shipped models (openclip:/timm:/torchvision: via local:PATH):")

        skip = {"MANIFEST.json", PROMPTS_MANIFEST} | prompt_files(ck)
        for side in sorted(ck.glob("*.json")):
            if side.name not in skip:
                print(f"  {side.stem:<24} local:{side.with_suffix('.pt')}")
        for entry in shipped_prompted(ck):  # CLIP-Auto: the tiny CLIP with shipped prompts (docs/prompts.md)
            print(f"  {entry['name']:<24} {entry['spec']}")


@datasets_app.callback()
def datasets_list(ctx: typer.Context):
    """List registered datasets with their expected layout."""
    if ctx.invoked_subcommand:
        return
    from roz.datasets.registry import list_datasets

    infos = list_datasets()
    name_w = max(len(d.name) for d in infos)
    metric_w = max(len(",".join(d.metrics)) for d in infos)
    print(f"{'name':<{name_w}}  {'metrics':<{metric_w}}  description")
    for d in infos:  # names and metrics never wrap; the description runs on (a pipe or a narrow terminal)
        print(f"{d.name:<{name_w}}  {','.join(d.metrics):<{metric_w}}  {d.description}")
    print("expected layouts: `roz datasets layout NAME`; integrity: `roz datasets check NAME ROOT`")


@datasets_app.command("layout")
def datasets_layout(name: str = typer.Argument(...)):
    """Show the directory layout a dataset loader expects, and where to download it."""
    from roz.datasets.registry import dataset_info

    info = dataset_info(name)
    console.print(Text.assemble((info.name, "bold"), f": {info.description}\n{info.layout}"))
    if info.source:
        console.print(f"download: {info.source}", markup=False)


def _kv(pairs: Optional[List[str]], what: str) -> dict:
    from roz.errors import ConfigError

    out = {}
    for kv in pairs or []:
        k, eq, v = kv.partition("=")
        if not eq:
            raise ConfigError(f"{what} {kv!r} is not KEY=VALUE")
        out[k] = v
    return out


@datasets_app.command("check")
def datasets_check(name: str = typer.Argument(..., help="Registered dataset name."),
                   root: Path = typer.Argument(..., help="Dataset root."),
                   option: Optional[List[str]] = typer.Option(None, "--option", help="Loader option KEY=VALUE "
                                                               "(e.g. objectnet_root=/data/objectnet); repeatable."),
                   expect: Optional[Path] = typer.Option(None, help="JSON file of expected counts (overrides the published ones)."),
                   as_json: bool = typer.Option(False, "--json", help="Print the check as JSON.")):
    """Compare a local copy's per-class counts with the published totals; exit 1 on a partial copy."""
    from roz.datasets.checks import check_dataset

    expected = json.loads(expect.read_text()) if expect else None
    report = check_dataset(name, root, expected=expected, **_kv(option, "option"))
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
    else:
        console.print(report.render(), markup=False)
    if not report.ok:
        raise typer.Exit(1)


def _check_baseline(baseline: str) -> None:
    from roz.errors import ConfigError
    from roz.metrics.testbed import SHIPPED_NAME

    if baseline in ("run", SHIPPED_NAME) or baseline.startswith(("http://", "https://")):
        return
    p = Path(baseline).expanduser()
    if p.is_dir():
        raise ConfigError(f"--baseline {baseline} is a folder; expected 'run' (this run's standard models) or a "
                          "testbed-format CSV file or URL",
                          hint="to compare with another run's models, pass --baseline run on a run directory that "
                               "holds them, or a CSV exported with `roz results RUN --csv FILE`")
    if not p.is_file():
        raise ConfigError(f"--baseline {baseline}: no such file; expected 'run', 'testbed' (the shipped ImageNet "
                          "testbed table) or a testbed-format CSV file or URL")


@app.command("report")
def report_cmd(
    run_dir: str = typer.Argument(..., help="A run directory (a path or a URL)."),
    out: Optional[Path] = typer.Option(None, help="Output folder (default RUN_DIR/report; for a URL, in its local working copy)."),
    baseline: str = typer.Option("run", help="'run' (the run's standard models), 'testbed' (the shipped ImageNet "
                                 "testbed table) or a testbed-format CSV path/URL."),
    baseline_models: Optional[str] = typer.Option(None, help="Baseline selector: role:standard, testbed-standard, models:a,b."),
    protocol: Protocol = typer.Option(Protocol.STANDARD, help="standard or class-restricted (val on the shift's "
                                      "classes as the reference)."),
    shift: Optional[List[str]] = typer.Option(None, help="SHIFT=REFERENCE (dataset[:metric]); repeatable."),
    testbed_column: Optional[List[str]] = typer.Option(None, help="Testbed COLUMN=DATASET[:metric]; repeatable."),
    bootstrap: int = typer.Option(1000, min=0, help="Bootstrap replicates."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
    level: float = typer.Option(0.95, help="Confidence level."),
    fit: Optional[List[str]] = typer.Option(None, help="Baseline fit: default, linear or piecewise-testbed, for all "
                                            "shifts or as SHIFT=KIND; repeatable (default: piecewise for ImageNet-A)."),
    pair: Optional[List[str]] = typer.Option(None, help="Relative robustness pair MODEL=BASE; repeatable."),
    ce_normalizer: Optional[str] = typer.Option(None, help="'alexnet' (packaged published errors) or a JSON of per-corruption "
                                                 "normaliser errors; default: unnormalised mean corruption error."),
    ce_baseline: Optional[str] = typer.Option(None, help="Also report each model's mean CE relative to this model."),
    svg: bool = typer.Option(True, help="Also write SVG figures."),
    title: Optional[str] = typer.Option(None),
    label_points: str = typer.Option("run", help="Name the points of the effective-robustness figures: run (the "
                                     "run's models), all (every point, the grid too) or none."),
):
    """Render a run into a self-contained HTML report (+ CSV, Parquet, LaTeX); no model is re-run."""
    from roz.report import build_report
    from roz.world import register as register_world

    _check_baseline(baseline)
    register_world()  # ROZ-Mini's shift set: a ROZ-Mini run gets its default shifts
    index = build_report(run_dir, out=out, baseline=baseline, baseline_models=baseline_models, protocol=str(protocol),
                         shifts=_kv(shift, "shift") or None, testbed_columns=_kv(testbed_column, "column") or None,
                         n_boot=bootstrap, seed=seed, level=level, fit=fit or "default",
                         pairs=list(_kv(pair, "pair").items()) or None,
                         ce_normalizer=ce_normalizer, ce_baseline=ce_baseline,
                         formats=("png", "svg") if svg else ("png",), title=title, label_points=label_points)
    summary = index.parent / "summary.txt"
    if summary.is_file():
        print(summary.read_text())  # a wide plain-text table: printed as is, never re-wrapped or cut
    console.print(Text.assemble("report: ", (str(index), "bold")))


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Run directory of the demo."),
    quick: bool = typer.Option(False, help="Smoke run (subsampled; under a minute)."),
    full: bool = typer.Option(False, help="The complete world: every image, every attack at full budget."),
    force: bool = typer.Option(False, help="Recompute finished units."),
):
    """Run the whole benchmark on ROZ-Mini (the embedded world) and write runs/demo/report.html."""
    from roz.world.demo import run_demo

    res = run_demo(out, quick=quick, full=full, force=force, log=_log)
    summary = Path(res["report"]).parent / "report" / "summary.txt"
    if summary.is_file():
        print(summary.read_text())  # a wide plain-text table: no re-wrapping
    console.print(Text.assemble(("report: ", "bold green"), f"{res['report']}   ({res['seconds']:.0f} s)"))


@world_app.command("build")
def world_build(quick: bool = typer.Option(False, help="A small world for tests."),
                seed: int = typer.Option(0), force: bool = typer.Option(False, help="Rebuild even if complete."),
                root: Optional[Path] = typer.Option(None, help="Where to build (default $ROZ_HOME/world/...).")):
    """Fetch the artwork (npm registry, cached with sha256) and build the ROZ-Mini world."""
    from roz.world.build import build_world

    console.print(str(build_world(root=root, quick=quick, seed=seed, force=force, verbose=True)), markup=False)


@world_app.command("train")
def world_train(out: Path = typer.Option(Path("roz-mini-checkpoints"), help="Where to write the checkpoints."),
                seed: int = typer.Option(0), quick: bool = typer.Option(False, help="Tiny models, seconds (tests).")):
    """Reproduce the shipped ROZ-Mini checkpoints from scratch (tiny CLIP + baselines)."""
    from roz.world.build import build_world
    from roz.world.train import train_all

    world = build_world(quick=quick, seed=seed)
    res = train_all(world, out, seed=seed, quick=quick)
    console.print_json(json.dumps(res, default=str))


@models_app.command("list")
def models_list(library: str = typer.Argument(..., help="openclip, timm or hf (hf: the local Hugging Face cache)."),
                pretrained: bool = typer.Option(False, "--pretrained", help="Only models with published weights "
                                                "(openclip: every ARCH@TAG; timm: pretrained=True)."),
                pattern: Optional[str] = typer.Option(None, "--filter", help="Glob on the name, e.g. '*vit*b*'.")):
    """Print one model spec per line: the architectures and weight tags the installed library knows."""
    from roz.models.catalog import list_specs

    specs = list_specs(library, pretrained=pretrained, pattern=pattern)
    for spec in specs:
        print(spec)
    if not specs and library == "hf":
        print("(no models in the local Hugging Face cache; hf:/path/to/dir evaluates a local copy)", file=sys.stderr)


# commands in their own modules (imported here so they register on `app`)
from roz.cli import overlap, paper, prompts, results  # noqa: E402,F401


def _error(what: str, hint: str | None, code: int) -> None:
    err.print(Text.assemble(("error: ", "bold red"), str(what)))
    if hint:
        err.print(Text.assemble(("hint: ", "yellow"), str(hint)))
    sys.exit(code)


def _is_validation_error(e: Exception) -> bool:
    pydantic = sys.modules.get("pydantic")  # not imported just to print an error
    return pydantic is not None and isinstance(e, pydantic.ValidationError)


def main() -> None:
    try:
        app()
    except RozError as e:
        _error(e.what, e.hint, 2)  # bad input the user can fix: options, config, specs, data, run dir
    except pickle.UnpicklingError as e:
        _error(f"refused to read a pickled file: {e}", "ROZ reads weights with torch.load(weights_only=True) and "
               "dataset pickles with a restricted unpickler; convert the file to a plain state_dict / arrays", 1)
    except KeyboardInterrupt:
        err.print(Text("interrupted - finished work is saved; re-run the same command to resume", style="yellow"))
        sys.exit(130)
    except Exception as e:  # a bug in ROZ or a library: one line, the traceback on request
        if _is_validation_error(e):
            from roz.engine.validate import problems_of

            _error("invalid input: " + "; ".join(problems_of(e)), "see the command's --help", 2)
        if os.environ.get("ROZ_DEBUG"):
            raise
        _error(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
               "this is likely a bug in ROZ; re-run with ROZ_DEBUG=1 for the traceback and report it", 1)

