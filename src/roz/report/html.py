"""Self-contained HTML: every text escaped, images inlined as base64 PNG, no external URL.

Small helpers the report builder composes: :func:`esc`, :func:`table_html`, :func:`img_html`,
:func:`section`, :func:`page`. Links point only at files next to the report (relative paths).
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import quote

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}h3{margin-top:1.4em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}tr.role-standard td.l:first-child{border-left:4px solid #d62728}
tr.role-zeroshot td.l:first-child{border-left:4px solid #1f77b4}tr.role-zeroshot-auto td.l:first-child{border-left:4px solid #9467bd}
td.pos{color:#1a7f37}td.neg{color:#b42318}.absent{color:#777;font-style:italic}pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:.8em}
img{max-width:100%;height:auto}details{margin:.4em 0}summary{cursor:pointer}nav a{margin-right:1em}.muted{color:#666;font-size:.85em}
"""


def esc(s) -> str:
    """HTML-escape anything (quotes included)."""
    return html.escape("" if s is None else str(s), quote=True)


def href(path: str) -> str:
    """A relative link target, percent-encoded, never a scheme (no external URL)."""
    p = str(path).replace("\\", "/")
    if ":" in p.split("/")[0]:
        raise ValueError(f"refusing non-relative link {path!r}")
    return esc(quote(p))


def fmt(v, nd: int = 2, sign: bool = False) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:+.{nd}f}" if sign else f"{v:.{nd}f}"
    try:
        import numpy as np

        if isinstance(v, np.integer):
            return str(int(v))
        if isinstance(v, np.floating):
            return fmt(float(v), nd, sign)
    except ImportError:  # pragma: no cover
        pass
    return str(v)


def table_html(df, *, nd: int = 2, left: Sequence[str] = ("model", "role"), signed: Callable[[str], bool] | None = None,
               role_col: str | None = "role", max_rows: int | None = None, header: str | None = None) -> str:
    """A DataFrame as an escaped HTML table."""
    if df is None or not len(df):
        return '<p class="absent">(no rows)</p>'
    cols = list(df.columns)
    signed = signed or (lambda c: str(c).endswith("ER") or str(c) in ("er", "rr", "er_avg"))
    out = ["<table>"]
    if header:
        out.append(header)
    else:
        out.append("<tr>" + "".join(f'<th class="{"l" if c in left else ""}">{esc(c)}</th>' for c in cols) + "</tr>")
    recs = df.to_dict(orient="records")
    for r in recs[: max_rows or len(recs)]:
        cls = f' class="role-{esc(r.get(role_col))}"' if role_col and role_col in r else ""
        tds = []
        for c in cols:
            v = r[c]
            s = fmt(v, nd, signed(c))
            k = "l" if c in left or not isinstance(v, (int, float)) else ""
            if signed(c) and isinstance(v, float) and not math.isnan(v):
                k = "pos" if v > 0 else "neg" if v < 0 else ""
            tds.append(f'<td class="{k}">{esc(s)}</td>')
        out.append(f"<tr{cls}>" + "".join(tds) + "</tr>")
    out.append("</table>")
    if max_rows and len(recs) > max_rows:
        out.append(f'<p class="muted">{len(recs) - max_rows} more rows in the CSV.</p>')
    return "\n".join(out)


def img_html(png: bytes, alt: str, links: Mapping[str, str] | None = None) -> str:
    data = base64.b64encode(png).decode("ascii")
    ln = ""
    if links:
        ln = '<p class="muted">' + " ".join(f'<a href="{href(p)}">{esc(k.upper())}</a>' for k, p in links.items()) + "</p>"
    return f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}">{ln}</figure>'


def pre_json(obj) -> str:
    return f"<pre>{esc(json.dumps(obj, indent=2, sort_keys=True, default=str))}</pre>"


def absent(what: str) -> str:
    return f'<p class="absent">absent: {esc(what)}</p>'


def section(sid: str, title: str, body: str) -> str:
    return f'<section id="{esc(sid)}">\n<h2>{esc(title)}</h2>\n{body}\n</section>'


def page(title: str, sections: Sequence[tuple[str, str, str]], subtitle: str = "", intro: str = "") -> str:
    """The whole page; ``intro``: HTML (already escaped by the caller) between the subtitle and the
    table of contents."""
    nav = "<nav>" + "".join(f'<a href="#{esc(s)}">{esc(t)}</a>' for s, t, _ in sections) + "</nav>"
    body = "\n".join(section(*s) for s in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\n"
            f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{esc(title)}</h1>\n"
            f'<p class="muted">{esc(subtitle)}</p>\n{intro}\n{nav}\n{body}\n</body>\n</html>\n')
