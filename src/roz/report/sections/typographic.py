"""Typographic attacks: accuracy and attack success under text pasted onto images."""

from __future__ import annotations

from roz.report import figures as F
from roz.report import html as H
from roz.report.sections.base import Section, figure_and_table


def is_typographic(u) -> bool:
    return ("typographic" in u.shift_name.lower() or "typographic" in u.dataset.lower()
            or "typographic" in str(u.kind).lower())


def typographic_data(units) -> dict | None:
    """Typographic units -> their metrics table and the figure's table (accuracy / success
    columns, one row per model, or per model and dataset when a model has several)."""
    import pandas as pd

    rows = []
    for u in units:
        if not is_typographic(u):
            continue
        met = {k: v for k, v in u.metrics.items() if k != "n"}
        rows.append({"model": u.model, "role": u.role, "dataset": u.dataset, "kind": u.kind, **met})
    if not rows:
        return None
    df = pd.DataFrame(rows)
    label = df.model if not df.model.duplicated().any() else df.model + " [" + df.dataset + "]"
    metrics = [c for c in df.columns if c not in ("model", "role", "dataset", "kind")]
    keep = [c for c in metrics if c in ("top1",) or "success" in c or "acc" in c] or metrics
    fig_table = df.set_index(label)[keep]
    fig_table.index.name = "model"
    return {"table": df, "fig_table": fig_table, "roles": dict(zip(label, df.role))}


class Typographic(Section):
    sid = "typographic"
    title = "Typographic attacks"

    def collect(self, ctx):
        return typographic_data(ctx.units)

    def write(self, typ, ctx, files):
        files.table("typographic", typ["table"])
        if typ["fig_table"].shape[1]:
            files.figure("typographic", F.typographic_figure(typ["fig_table"], typ["roles"]), "typographic attacks")

    def render(self, typ, ctx, files):
        return figure_and_table(files, "typographic", typ["table"], ("model", "role", "dataset", "kind"))

    def absent(self, ctx):
        return H.absent("no typographic units in this run")
