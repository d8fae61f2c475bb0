"""Relative robustness of intervention pairs (CLIP-Auto vs CLIP by default), paired bootstrap, on the
natural datasets and on the run's shifted units (same dataset, same shift)."""

from __future__ import annotations

from roz.report import html
from roz.report.sections.base import Section


class Relative(Section):
    sid = "relative"
    title = "Relative robustness"
    columns = ["model", "model0", "dataset", "metric", "acc", "acc0", "rr", "lo", "hi", "paired", "method"]
    intro = ("<p>Relative robustness RR = acc(f) − acc(f₀) in percentage points, paired bootstrap over test "
             "samples where per-sample results exist.</p>")

    def collect(self, ctx):
        from roz.metrics.relative import default_pairs, relative_table

        o = ctx.options
        pairs = list(o.pairs) if o.pairs is not None else default_pairs(ctx.roles)
        if not pairs:
            return None
        # per-sample results: read through the store's ``samples``
        kw = dict(n_boot=o.n_boot, seed=o.seed, level=o.level)
        rel = relative_table(ctx.natural, ctx.store.samples, pairs, **kw)
        shifted = relative_table(shifted_units(ctx.units), ctx.store.samples, pairs, **kw)
        rel = rel if rel is not None and len(rel) else None
        shifted = shifted if shifted is not None and len(shifted) else None
        return None if rel is None and shifted is None else {"natural": rel, "shifted": shifted}

    def write(self, data, ctx, files):
        if data["natural"] is not None:
            files.table("relative", data["natural"])
        if data["shifted"] is not None:
            files.table("relative_shifted", data["shifted"])

    def _table(self, rel):
        return html.table_html(rel[self.columns], left=("model", "model0", "dataset", "metric", "method"), role_col=None,
                               signed=lambda c: c == "rr")

    def render(self, data, ctx, files):
        body = [self.intro]
        if data["natural"] is not None:
            body += [self._table(data["natural"]), f"<p>Download: {files.links('relative')}</p>"]
        if data["shifted"] is not None:
            body += ["<h3>Under shifts applied to the images</h3>",
                     "<p>The same pairs on the run's shifted units (dataset + shift: synthetic shifts, and probes "
                     "such as the word-cards reading probe), paired over the same images.</p>",
                     self._table(data["shifted"]), f"<p>Download: {files.links('relative_shifted')}</p>"]
        return "\n".join(body + [_auto_note(ctx)])

    def absent(self, ctx):
        return html.absent("no intervention pair (a CLIP-Auto model with its CLIP model) in this run") + _auto_note(ctx)

    def to_json(self, data, ctx):
        out = {"relative": data["natural"].to_dict(orient="records") if data and data["natural"] is not None else []}
        if data and data["shifted"] is not None:
            out["relative_shifted"] = data["shifted"].to_dict(orient="records")
        return out


def shifted_units(units):
    """The eval units under a synthetic shift as :func:`roz.metrics.relative.relative_table` reads
    units: one row each, ``dataset`` = ``"<dataset> + <shift>"`` (so a pair is compared under the
    same shift on the same dataset), ``dataset_n`` = the evaluated samples."""
    import pandas as pd

    from roz.engine.tables import shift_label

    rows = [{**u.metrics, "unit_id": u.unit_id, "model": u.model, "role": u.role,
             "dataset": f"{u.dataset} + {shift_label(u.shift)}", "dataset_n": u.metrics.get("n")}
            for u in units if u.kind == "eval" and u.shift]
    return pd.DataFrame(rows, columns=None if rows else ["unit_id", "model", "role", "dataset", "dataset_n"])


def _auto_note(ctx) -> str:
    if any(r == "zeroshot-auto" for r in ctx.roles.values()):
        return ""
    return html.absent("CLIP-Auto is absent from this run: no model has role zeroshot-auto (the prompt-search "
                    "capability is not part of this run), so CLIP vs CLIP-Auto is not reported.")
