"""Baseline fits: the logit-linear fit per shift with bootstrap intervals (ImageNet-A: both the
linear and the testbed's piecewise fit, the one not used for ER marked "not used")."""

from __future__ import annotations

from roz.report import html
from roz.report.sections.base import Section

INTRO = ("<p>Linear fit of logit(shift accuracy) on logit(reference accuracy) over the baseline models, "
         "accuracies as fractions; intervals by bootstrap over models. ImageNet-A also has the ImageNet "
         "testbed's piecewise fit (one line below and one above ResNet-50's reference accuracy, "
         "91.86 % class-restricted / 76.13 % full val); column <em>fit</em> says which rows the effective "
         "robustness uses.</p>")


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
            html.table_html(fits, nd=4, left=("shift", "fit", "reference", "target", "dropped"), role_col=None),
            f"<p>Download: {files.links('fits')}</p>",
            "<details><summary>Baseline models</summary><p>"
            + html.esc(", ".join(ctx.er.protocol["baseline_models"])) + "</p></details>"])

    def absent(self, ctx):
        return html.absent("no baseline fit")


def fits_frame(er):
    """One row per fitted line: slope, intercept (with intervals), R², models, dropped models. A
    piecewise fit gives one row per side; ImageNet-A's alternative fit follows, marked "not used"."""
    import pandas as pd

    rows = []
    for s in er.shifts:
        f = er.fits.get(s.name)
        if f is None:
            continue
        alt = getattr(er, "alternatives", {}).get(s.name)
        for fit, used in ((f, True), (alt, False)):
            if fit is None:
                continue
            for where, line in fit.segments():
                label = fit.kind if where == "all" else f"{fit.kind} {where}"
                rows.append(_row(s, line, label + ("" if used else " (not used)")))
    return pd.DataFrame(rows)


def _row(s, f, label: str) -> dict:
    lo, hi = f.ci("slope")
    ilo, ihi = f.ci("intercept")
    return {"shift": s.name, "fit": label, "reference": f.x_key, "target": f.y_key, "natural": s.natural,
            "slope": f.slope, "slope lo": lo, "slope hi": hi, "intercept": f.intercept,
            "intercept lo": ilo, "intercept hi": ihi, "R2": f.r2, "n_models": f.n_models,
            "dropped": "; ".join(f"{m} ({why})" for m, why in f.dropped)}
