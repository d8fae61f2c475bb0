"""`roz paper`: the whole RoZ study from the shipped preset (docs/paper.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from roz.cli.common import EXECUTOR, _log, _settings, _visible, app, console
from roz.engine.options import Executor
from roz.errors import RozError


@app.command("paper")
def paper_cmd(
    data_root: Optional[str] = typer.Option(None, "--data-root", help="Folder of the datasets: fills {data_root} in "
                                            "the preset's roots (/data -> /data/imagenet-r, ...)."),
    corpus: Optional[str] = typer.Option(None, help="Pretraining corpus for the overlap analysis (as `roz overlap "
                                         "detect --corpus`); without it overlap is skipped (and listed)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory [default: the preset's, runs/paper]."),
    preset: Optional[Path] = typer.Option(None, help="A preset YAML [default: the shipped paper.yaml]."),
    override: Optional[List[Path]] = typer.Option(None, "--override", help="YAML merged over the preset; repeatable."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="KEY=YAML over the preset (dotted keys: "
                                             "datasets.imagenet-r.root=/x); repeatable."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and its cost; run nothing."),
    check: bool = typer.Option(False, "--check", help="Check every dataset copy and model's weights; list every "
                               "problem; run nothing (exit 1 on a problem)."),
    assume_present: bool = typer.Option(False, "--assume-present", help="With --dry-run: plan as if every dataset "
                                        "were present (the cost of the complete study)."),
    measure: bool = typer.Option(False, help="With --dry-run: measure each model's forward throughput here."),
    throughput: Optional[Path] = typer.Option(None, help="With --dry-run: JSON {model name: images/s}."),
    devices: str = typer.Option("1,8,64", help="With --dry-run: device counts of the wall-time estimate."),
    show: bool = typer.Option(False, help="Print the preset (after overrides) and exit."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:N [default: cuda if visible]."),
    executor: Optional[Executor] = EXECUTOR,
):
    """Reproduce the RoZ study: CLIP-Auto prompt searches, every model x dataset x shift x attack, overlap, reports."""
    from roz.paper import cost as costs
    from roz.paper.check import check_plan
    from roz.paper.execute import run_plan
    from roz.paper.preset import apply_overrides, expand, load_preset

    spec = apply_overrides(load_preset(preset), override or (), set_ or ())
    if show:
        import yaml

        print(yaml.safe_dump(spec, sort_keys=False))
        return
    exists = (lambda name, root: True) if assume_present else None
    plan = expand(spec, data_root=data_root, corpus=corpus, out=out, exists=exists)
    if dry_run:
        rates = json.loads(throughput.read_text()) if throughput else None
        if measure:
            rates = costs.measure_throughput({m["name"]: m["spec"] for m in plan.config["models"]}, device=device or "cpu")
        try:
            counts = tuple(int(n) for n in devices.split(","))
        except ValueError:
            raise RozError(f"--devices {devices!r}: expected comma-separated counts", hint="e.g. --devices 1,8,64") from None
        print(costs.format_plan(plan, costs.plan_cost(plan, costs.dataset_sizes(plan), rates), counts))
        return
    if check:
        problems = check_plan(plan)
        for p in problems:  # one line each, never re-wrapped (greppable)
            print(_visible(f"MISSING: {p}"))
        console.print(f"{len(problems)} problem(s)" if problems else "all datasets and models present", markup=False)
        if problems:
            raise typer.Exit(1)
        return
    res = run_plan(plan, settings=_settings(device=device, executor=executor), device=device or "cpu", log=_log)
    console.print(f"{res['units']} units; reports: {', '.join(res['reports'])}"
                  + (f"; {len(res['missing'])} missing piece(s) skipped (listed above)" if res["missing"] else ""),
                  markup=False)
