"""Typographic attacks: accuracy and attack success under text pasted onto images."""

from __future__ import annotations

from roz.report import figures
from roz.report.sections.base import FigureTableSection


def is_typographic(u) -> bool:
    return ("typographic" in u.shift_name.lower() or "typographic" in u.dataset.lower()
            or "typographic" in str(u.kind).lower())


def _clean_accuracy(units) -> dict[tuple[str, str], float]:
    """(model, dataset) -> top-1 of the clean unit: an eval unit without a shift, not itself typographic."""
    return {(u.model, u.dataset): u.metrics["top1"] for u in units
            if u.kind == "eval" and not u.shift and "top1" in u.metrics and not is_typographic(u)}


def _first(met: dict, names) -> float:
    return next((float(met[k]) for k in names if k in met), float("nan"))


def typographic_data(units) -> dict | None:
    """Typographic units -> their metrics table and the figure's table: per model (or model and
    dataset when a model has several) the ``clean`` accuracy (the same model on the same dataset
    without a shift; NaN when the run has none, e.g. real typographic photos), the ``attacked``
    accuracy and the attack ``success`` rate."""
    import pandas as pd

    rows, fig_rows = [], []
    clean = _clean_accuracy(units)
    for u in units:
        if not is_typographic(u):
            continue
        met = {k: v for k, v in u.metrics.items() if k != "n"}
        rows.append({"model": u.model, "role": u.role, "dataset": u.dataset, "kind": u.kind, **met})
        fig_rows.append({"clean": clean.get((u.model, u.dataset), float("nan")),
                         "attacked": _first(met, ("accuracy", "top1")),
                         "success": _first(met, ("attack_success_rate", "success_rate"))})
    if not rows:
        return None
    df = pd.DataFrame(rows)
    label = df.model if not df.model.duplicated().any() else df.model + " [" + df.dataset + "]"
    fig_table = pd.DataFrame(fig_rows, index=pd.Index(label, name="model"))
    return {"table": df, "fig_table": fig_table, "roles": dict(zip(label, df.role))}


def draw_typographic(typ):
    return figures.typographic_figure(typ["fig_table"], typ["roles"]) if len(typ["fig_table"]) else None


TYPOGRAPHIC = FigureTableSection("typographic", "Typographic attacks", data=typographic_data, draw=draw_typographic,
                                 left=("model", "role", "dataset", "kind"), alt="typographic attacks",
                                 units="typographic")
