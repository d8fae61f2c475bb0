"""Baseline fits: the logit-linear fit per shift with bootstrap intervals."""

from __future__ import annotations

from roz.report import html as H
from roz.report.sections.base import Section

INTRO = ("<p>Linear fit of logit(shift accuracy) on logit(reference accuracy) over the baseline models, "
         "accuracies as fractions; intervals by bootstrap over models.</p>")


class Fits(Section):
    sid = "fits"
    title = "Baseline fits"

    def collect(self, ctx):
        er = ctx.er
        return fits_frame(er) if er is not None and er.fits else None

    def write(self, fits, ctx, files):
        files.table("fits", fits)

    def render(self, fits, ctx, files):
        return "\n".join([
            INTRO,
            H.table_html(fits, nd=4, left=("shift", "reference", "target", "dropped"), role_col=None),
            f"<p>Download: {files.links('fits')}</p>",
            "<details><summary>Baseline models</summary><p>"
            + H.esc(", ".join(ctx.er.protocol["baseline_models"])) + "</p></details>"])

    def absent(self, ctx):
        return H.absent("no baseline fit")


def fits_frame(er):
    """One row per fitted shift: slope, intercept (with intervals), R², models, dropped models."""
    import pandas as pd

    rows = []
    for s in er.shifts:
        f = er.fits.get(s.name)
        if f is None:
            continue
        lo, hi = f.ci("slope")
        ilo, ihi = f.ci("intercept")
        rows.append({"shift": s.name, "reference": f.x_key, "target": f.y_key, "natural": s.natural,
                     "slope": f.slope, "slope lo": lo, "slope hi": hi, "intercept": f.intercept,
                     "intercept lo": ilo, "intercept hi": ihi, "R2": f.r2, "n_models": f.n_models,
                     "dropped": "; ".join(f"{m} ({why})" for m, why in f.dropped)})
    return pd.DataFrame(rows)
