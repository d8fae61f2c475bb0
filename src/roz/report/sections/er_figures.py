"""Effective-robustness figures: each shift's accuracy against reference accuracy (logit axes, the
baseline fit and its bootstrap band), grouped by kind -- natural, synthetic, adversarial -- each
kind with a grid of the shifts averaged into its headline mean."""

from __future__ import annotations

from roz.metrics.shift_sets import FLIP_METRIC, SHIFT_KINDS
from roz.report import figures
from roz.report import html
from roz.report.intervals import sample_counts
from roz.report.sections.base import Section, slug

KIND_TITLES = {"natural": "Natural shifts", "synthetic": "Synthetic shifts", "adversarial": "Adversarial attacks"}


def grid_name(kind: str) -> str:
    """The figure name of one kind's grid (``grid_natural_shifts`` ...)."""
    return f"grid_{kind}_shifts"


def _averaged(s) -> bool:
    """Whether a shift is in its kind's headline mean (and so in the kind's grid)."""
    return s.natural if s.kind == "natural" else not s.breakdown


def _ylabel(s) -> str:
    if s.metric == FLIP_METRIC:
        return f"{s.label}: 100 x (1 - flip rate) (%)"
    if s.kind == "adversarial":
        return f"{s.label} robust accuracy (%)"
    return f"{s.label} {s.metric} (%)"


class ERFigures(Section):
    sid = "figures"
    title = "Effective robustness figures"

    def collect(self, ctx):
        er = ctx.er
        return er if er is not None and er.fits else None

    def write(self, er, ctx, files):
        panels: dict[str, list] = {k: [] for k in SHIFT_KINDS}
        counts = sample_counts(ctx.units)
        for s in er.shifts:
            if s.name not in er.fits:
                continue
            fit = er.fits[s.name]
            pts = figures.points_for(er.per_shift, s.name, ctx.baseline_table, fit, counts=counts)
            if not pts:
                continue
            kw = {"title": f"{s.label}", "xlabel": f"{fit.x_key.replace(':', ' ')} accuracy (%)", "ylabel": _ylabel(s)}
            files.figure(f"shift_{slug(s.name)}", figures.shift_figure(pts, fit, labels=ctx.options.label_points, **kw),
                         f"{s.label} vs reference accuracy")
            if _averaged(s):
                panels[s.kind].append({"points": pts, "fit": fit, **kw})
        grid_labels = "all" if ctx.options.label_points == "all" else "none"
        for kind, group in panels.items():
            if group:
                files.figure(grid_name(kind), figures.grid_figure(group, labels=grid_labels),
                             f"all {kind} shifts averaged in the headline")

    def render(self, er, ctx, files):
        body = []
        for kind in SHIFT_KINDS:
            shifts = [s for s in er.shifts if s.kind == kind and f"shift_{slug(s.name)}" in files.figures]
            if not shifts:
                continue
            body.append(f"<h3>{html.esc(KIND_TITLES[kind])}</h3>")
            if grid_name(kind) in files.figures:
                body += [f"<p>The {html.esc(kind)} shifts averaged in the headline:</p>", files.figure_html(grid_name(kind))]
            for s in sorted(shifts, key=lambda s: not _averaged(s)):  # averaged first, then breakdowns
                body += [f"<h4>{html.esc(s.label)}</h4>", files.figure_html(f"shift_{slug(s.name)}")]
        return "\n".join(body)

    def absent(self, ctx):
        return html.absent("no baseline fit")
