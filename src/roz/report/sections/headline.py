"""Headline: accuracy per natural shift and effective robustness, the paper's main table."""

from __future__ import annotations

import numpy as np

from roz.report import html
from roz.report import tables
from roz.report.sections.base import Section, ci_text


class Headline(Section):
    sid = "headline"
    title = "Headline: accuracy and effective robustness"

    def collect(self, ctx):
        return ctx.headline  # computed once in the context: summary.txt prints it too

    def write(self, headline, ctx, files):
        er = ctx.er
        files.table("headline", headline)
        files.text("tables/headline.tex", tables.headline_latex(
            headline, {s.name: s.label for s in er.shifts},
            caption=f"Accuracy (%) and effective robustness (pp, in parentheses) on natural shifts; protocol "
                    f"{ctx.options.protocol}."), name="headline", fmt="tex")
        files.table("effective_robustness", er.per_shift)
        files.table("er_average", er.average)

    def render(self, headline, ctx, files):
        er = ctx.er
        pr = er.protocol
        intro = (f"<p>Accuracy (%) per natural shift and effective robustness ER (percentage points above the "
                 f"baseline fit). Protocol: <b>{html.esc(ctx.options.protocol)}</b>. Baseline: "
                 f"{html.esc(pr['baseline_rule'])}, {len(pr['baseline_models'])} models from "
                 f"<code>{html.esc(pr['baseline_source'])}</code>. Bootstrap: B={pr['n_boot']}, "
                 f"seed={html.esc(pr['seed'])}, {pr['level']:.0%} percentile intervals over baseline models.</p>")
        links = (f"<p>Download: {files.links('headline')} · per shift: {files.links('effective_robustness')}"
                 f" · averages: {files.links('er_average')}</p>")
        body = [intro, headline_html(headline, er), kind_averages_html(er), links]
        if er.skipped:
            body.append("<p>Shifts without a fit: " + html.esc("; ".join(f"{k}: {v}" for k, v in er.skipped.items()))
                        + "</p>")
        for k, v in er.missing.items():
            body.append(f"<p>{html.esc(k)}: no reference accuracy ({html.esc(er.fits[k].x_key if k in er.fits else '?')}) "
                        f"for {html.esc(', '.join(v))} — not scored.</p>")
        return "\n".join(body)

    def absent(self, ctx):
        er = ctx.er
        skipped = (" (" + "; ".join(f"{k}: {v}" for k, v in er.skipped.items()) + ")"
                   if er is not None and er.skipped else "")
        return html.absent(ctx.er_error or "no natural-shift result with a baseline fit in this run" + skipped)

    def to_json(self, headline, ctx):
        er = ctx.er
        return {"protocol": er.protocol if er else None,
                "fits": {k: f.to_dict() for k, f in er.fits.items()} if er else {},
                "skipped_shifts": er.skipped if er else {}, "error": ctx.er_error,
                "average_er": er.average.to_dict(orient="records") if er else []}


def headline_html(headline, er) -> str:
    """The headline table with two header rows (accuracy and ER under each natural shift)."""
    cols = list(headline.columns)
    nat = [s for s in er.shifts if s.natural and s.name in er.fits]
    ref = [c for c in cols if c not in ("model", "role", "avg ER", "avg ER lo", "avg ER hi", "n_shifts")
           and c not in [s.name for s in nat] and not c.endswith(" ER")]
    h1 = ('<tr><th class="l" rowspan="2">model</th><th class="l" rowspan="2">role</th>'
          + "".join(f'<th rowspan="2">{html.esc(r)}</th>' for r in ref)
          + "".join(f'<th colspan="2">{html.esc(s.label)}</th>' for s in nat)
          + '<th colspan="2">average over natural shifts</th></tr>')
    h2 = "<tr>" + "<th>acc</th><th>ER</th>" * len(nat) + f"<th>ER</th><th>{er.protocol['level']:.0%} CI</th></tr>"
    out = ["<table>", h1, h2]
    for r in headline.to_dict(orient="records"):
        tds = [f'<td class="l">{html.esc(r["model"])}</td>', f'<td class="l">{html.esc(r["role"])}</td>']
        tds += [f"<td>{html.esc(html.fmt(r[c], 1))}</td>" for c in ref]
        for s in nat:
            e = r[f"{s.name} ER"]
            k = "" if not isinstance(e, float) or np.isnan(e) else ("pos" if e > 0 else "neg")
            tds.append(f"<td>{html.esc(html.fmt(r[s.name], 1))}</td><td class=\"{k}\">{html.esc(html.fmt(e, 1, True))}</td>")
        a = r["avg ER"]
        k = "" if np.isnan(a) else ("pos" if a > 0 else "neg")
        ci = "–" if np.isnan(r["avg ER lo"]) else f"[{r['avg ER lo']:+.1f}, {r['avg ER hi']:+.1f}]"
        part = "" if int(r["n_shifts"]) >= len(nat) or np.isnan(a) else f" ({int(r['n_shifts'])}/{len(nat)})"
        tds.append(f'<td class="{k}">{html.esc(html.fmt(a, 1, True) + part)}</td><td>{html.esc(ci)}</td>')
        out.append(f'<tr class="role-{html.esc(r["role"])}">' + "".join(tds) + "</tr>")
    out.append("</table>")
    out.append('<p class="muted">(k/n): average over the k of n natural shifts the model was evaluated on — '
               'not comparable with full averages.</p>')
    return "\n".join(out)


def kind_averages_html(er) -> str:
    """Per model the ER averaged over natural, synthetic and adversarial shifts, side by side
    (never across kinds); "" when the run has no averaged synthetic or adversarial shift."""
    from roz.metrics.effective import AVERAGE_KINDS, average_columns

    pr = er.protocol
    kinds = [k for k in AVERAGE_KINDS if pr.get(f"{k}_shifts")]
    if not kinds or kinds == ["natural"] or not len(er.average):
        return ""
    head = "".join(f'<th colspan="2">{html.esc(k)} (mean of {len(pr[f"{k}_shifts"])})</th>' for k in kinds)
    out = ['<table>', f'<tr><th class="l">model</th><th class="l">role</th>{head}</tr>']
    for r in er.average.to_dict(orient="records"):
        tds = [f'<td class="l">{html.esc(r["model"])}</td>', f'<td class="l">{html.esc(r["role"])}</td>']
        for k in kinds:
            avg, lo, hi, n = (r[c] for c in average_columns(k)[:4])
            part = "" if int(n) >= len(pr[f"{k}_shifts"]) or np.isnan(avg) else f" ({int(n)}/{len(pr[f'{k}_shifts'])})"
            tds.append(f"<td>{html.esc(html.fmt(avg, 1, True) + part)}</td><td>{html.esc(ci_text(lo, hi, 1, True))}</td>")
        out.append(f'<tr class="role-{html.esc(r["role"])}">' + "".join(tds) + "</tr>")
    out.append("</table>")
    lists = "; ".join(f"{k}: {', '.join(pr[f'{k}_shifts'])}" for k in kinds)
    out.append(f'<p class="muted">ER averaged per kind of shift, never across kinds ({html.esc(lists)}). '
               "Per-corruption and per-severity axes are breakdowns of the corruption mean and are not "
               "averaged; nor are the ImageNet-P axes (100 x (1 - flip rate): a stability, not an accuracy).</p>")
    return "\n".join(out)


def kind_averages_frame(er):
    """The per-kind averages as a plain table (model, role, then ``<kind> ER`` and ``<kind> CI``
    per kind), for the console summary; None when the run has no synthetic or adversarial average."""
    import pandas as pd

    from roz.metrics.effective import AVERAGE_KINDS, average_columns

    if er is None or not len(er.average):
        return None
    kinds = [k for k in AVERAGE_KINDS if er.protocol.get(f"{k}_shifts")]
    if kinds in ([], ["natural"]):
        return None
    rows = []
    for r in er.average.to_dict(orient="records"):
        row = {"model": r["model"], "role": r["role"]}
        for k in kinds:
            avg, lo, hi = (r[c] for c in average_columns(k)[:3])
            row[f"{k} ER"], row[f"{k} CI"] = avg, ci_text(lo, hi, 1, True).replace("\u00a0", " ")
        rows.append(row)
    return pd.DataFrame(rows)
