"""Per-dataset details: every unit's metrics, one table per dataset."""

from __future__ import annotations

from roz.report import html
from roz.report.sections.base import Section

LEFT = ("model", "role", "kind", "shift", "attack", "unit_id")


class Datasets(Section):
    sid = "datasets"
    title = "Per-dataset details"

    def collect(self, ctx):
        return ctx.metrics_table  # always present (possibly without rows)

    def write(self, metrics, ctx, files):
        files.table("metrics", metrics)

    def render(self, metrics, ctx, files):
        body = []
        if len(metrics):
            for ds in sorted(metrics["dataset"].unique()):
                d = metrics[metrics["dataset"] == ds].dropna(axis=1, how="all")
                d = d.drop(columns=[c for c in ("dataset",) if c in d.columns])
                first = [c for c in ("model", "role", "kind", "shift", "attack") if c in d.columns]
                d = d[first + [c for c in d.columns if c not in first and c != "unit_id"] + ["unit_id"]]
                d = d.sort_values(["role", "model"], kind="stable")
                body += [f"<h3>{html.esc(ds)}</h3>", html.table_html(d, left=LEFT)]
        body.append(f"<p>All units: {files.links('metrics')}</p>")
        return "\n".join(body)
