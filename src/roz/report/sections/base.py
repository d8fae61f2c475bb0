"""The section contract (see :mod:`roz.report.sections`) and small helpers sections share."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from roz.report import html


class Section(ABC):
    """One section of the report. Subclasses set :attr:`sid` and :attr:`title` and override
    :meth:`collect` and :meth:`render`, and :meth:`write`, :meth:`absent` and :meth:`to_json`
    where they have something to say."""

    sid: str = ""  # the HTML id and anchor
    title: str = ""

    def collect(self, ctx) -> Any | None:
        """This section's data from the shared :class:`~roz.report.context.ReportContext`, or
        None when the run has nothing for it (then :meth:`absent` is rendered)."""
        return None

    def write(self, data, ctx, files) -> None:
        """Write tables and figures through :class:`~roz.report.output.ReportFiles`."""

    @abstractmethod
    def render(self, data, ctx, files) -> str:
        """The section's HTML body (every text escaped)."""

    def absent(self, ctx) -> str | None:
        """The HTML body saying why the section is absent; None leaves the section out."""
        return html.absent(f"no {self.title.lower()} in this run")

    def to_json(self, data, ctx) -> dict:
        """Entries of ``report.json`` (called with ``data`` None when absent too)."""
        return {}


class FigureTableSection(Section):
    """A section of one kind of unit: its table (written and shown, named ``sid``) under an
    optional figure of the same name.

    ``data``: the units (:class:`~roz.report.context.UnitRow`) -> a dict with ``"table"``, or
    None; ``draw``: that dict -> a matplotlib figure, or None for none; ``left``: left-aligned
    columns; ``alt``: the figure's alt text; ``units``: what the run lacks when absent
    ("no <units> units in this run"); ``notes``: that dict -> explanatory notes shown under the table."""

    def __init__(self, sid: str, title: str, *, data: Callable, draw: Callable, left: Sequence[str], alt: str,
                 units: str, notes: Callable | None = None):
        self.sid, self.title, self.left, self.alt, self.units = sid, title, tuple(left), alt, units
        self._data, self._draw, self._notes = data, draw, notes

    def collect(self, ctx):
        return self._data(ctx.units)

    def write(self, data, ctx, files) -> None:
        files.table(self.sid, data["table"])
        fig = self._draw(data)
        if fig is not None:
            files.figure(self.sid, fig, self.alt)

    def render(self, data, ctx, files) -> str:
        body = []
        fig = files.figure_html(self.sid)
        if fig:
            body.append(fig)
        body += [html.table_html(data["table"], left=self.left), f"<p>Download: {files.links(self.sid)}</p>"]
        if self._notes is not None:
            body.append(notes_html(self._notes(data)))
        return "\n".join(body)

    def absent(self, ctx) -> str:
        return html.absent(f"no {self.units} units in this run")


def notes_html(parts: Sequence[str]) -> str:
    """Explanatory notes, one muted paragraph each."""
    return "\n".join(f'<p class="muted">{html.esc(t)}</p>' for t in parts)


def slug(s: str) -> str:
    """A file-name-safe stem."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("_") or "x"


def ci_text(lo, hi, nd: int = 1, sign: bool = False) -> str:
    """``[lo, hi]`` with a no-break space, "–" when either end is missing."""
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        return "–"
    if np.isnan(lo) or np.isnan(hi):
        return "–"
    return f"[{lo:+.{nd}f},\u00a0{hi:+.{nd}f}]" if sign else f"[{lo:.{nd}f},\u00a0{hi:.{nd}f}]"  # no-break space
