"""The ``roz`` command line. Every command is a thin shell over a function in ``roz.api`` (or the
module named in its help), so anything the CLI does is scriptable from Python."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from roz import __version__
from roz.errors import RozError

app = typer.Typer(
    name="roz",
    help="ROZ — robustness of zero-shot image classifiers (CLIP and kin) vs standard ImageNet models.\n\n"
         "Natural shifts, synthetic shifts, adversarial and typographic attacks, effective/relative robustness, "
         "data-overlap analysis. Start with `roz demo` (the embedded ROZ-Mini world, offline).",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
datasets_app = typer.Typer(help="List registered datasets and check a local copy's integrity.", no_args_is_help=False,
                           invoke_without_command=True)
world_app = typer.Typer(help="Build and train ROZ-Mini, the embedded miniature world.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
app.add_typer(world_app, name="world")
console = Console()
err = Console(stderr=True, soft_wrap=True)


def _log(msg: str) -> None:
    err.print(f"[dim]{msg}[/dim]")


def _options(batch_size, workers, device, amp, progress=True, part_size=None):
    from roz.engine.runner import RunOptions
    from roz.engine.evaluate import DEFAULT_PART_SIZE

    return RunOptions(batch_size=batch_size, workers=workers, device=device, amp=amp,
                      progress=progress and sys.stderr.isatty(), part_size=part_size or DEFAULT_PART_SIZE)


def _print_table(df, title: str = "") -> None:
    if df is None or len(df) == 0:
        console.print("[yellow]no finished units[/yellow]")
        return
    df = df[[c for c in df.columns if not (df[c].astype(str).isin(["", "nan", "None"]).all())]]
    t = Table(title=title or None, show_lines=False)
    for c in df.columns:
        t.add_column(str(c), justify="right" if df[c].dtype.kind in "fi" else "left", overflow="fold")
    for _, r in df.iterrows():
        t.add_row(*[("" if v != v else f"{v:.2f}") if isinstance(v, float) else str(v) for v in r.tolist()])
    console.print(t)


@app.callback()
def _main(version: bool = typer.Option(False, "--version", help="Print the version and exit.")):
    if version:
        console.print(f"roz {__version__}")
        raise typer.Exit()


@app.command("eval")
def eval_cmd(
    model: str = typer.Option(..., "--model", "-m", help="Model spec, e.g. timm:resnet50, openclip:ViT-B-32@openai, "
                              "hf:/path/to/clip, torchvision:resnet152@/w.pth (see `roz models`)."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Registered dataset name (see `roz datasets`)."),
    root: Path = typer.Option(..., "--root", "-r", help="Dataset root directory."),
    out: Path = typer.Option(Path("runs/eval"), "--out", "-o", help="Run directory (results are added to it)."),
    name: Optional[str] = typer.Option(None, help="Display name of the model."),
    classes: Optional[str] = typer.Option(None, help="Class set of a zero-shot head (name or JSON file)."),
    templates: Optional[str] = typer.Option(None, help="Prompt templates: openai-80 (default), simple, photo, or a file."),
    shift: Optional[str] = typer.Option(None, help="Shift: corruption:fog:3, corruption:all, typographic, perturbation:rotate, perturbation:all (ImageNet-P), ..."),
    head: str = typer.Option("full", help="Zero-shot head on class-restricted datasets: full (mask) or subset."),
    seed: int = typer.Option(0, help="Seed of every random choice (shifts, attacks)."),
    limit: Optional[int] = typer.Option(None, help="Evaluate N samples evenly spaced over the dataset (recorded)."),
    on_bad_image: str = typer.Option("fail", help="fail | skip (skipped files are listed in the result)."),
    full_logits: bool = typer.Option(False, help="Store every logit per sample (default: top-5)."),
    batch_size: int = typer.Option(64, "--batch-size", "-b"),
    workers: int = typer.Option(min(4, os.cpu_count() or 1), help="DataLoader workers."),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:1, ..."),
    amp: bool = typer.Option(False, help="Autocast inference (fp16 on GPU, bf16 on CPU); recorded."),
    force: bool = typer.Option(False, help="Recompute even if the unit is already in the store."),
):
    """Evaluate one model on one dataset (one work unit, or a grid with --shift corruption:all)."""
    from roz import api

    recs = api.evaluate(model, dataset, root, out=out, name=name, classes=classes, templates=templates, shift=shift,
                        head=head, seed=seed, limit=limit, on_bad_image=on_bad_image, full_logits=full_logits,
                        force=force, options=_options(batch_size, workers, device, amp), log=_log)
    _print_table(api.results(out).query("unit_id in @ids", local_dict={"ids": [r["unit_id"] for r in recs]})
                 .drop(columns=["unit_id"]), title=str(out))


@app.command("run")
def run_cmd(
    config: Path = typer.Argument(..., help="Run config (YAML): models × datasets × shifts × attacks."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (default: the config's 'out')."),
    executor: Optional[str] = typer.Option(None, help="local (default) or ray."),
    batch_size: int = typer.Option(64, "--batch-size", "-b"),
    workers: int = typer.Option(min(4, os.cpu_count() or 1)),
    device: str = typer.Option("cpu"),
    amp: bool = typer.Option(False),
    part_size: Optional[int] = typer.Option(None, help="Checkpoint progress every N samples."),
    force: bool = typer.Option(False, help="Recompute finished units."),
):
    """Run a whole matrix from a config; finished units are skipped, interrupted ones resume."""
    from roz import api
    from roz.engine.plan import load_config

    cfg = load_config(config)
    api.run(cfg, out=out, force=force, executor=executor,
            options=_options(batch_size, workers, device, amp, part_size=part_size), log=_log)
    target = out or cfg.get("out")
    _print_table(api.results(target).drop(columns=["unit_id"]), title=str(target))


@app.command("results")
def results_cmd(run_dir: Path = typer.Argument(..., help="A run directory."),
                csv: Optional[Path] = typer.Option(None, help="Also write the table as CSV.")):
    """Print a run's metrics table (datasets in the paper's order)."""
    from roz import api

    df = api.results(run_dir)
    if csv:
        df.to_csv(csv, index=False)
    _print_table(df.drop(columns=["unit_id"]) if len(df) else df, title=str(run_dir))


@app.command("models")
def models_cmd():
    """Model sources and spec syntax, plus the models shipped with ROZ-Mini."""
    from roz.models import adapters

    console.print(adapters.__doc__)
    ck = Path(__file__).parent / "world" / "checkpoints"
    if ck.is_dir():
        t = Table(title="ROZ-Mini shipped models (openclip:/timm:/torchvision: via local:PATH)")
        t.add_column("name")
        t.add_column("spec")
        for side in sorted(ck.glob("*.json")):
            if side.name != "MANIFEST.json":
                t.add_row(side.stem, f"local:{side.with_suffix('.pt')}")
        console.print(t)


@datasets_app.callback()
def datasets_list(ctx: typer.Context):
    """List registered datasets with their expected layout."""
    if ctx.invoked_subcommand:
        return
    from roz.datasets.registry import list_datasets

    t = Table(title="registered datasets (paper order)")
    for c in ("name", "metrics", "description"):
        t.add_column(c, overflow="fold")
    for d in list_datasets():
        t.add_row(d.name, ",".join(d.metrics), d.description)
    console.print(t)
    console.print("[dim]expected layouts: `roz datasets layout NAME`; integrity: `roz datasets check NAME ROOT`[/dim]")


@datasets_app.command("layout")
def datasets_layout(name: str = typer.Argument(...)):
    """Show the directory layout a dataset loader expects, and where to download it."""
    from roz.datasets.registry import dataset_info

    info = dataset_info(name)
    console.print(f"[bold]{info.name}[/bold]: {info.description}\n{info.layout}")
    if info.source:
        console.print(f"download: {info.source}")


def _kv(pairs: Optional[List[str]], what: str) -> dict:
    out = {}
    for kv in pairs or []:
        k, eq, v = kv.partition("=")
        if not eq:
            raise RozError(f"{what} {kv!r} is not KEY=VALUE")
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
    import json

    from roz.datasets.checks import check_dataset

    expected = json.loads(expect.read_text()) if expect else None
    report = check_dataset(name, root, expected=expected, **_kv(option, "option"))
    console.print_json(json.dumps(report.to_dict())) if as_json else console.print(report.render())
    if not report.ok:
        raise typer.Exit(1)


@app.command("report")
def report_cmd(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    out: Optional[Path] = typer.Option(None, help="Output folder (default RUN_DIR/report)."),
    baseline: str = typer.Option("run", help="'run' (the run's standard models) or a testbed-format CSV path/URL."),
    baseline_models: Optional[str] = typer.Option(None, help="Baseline selector: role:standard, testbed-standard, models:a,b."),
    protocol: str = typer.Option("standard", help="standard | class-restricted (val-on-X-classes as reference)."),
    shift: Optional[List[str]] = typer.Option(None, help="SHIFT=REFERENCE (dataset[:metric]); repeatable."),
    testbed_column: Optional[List[str]] = typer.Option(None, help="Testbed COLUMN=DATASET[:metric]; repeatable."),
    bootstrap: int = typer.Option(1000, help="Bootstrap replicates."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
    level: float = typer.Option(0.95, help="Confidence level."),
    pair: Optional[List[str]] = typer.Option(None, help="Relative robustness pair MODEL=BASE; repeatable."),
    ce_normalizer: Optional[str] = typer.Option(None, help="'alexnet' (packaged published errors) or a JSON of per-corruption "
                                                 "normaliser errors; default: unnormalised mean corruption error."),
    ce_baseline: Optional[str] = typer.Option(None, help="Also report each model's mean CE relative to this model."),
    svg: bool = typer.Option(True, help="Also write SVG figures."),
    title: Optional[str] = typer.Option(None),
):
    """Render a run into a self-contained HTML report (+ CSV, Parquet, LaTeX); no model is re-run."""
    from roz.report import build_report
    from roz.world import register as register_world

    register_world()  # ROZ-Mini's shift set: a ROZ-Mini run gets its default shifts
    index = build_report(run_dir, out=out, baseline=baseline, baseline_models=baseline_models, protocol=protocol,
                         shifts=_kv(shift, "shift") or None, testbed_columns=_kv(testbed_column, "column") or None,
                         n_boot=bootstrap, seed=seed, level=level,
                         pairs=list(_kv(pair, "pair").items()) or None,
                         ce_normalizer=ce_normalizer, ce_baseline=ce_baseline,
                         formats=("png", "svg") if svg else ("png",), title=title)
    summary = index.parent / "summary.txt"
    if summary.is_file():
        print(summary.read_text())
    console.print(f"report: [bold]{index}[/bold]")


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
    console.print(f"[bold green]report:[/bold green] {res['report']}   ({res['seconds']:.0f} s)")


@world_app.command("build")
def world_build(quick: bool = typer.Option(False, help="A small world for tests."),
                seed: int = typer.Option(0), force: bool = typer.Option(False, help="Rebuild even if complete."),
                root: Optional[Path] = typer.Option(None, help="Where to build (default $ROZ_HOME/world/...).")):
    """Fetch the artwork (npm registry, cached with sha256) and build the ROZ-Mini world."""
    from roz.world.build import build_world

    console.print(str(build_world(root=root, quick=quick, seed=seed, force=force, verbose=True)))


@world_app.command("train")
def world_train(out: Path = typer.Option(Path("roz-mini-checkpoints"), help="Where to write the checkpoints."),
                seed: int = typer.Option(0), quick: bool = typer.Option(False, help="Tiny models, seconds (tests).")):
    """Reproduce the shipped ROZ-Mini checkpoints from scratch (tiny CLIP + baselines)."""
    from roz.world.build import build_world
    from roz.world.train import train_all

    world = build_world(quick=quick, seed=seed)
    res = train_all(world, out, seed=seed, quick=quick)
    console.print_json(json.dumps(res, default=str))


def main() -> None:
    try:
        app()
    except RozError as e:
        err.print(f"[bold red]error:[/bold red] {e.what}")
        if e.hint:
            err.print(f"[yellow]hint:[/yellow] {e.hint}")
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted — finished work is saved; re-run the same command to resume[/yellow]")
        sys.exit(130)


if __name__ == "__main__":
    main()
