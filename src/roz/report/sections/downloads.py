"""Downloads: every table the other sections wrote (CSV, Parquet, LaTeX), in section order."""

from __future__ import annotations

from roz.report import html
from roz.report.sections.base import Section


class Downloads(Section):
    sid = "downloads"
    title = "Downloads (CSV, Parquet, LaTeX)"

    def collect(self, ctx):
        return True  # always present; what it lists is known once the others have written

    def render(self, data, ctx, files):
        items = [f"<li>{html.esc(name)}: {files.links(name)}</li>" for name in files.written]
        items.append(f'<li>machine-readable: <a href="{html.href("report.json")}">report.json</a>, '
                     f'<a href="{html.href("summary.txt")}">summary.txt</a></li>')
        return "<ul>" + "\n".join(items) + "</ul>"
