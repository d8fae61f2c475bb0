"""Typographic attacks: accuracy and attack success under text pasted onto images, beside each
model's reading accuracy (the ``word-cards`` probe: its true class name alone on a plain card)."""

from __future__ import annotations

from roz.report import figures
from roz.report.sections.base import FigureTableSection

#: The shift of the reading probe (roz.shifts.word_cards) and the metric its units store.
READING_SHIFT, READING_METRIC = "word-cards", "reading_accuracy"


def is_typographic(u) -> bool:
    return ("typographic" in u.shift_name.lower() or "typographic" in u.dataset.lower()
            or "typographic" in str(u.kind).lower())


def is_reading(u) -> bool:
    return u.kind == "eval" and u.shift_name == READING_SHIFT and READING_METRIC in u.metrics


def _clean_accuracy(units) -> dict[tuple[str, str], float]:
    """(model, dataset) -> top-1 of the clean unit: an eval unit without a shift, not itself typographic."""
    return {(u.model, u.dataset): u.metrics["top1"] for u in units
            if u.kind == "eval" and not u.shift and "top1" in u.metrics and not is_typographic(u)}


def _reading(units) -> dict[tuple[str, str], tuple]:
    """(model, dataset) -> (role, reading accuracy) of its word-cards unit (the last one wins)."""
    return {(u.model, u.dataset): (u.role, float(u.metrics[READING_METRIC])) for u in units if is_reading(u)}


def _first(met: dict, names) -> float:
    return next((float(met[k]) for k in names if k in met), float("nan"))


def _order(df):
    """``reading`` right after the attack success rate (the last column when there is none)."""
    cols = [c for c in df.columns if c != "reading"]
    at = cols.index("attack_success_rate") + 1 if "attack_success_rate" in cols else len(cols)
    return df[cols[:at] + ["reading"] + cols[at:]]


def typographic_data(units) -> dict | None:
    """Typographic units -> their metrics table and the figure's table: per model (or model and
    dataset when a model has several) the ``clean`` accuracy (the same model on the same dataset
    without a shift; NaN when the run has none, e.g. real typographic photos), the ``attacked``
    accuracy and the attack ``success`` rate. The table's ``reading`` column: the reading accuracy
    of the same model's word-cards unit on the same dataset (NaN when the run has none); a
    word-cards unit without a typographic unit of its model and dataset gets a row of its own."""
    import pandas as pd

    rows, fig_rows = [], []
    clean, reading = _clean_accuracy(units), _reading(units)
    for u in units:
        if not is_typographic(u):
            continue
        met = {k: v for k, v in u.metrics.items() if k != "n"}
        read = reading.get((u.model, u.dataset), (None, float("nan")))[1]
        rows.append({"model": u.model, "role": u.role, "dataset": u.dataset, "kind": u.kind, **met, "reading": read})
        fig_rows.append({"clean": clean.get((u.model, u.dataset), float("nan")),
                         "attacked": _first(met, ("accuracy", "top1")),
                         "success": _first(met, ("attack_success_rate", "success_rate"))})
    n_attacked = len(rows)
    attacked = {(r["model"], r["dataset"]) for r in rows}
    rows += [{"model": m, "role": role, "dataset": d, "kind": "reading probe", "reading": read}
             for (m, d), (role, read) in reading.items() if (m, d) not in attacked]
    if not rows:
        return None
    df = _order(pd.DataFrame(rows))
    typo = df.iloc[:n_attacked]
    label = typo.model if not typo.model.duplicated().any() else typo.model + " [" + typo.dataset + "]"
    fig_table = pd.DataFrame(fig_rows, index=pd.Index(label, name="model"), columns=["clean", "attacked", "success"])
    return {"table": df, "fig_table": fig_table, "roles": dict(zip(label, typo.role))}


def typographic_notes(typ) -> list[str]:
    return ["reading: reading accuracy (%), zero-shot top-1 on word cards (the word-cards probe: the true class "
            "name alone on a plain card, held-out fonts, random size and position; single-word classes only) of the "
            "same model on the same dataset; blank when the run has no word-cards unit for it. A capability probe, "
            "not a shift: it enters no effective-robustness fit or average."]


def draw_typographic(typ):
    return figures.typographic_figure(typ["fig_table"], typ["roles"]) if len(typ["fig_table"]) else None


TYPOGRAPHIC = FigureTableSection("typographic", "Typographic attacks", data=typographic_data, draw=draw_typographic,
                                 left=("model", "role", "dataset", "kind"), alt="typographic attacks",
                                 units="typographic", notes=typographic_notes)
