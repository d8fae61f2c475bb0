"""Metric protocol: every choice behind the effective-robustness numbers (left out without them)."""

from __future__ import annotations

from roz.report import html
from roz.report.sections.base import Section


class Protocol(Section):
    sid = "protocol"
    title = "Metric protocol"

    def collect(self, ctx):
        return ctx.er

    def render(self, er, ctx, files):
        return html.pre_json(er.protocol)

    def absent(self, ctx):
        return None  # no effective-robustness result: no protocol to show
