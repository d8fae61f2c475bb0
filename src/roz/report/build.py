"""``build_report``: render a run directory's results into a self-contained HTML report.

Reads only the result store (no model runs): unit records and, for relative-robustness
intervals, the per-sample parquet files. Writes under ``out`` (default ``RUN_DIR/report``)::

    index.html                     # the report (inline PNG figures, escaped text, no network)
    summary.txt                    # the headline table as plain text (what the CLI prints)
    report.json                    # protocol, fits, ER, relative robustness (machine-readable)
    figures/<name>.png|.svg        # every figure
    tables/<name>.csv|.parquet     # headline, effective_robustness, er_average, fits, relative,
                                   # metrics (all units), corruptions, perturbations, attacks,
                                   # typographic, overlap
    tables/headline.tex            # the headline table in LaTeX (booktabs)

The page is a list of sections (:data:`roz.report.sections.SECTIONS`, contract in
:mod:`roz.report.sections`) over one shared context (:mod:`roz.report.context`). Everything is
rendered into a staging folder beside ``out`` and moved in only when complete
(:mod:`roz.report.output`): a failed or killed report leaves the previous one intact.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from roz.metrics.effective import DEFAULT_LEVEL, DEFAULT_N_BOOT, DEFAULT_SEED
from roz.metrics.fits import fit_kinds
from roz.report import html
from roz.report import tables
from roz.report.context import ReportContext, ReportOptions
from roz.report.figures import check_labels
from roz.report.output import ReportFiles, staged
from roz.report.sections import SECTIONS


def build_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, baseline: Any = "run", *,
                 baseline_models=None, shifts=None, protocol: str = "standard", testbed_columns=None,
                 n_boot: int = DEFAULT_N_BOOT, seed: int | None = DEFAULT_SEED, level: float = DEFAULT_LEVEL,
                 pairs: Sequence[tuple[str, str]] | None = None, ce_normalizer=None,
                 ce_baseline: str | None = None, formats: Sequence[str] = ("png", "svg"),
                 title: str | None = None, fit: Any = "default", label_points: str = "run") -> Path:
    """Render ``run_dir`` into ``out`` (default ``run_dir/report``); returns the ``index.html`` path.

    ``baseline``: ``"run"`` (fit on the run's own baseline models) or the path/URL of a
    testbed-format table (``robustness_top1s.csv``), or an AccuracyTable. ``baseline_models``:
    the baseline selector (default role "standard"; see
    :func:`roz.metrics.effective.select_baseline`). ``shifts``: ``{shift: reference}`` mapping
    or list of Shift (default by dataset names: ImageNet or ROZ-Mini). ``protocol``:
    "standard" or "class-restricted". ``pairs``: (intervention, base) model pairs for relative
    robustness (default: each CLIP-Auto model vs its CLIP). ``ce_normalizer``: per-corruption
    normalising errors (mapping, JSON path, or ``"alexnet"`` for the packaged AlexNet ImageNet-C
    errors) for mCE. ``ce_baseline``: a model of the run; the corruption section then also gives
    each model's mean CE relative to it. ``RUN_DIR/overlap.json`` (train/test overlap analysis),
    when present, is rendered in the "Data overlap" section. ``fit``: the baseline fit per shift
    (see :mod:`roz.metrics.fits`; default: piecewise-testbed for ImageNet-A, else linear).
    ``label_points``: which points the effective-robustness figures name: ``"run"`` (the run's
    models, not the baseline; the default), ``"all"`` (every point, the grid too) or ``"none"``.
    """
    from roz.engine.store import ResultStore

    t0 = time.perf_counter()
    fit_kinds(fit)  # a bad fit choice fails here, before any work
    check_labels(label_points)
    options = ReportOptions(baseline=baseline, baseline_models=baseline_models, shifts=shifts, protocol=protocol,
                            testbed_columns=testbed_columns, n_boot=n_boot, seed=seed, level=level, pairs=pairs,
                            ce_normalizer=ce_normalizer, ce_baseline=ce_baseline, formats=tuple(formats),
                            title=title, fit=fit, label_points=label_points)
    ctx = ReportContext(ResultStore(run_dir, create=False), options)
    out = Path(out) if out is not None else ctx.root / "report"
    collected = [(section, section.collect(ctx)) for section in SECTIONS]  # a bad option fails here, early
    with staged(out) as stage:
        files = ReportFiles(stage, options.formats)
        for section, data in collected:
            if data is not None:
                section.write(data, ctx, files)
        files.text("summary.txt", _summary(ctx) + "\n")
        report_json = {"run_dir": str(ctx.root)}
        for section, data in collected:
            report_json.update(section.to_json(data, ctx))
        files.text("report.json", json.dumps(report_json, indent=2, sort_keys=True, default=_jsonable) + "\n")
        files.text("index.html", _page(ctx, collected, files, time.perf_counter() - t0))
    return out / "index.html"


def _summary(ctx: ReportContext) -> str:
    if ctx.headline is not None:
        from roz.report.sections.headline import kind_averages_frame

        kinds = kind_averages_frame(ctx.er)  # the paper's contrast: natural vs synthetic vs adversarial
        return tables.to_console(ctx.headline) + ("" if kinds is None else (
            f"\n\nER averaged per kind of shift ({ctx.er.protocol['level']:.0%} bootstrap CI; never across kinds):\n"
            + tables.to_console(kinds)))
    er = ctx.er
    why = "; ".join(f"{k}: {v}" for k, v in er.skipped.items()) if er is not None and er.skipped else ""
    return "(no effective-robustness table: " + (
        ctx.er_error or f"no shift with a baseline fit{': ' + why if why else ''}") + ")"


def _page(ctx: ReportContext, collected, files: ReportFiles, elapsed: float) -> str:
    secs = []
    for section, data in collected:
        body = section.render(data, ctx, files) if data is not None else section.absent(ctx)
        if body is not None:
            secs.append((section.sid, section.title, body))
    kinds, n_models, n_datasets = ctx.intro_counts()
    meta = ctx.meta
    intro = (f"<p>Run <code>{html.esc(ctx.root)}</code>: ROZ {html.esc(meta.get('roz_version'))}, "
             f"store format {html.esc(meta.get('store_format'))}, created {html.esc(meta.get('created'))}; "
             f"{len(ctx.units)} finished units ({html.esc(', '.join(f'{k}: {v}' for k, v in sorted(kinds.items())))}), "
             f"{n_models} models, {n_datasets} datasets. "
             f'Configuration and environment: <a href="#config">below</a>.</p>')
    btab = ctx.baseline_table
    sub = (f"Rendered from the result store in {elapsed:.2f} s (no model re-run)"
           + (f"; baseline table: {btab.source}" if btab is not None else ""))
    return html.page(ctx.options.title or f"ROZ report: {ctx.root.name}", secs, sub, intro=intro)


def _jsonable(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
