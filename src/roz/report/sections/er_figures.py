"""Effective-robustness figures: each shift's accuracy against reference accuracy, and a grid of
all natural shifts (logit axes, the baseline fit and its bootstrap band)."""

from __future__ import annotations

from roz.report import figures
from roz.report import html
from roz.report.intervals import sample_counts
from roz.report.sections.base import Section, slug


class ERFigures(Section):
    sid = "figures"
    title = "Effective robustness figures"

    def collect(self, ctx):
        er = ctx.er
        return er if er is not None and er.fits else None

    def write(self, er, ctx, files):
        panels = []
        for s in er.shifts:
            if s.name not in er.fits:
                continue
            fit = er.fits[s.name]
            pts = figures.points_for(er.per_shift, s.name, ctx.baseline_table, fit, counts=sample_counts(ctx.units))
            if not pts:
                continue
            kw = {"title": f"{s.label}", "xlabel": f"{fit.x_key.replace(':', ' ')} accuracy (%)",
                  "ylabel": f"{s.label} {s.metric} (%)"}
            files.figure(f"shift_{slug(s.name)}", figures.shift_figure(pts, fit, labels=ctx.options.label_points, **kw),
                         f"{s.label} vs reference accuracy")
            if s.natural:
                panels.append({"points": pts, "fit": fit, **kw})
        if panels:
            grid_labels = "all" if ctx.options.label_points == "all" else "none"
            files.figure("grid_natural_shifts", figures.grid_figure(panels, labels=grid_labels), "all natural shifts")

    def render(self, er, ctx, files):
        body = []
        if "grid_natural_shifts" in files.figures:
            body += ["<h3>All natural shifts</h3>", files.figure_html("grid_natural_shifts")]
        for s in er.shifts:
            name = f"shift_{slug(s.name)}"
            if name in files.figures:
                body += [f"<h3>{html.esc(s.label)}</h3>", files.figure_html(name)]
        return "\n".join(body)

    def absent(self, ctx):
        return html.absent("no baseline fit")
