"""Relative robustness of intervention pairs (CLIP-Auto vs CLIP by default), paired bootstrap."""

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
        rel = relative_table(ctx.natural, ctx.store.samples, pairs, n_boot=o.n_boot, seed=o.seed, level=o.level)
        return rel if rel is not None and len(rel) else None

    def write(self, rel, ctx, files):
        files.table("relative", rel)

    def render(self, rel, ctx, files):
        return "\n".join([
            self.intro,
            html.table_html(rel[self.columns], left=("model", "model0", "dataset", "metric", "method"), role_col=None,
                         signed=lambda c: c == "rr"),
            f"<p>Download: {files.links('relative')}</p>", _auto_note(ctx)])

    def absent(self, ctx):
        return html.absent("no intervention pair (a CLIP-Auto model with its CLIP model) in this run") + _auto_note(ctx)

    def to_json(self, rel, ctx):
        return {"relative": rel.to_dict(orient="records") if rel is not None else []}


def _auto_note(ctx) -> str:
    if any(r == "zeroshot-auto" for r in ctx.roles.values()):
        return ""
    return html.absent("CLIP-Auto is absent from this run: no model has role zeroshot-auto (the prompt-search "
                    "capability is not part of this run), so CLIP vs CLIP-Auto is not reported.")
