"""The report's tables: the headline (paper layout) and writers for CSV, Parquet, LaTeX, console.

Headline layout (Wang et al. 2024 / Taori et al. 2020): one row per model of the run, grouped
by role (standard, zero-shot, CLIP-Auto, other) and sorted by reference accuracy; columns: the
reference accuracy, then per natural shift its accuracy and its effective robustness (ER, pp),
then the ER averaged over the natural shifts the model has (``n_shifts``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

ROLE_RANK = {"standard": 0, "zeroshot": 1, "zeroshot-auto": 2}


def headline_table(er, table, reference_key: str | None = None):
    """Headline DataFrame from an :class:`~roz.metrics.effective.EffectiveRobustness` result and
    the run's :class:`~roz.metrics.effective.AccuracyTable`. Columns: ``model, role, <ref>``,
    then ``<shift>`` and ``<shift> ER`` per natural shift, then ``avg ER``, ``avg ER lo/hi``,
    ``n_shifts``."""
    import pandas as pd

    nat = [s for s in er.shifts if s.natural and s.name in er.fits]
    if reference_key is None:
        refs = [er.fits[s.name].x_key for s in nat]
        reference_key = max(set(refs), key=refs.count) if refs else None
    ps = er.per_shift.set_index(["model", "shift"]) if len(er.per_shift) else None
    avg = er.average.set_index("model") if len(er.average) else None
    rows = []
    for m in table.models:
        row = {"model": m, "role": table.role(m)}
        if reference_key:
            row[reference_key.replace(":top1", "")] = table.value(m, reference_key)
        for s in nat:
            acc = table.value(m, s.y_key)
            e = float("nan")
            if ps is not None and (m, s.name) in ps.index:
                e = float(ps.loc[(m, s.name), "er"])
            row[s.name] = acc
            row[f"{s.name} ER"] = e
        if avg is not None and m in avg.index:
            row["avg ER"] = float(avg.loc[m, "er_avg"])
            row["avg ER lo"] = float(avg.loc[m, "er_avg_lo"])
            row["avg ER hi"] = float(avg.loc[m, "er_avg_hi"])
            row["n_shifts"] = int(avg.loc[m, "n_shifts"])
        else:
            row.update({"avg ER": float("nan"), "avg ER lo": float("nan"), "avg ER hi": float("nan"), "n_shifts": 0})
        rows.append(row)
    df = pd.DataFrame(rows)
    if len(df):
        refcol = reference_key.replace(":top1", "") if reference_key else None
        df["_r"] = df["role"].map(lambda r: ROLE_RANK.get(r, 9))
        by = ["_r"] + ([refcol] if refcol in df.columns else [])
        df = df.sort_values(by, ascending=[True] + [False] * (len(by) - 1), kind="stable").drop(columns="_r")
        df = df.reset_index(drop=True)
    return df


def _fmt(v, nd=1, sign=False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, (int,)) and not isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:+.{nd}f}" if sign else f"{v:.{nd}f}"
    return str(v)


def to_console(df, max_width: int | None = None) -> str:
    """Plain-text rendering of a table (for ``roz report`` to print)."""
    if df is None or not len(df):
        return "(empty)"
    cols = list(df.columns)
    cells = [[str(c) for c in cols]]
    for r in df.itertuples(index=False):
        cells.append([_fmt(v, sign=str(c).endswith("ER")) for c, v in zip(cols, r)])
    w = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    lines = ["  ".join(c.ljust(w[i]) if i < 2 else c.rjust(w[i]) for i, c in enumerate(row)) for row in cells]
    lines.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(line[:max_width] if max_width else line for line in lines)  # default: never cut


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"\textless{}", ">": r"\textgreater{}"}


def latex_escape(s) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(s))


def headline_latex(df, shift_labels: Mapping[str, str] | None = None, caption: str = "", label: str = "tab:roz-headline") -> str:
    """A ``booktabs`` LaTeX table: model, reference, per shift ``acc (ER)``, average ER."""
    shift_labels = dict(shift_labels or {})
    cols = list(df.columns)
    shifts = [c for c in cols if f"{c} ER" in cols]
    ref = [c for c in cols if c not in ("model", "role", "avg ER", "avg ER lo", "avg ER hi", "n_shifts")
           and c not in shifts and not c.endswith(" ER")]
    head = ["Model"] + [latex_escape(r) for r in ref] + [latex_escape(shift_labels.get(s, s)) for s in shifts] + ["Avg.\\ ER"]
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             r"\begin{tabular}{l" + "r" * (len(head) - 1) + "}", r"\toprule", " & ".join(head) + r" \\", r"\midrule"]
    last_role = None
    for r in df.to_dict(orient="records"):
        if last_role is not None and r["role"] != last_role:
            lines.append(r"\midrule")
        last_role = r["role"]
        cells = [latex_escape(r["model"])] + [_fmt(r[c]) for c in ref]
        for s in shifts:
            a, e = r[s], r[f"{s} ER"]
            cells.append(_fmt(a) if _fmt(e) == "–" else f"{_fmt(a)} ({_fmt(e, sign=True)})")
        cells.append(_fmt(r["avg ER"], sign=True))
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(r"\caption{" + latex_escape(caption) + "}")
    lines += [r"\label{" + label + "}", r"\end{table}", ""]
    return "\n".join(lines)


def write_table(df, stem: Path, formats: Sequence[str] = ("csv", "parquet")) -> dict[str, Path]:
    """Write ``stem.csv`` / ``stem.parquet``; returns the paths written."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = {}
    if "csv" in formats:
        p = stem.with_suffix(".csv")
        df.to_csv(p, index=False)
        out["csv"] = p
    if "parquet" in formats:
        p = stem.with_suffix(".parquet")
        _parquet_safe(df).to_parquet(p, index=False)
        out["parquet"] = p
    return out


def _parquet_safe(df):
    """Object columns holding mixed/complex values become strings (parquet needs one type)."""
    df = df.copy()
    for c in df.columns:
        if df[c].dtype == object:
            kinds = {type(v) for v in df[c] if v is not None and not (isinstance(v, float) and math.isnan(v))}
            if len(kinds) > 1 or kinds & {dict, list, tuple}:
                df[c] = df[c].map(lambda v: None if v is None else str(v))
    return df
