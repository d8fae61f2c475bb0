"""`roz results` (formats, several runs, failures) and `roz query` (DuckDB SQL over runs)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from roz.cli.common import _print_table, app, err
from roz.errors import RozError


@app.command("results")
def results_cmd(run_dirs: List[str] = typer.Argument(..., help="One or more run directories, paths or URLs (merged)."),
                fmt: str = typer.Option("table", "--format", "-f", help="table (on screen, never cut), csv, json "
                                        "(the metrics table), wide (CSV: models x datasets, like the testbed's table), "
                                        "testbed (CSV in the ImageNet testbed's columns)."),
                output: Optional[Path] = typer.Option(None, "--output", help="Write to this file instead of stdout "
                                                      "(not for --format table)."),
                include_subsets: bool = typer.Option(False, help="testbed: also export units run on part of a "
                                                     "dataset (--limit, shards)."),
                csv: Optional[Path] = typer.Option(None, help="Also write the metrics table as CSV.")):
    """Print the results of one or more runs (datasets in the paper's order; several runs are merged)."""
    from roz import api
    from roz.engine.export import render

    df = api.results_of(run_dirs, fmt, include_subsets=include_subsets)
    if csv:
        api.results_of(run_dirs).to_csv(csv, index=False)
    if fmt == "table":
        if output:
            raise RozError("--output needs a file format", hint="use --format csv, json, wide or testbed")
        _print_table(df.drop(columns=["unit_id"]) if len(df) else df, title=", ".join(map(str, run_dirs)))
    else:
        _emit(render(df, "json" if fmt == "json" else "csv"), output)
    for run_dir in run_dirs:
        _print_failures(run_dir)


def _print_failures(run_dir) -> None:
    """The run's units that failed and are not finished since (tracebacks in RUN_DIR/failed/)."""
    from roz.engine.store import ResultStore

    failures = ResultStore(run_dir, create=False).failures()
    if failures:
        err.print(f"{len(failures)} failed unit(s) in {run_dir} (tracebacks in {run_dir}/failed/):", markup=False)
        for f in failures:
            err.print(f"  FAILED {f.get('unit_id')}: {f.get('error')}: {f.get('message')} "
                      f"(attempts: {f.get('attempts', 1)})", markup=False)


def _emit(text: str, output: Optional[Path]) -> None:
    if output:
        output.write_text(text)
    else:
        sys.stdout.write(text)


@app.command("query")
def query_cmd(args: List[str] = typer.Argument(..., metavar="RUN... SQL", help="One or more run directories, "
                                               "then an SQL query over the views samples, metrics and wide."),
              fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json."),
              output: Optional[Path] = typer.Option(None, "--output", help="Write csv/json to this file.")):
    """Query runs with DuckDB SQL (views: samples = every per-sample row, metrics, wide; docs/results.md)."""
    from roz import api
    from roz.engine.export import render

    if len(args) < 2:
        raise RozError("roz query needs a run directory and an SQL query",
                       hint='e.g. roz query runs/demo "SELECT model, avg(correct::int) FROM samples GROUP BY model"')
    if fmt not in ("table", "csv", "json"):
        raise RozError(f"unknown query format {fmt!r}", hint="use table, csv or json")
    df = api.query([Path(a) for a in args[:-1]], args[-1])
    if fmt == "table":
        _print_table(df)
        return
    _emit(render(df, fmt), output)
