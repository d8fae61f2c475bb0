"""Typographic attacks: accuracy and attack success under text pasted onto images."""

from __future__ import annotations

from roz.report import figures
from roz.report.sections.base import FigureTableSection


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


def draw_typographic(typ):
    return figures.typographic_figure(typ["fig_table"], typ["roles"]) if typ["fig_table"].shape[1] else None


TYPOGRAPHIC = FigureTableSection("typographic", "Typographic attacks", data=typographic_data, draw=draw_typographic,
                                 left=("model", "role", "dataset", "kind"), alt="typographic attacks",
                                 units="typographic")
