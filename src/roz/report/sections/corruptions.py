"""Corruptions (ImageNet-C style): per-model mean corruption error or mCE, per-corruption errors,
CE relative to a model of the run. The arithmetic is :mod:`roz.metrics.corruption`'s."""

from __future__ import annotations

from roz.metrics import corruption
from roz.report import figures
from roz.report import html
from roz.report.sections.base import Section, notes_html


def corruption_rows(units):
    """Corruption units (``shift.name == 'corruption'``, kind eval) -> long rows (error in %), or None."""
    import pandas as pd

    rows = []
    for u in units:
        if u.kind != "eval" or u.shift.get("name") != "corruption":
            continue
        top1 = u.metrics.get("top1")
        err = u.metrics.get("error", 100.0 - top1 if top1 is not None else float("nan"))
        rows.append({"model": u.model, "role": u.role, "dataset": u.dataset,
                     "corruption": str(u.shift.get("corruption", "?")), "severity": u.shift.get("severity"),
                     "top1": top1 if top1 is not None else float("nan"), "error": err,
                     **{k: v for k, v in u.metrics.items() if k not in ("top1", "error", "n")}})
    return pd.DataFrame(rows) if rows else None


def corruption_data(units, normalizer=None, baseline_model: str | None = None) -> dict | None:
    """The section's data: rows, :func:`roz.metrics.corruption.model_summary` (its table with the
    models' roles), severities, corruptions and datasets; None without corruption units."""
    df = corruption_rows(units)
    if df is None:
        return None
    out = corruption.model_summary(df, normalizer, baseline_model)
    roles = dict(zip(df.model, df.role))
    out["table"].insert(1, "role", [roles.get(m, "") for m in out["table"].model])
    return {**out, "rows": df, "roles": roles, "baseline_model": baseline_model,
            "severities": sorted({int(s) for s in df.severity.dropna()}), "corruptions": sorted(set(df.corruption)),
            "datasets": sorted(set(df.dataset))}


def imagenet_c_order(names) -> list[str]:
    """Corruption names in ImageNet-C's order (noise, blur, weather, digital; then the four extra
    corruptions), others after them alphabetically."""
    from roz.datasets.release_names import CORRUPTIONS, EXTRA_CORRUPTIONS

    known = list(CORRUPTIONS + EXTRA_CORRUPTIONS)
    names = list(names)
    return [c for c in known if c in names] + sorted(c for c in names if c not in known)


def _in_order(frame):
    """A model x corruption frame with its columns in ImageNet-C's order."""
    return frame[imagenet_c_order(frame.columns)]


class Corruptions(Section):
    sid = "corruptions"
    title = "Corruptions"

    def collect(self, ctx):
        return corruption_data(ctx.units, ctx.ce_normalizer, ctx.options.ce_baseline)

    def write(self, cor, ctx, files):
        files.table("corruptions", cor["rows"])
        per = _in_order(cor["per_corruption"])  # the figure's bars in ImageNet-C's order
        files.figure("corruptions", figures.corruption_figure(cor["summary"], per, cor["roles"], cor["label"]),
                     "corruption errors")

    def render(self, cor, ctx, files):
        body = [files.figure_html("corruptions"), f"<h3>{html.esc(cor['label'])} per model</h3>",
                corruption_notes(cor, bool(ctx.ce_normalizer)), html.table_html(cor["table"]),
                "<h3>Per-corruption error (%, mean over severities)</h3>",
                html.table_html(_in_order(cor["per_corruption"]).reset_index(), role_col=None)]
        if cor["relative_ce"] is not None:
            body += [f"<h3>Per-corruption CE relative to {html.esc(cor['baseline_model'])} (%)</h3>",
                     html.table_html(_in_order(cor["relative_ce"]).rename_axis("model").reset_index(), role_col=None)]
        body.append(f"<p>Download: {files.links('corruptions')}</p>")
        return "\n".join(body)

    def absent(self, ctx):
        return html.absent("no corruption units in this run")


def corruption_notes(cor: dict, normalized: bool) -> str:
    parts = []
    if normalized:
        parts.append("mCE: per corruption, the error averaged over the evaluated severities divided by the given "
                     "normaliser's error (percent), averaged over the corruptions the normaliser covers.")
    else:
        parts.append("Mean corruption error (unnormalised, %): per corruption, the top-1 error averaged over the "
                     "evaluated severities, then averaged over corruptions — not an mCE.")
    full = set(corruption.BENCHMARK_CORRUPTIONS) <= set(cor["corruptions"]) and set(corruption.SEVERITIES) <= set(cor["severities"])
    parts.append(f"This run: {len(cor['corruptions'])} corruption(s) ({', '.join(imagenet_c_order(cor['corruptions']))}), severities "
                 f"{', '.join(map(str, cor['severities'])) or '?'}, on {', '.join(cor['datasets'])}"
                 + ("." if full else " — not the full ImageNet-C grid (15 corruptions × 5 severities), so not "
                    "comparable with published mCE values."))
    if not normalized:
        parts.append("AlexNet-normalised mCE (Hendrycks & Dietterich 2019) is not shown: it needs a CE normaliser, "
                     "roz report --ce-normalizer FILE (JSON {corruption: error}), or --ce-normalizer alexnet "
                     "(build_report(..., ce_normalizer=\"alexnet\")) for the packaged AlexNet errors "
                     "(src/roz/data/alexnet_imagenet_c_errors.json, roz.metrics.corruption.alexnet_errors); those "
                     "are ImageNet-C errors on the ImageNet validation set and only meaningful for that data.")
    b = cor.get("baseline_model")
    if b is not None:
        parts.append(f"CE relative to {b}: per corruption 100 · Σ_s error / Σ_s error of {b} over the (dataset, "
                     f"severity) cells both models have, averaged over corruptions; 100 = as robust as {b}, "
                     "lower is better.")
    else:
        parts.append("CE relative to a model of this run: pass ce_baseline=MODEL to build_report.")
    return notes_html(parts)
