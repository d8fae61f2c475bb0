"""The report's sections, in page order: :data:`SECTIONS`.

Contract (:class:`roz.report.sections.base.Section`): a section is one object with

* ``sid`` and ``title``: its HTML id (anchor) and heading;
* ``collect(ctx)``: its data, read from the shared
  :class:`~roz.report.context.ReportContext` (built once from the result store; sections never
  read unit records themselves), or ``None`` when the run has nothing for it;
* ``write(data, ctx, files)``: its tables and figures, through
  :class:`~roz.report.output.ReportFiles` (which records them under a name for links);
* ``render(data, ctx, files)``: its HTML body, every text escaped;
* ``absent(ctx)``: the HTML body when ``collect`` gave ``None`` (why it is absent), or ``None``
  to leave the section out of the page;
* ``to_json(data, ctx)``: its entries of ``report.json`` (also called when absent).

:func:`roz.report.build.build_report` collects every section first (so a bad option fails before
any drawing), then writes them in order, then renders them in order. Adding a section is one
module here and one line in :data:`SECTIONS`.
"""

from __future__ import annotations

from roz.report.sections.attacks import ATTACKS
from roz.report.sections.base import Section
from roz.report.sections.config import Config
from roz.report.sections.corruptions import Corruptions
from roz.report.sections.datasets import Datasets
from roz.report.sections.downloads import Downloads
from roz.report.sections.er_figures import ERFigures
from roz.report.sections.fits import Fits
from roz.report.sections.headline import Headline
from roz.report.sections.overlap import Overlap
from roz.report.sections.perturbations import Perturbations
from roz.report.sections.protocol import Protocol
from roz.report.sections.relative import Relative
from roz.report.sections.typographic import TYPOGRAPHIC

#: The page, top to bottom. Downloads lists what the sections before it wrote.
SECTIONS: list[Section] = [Headline(), ERFigures(), Fits(), Relative(), Corruptions(), Perturbations(), ATTACKS,
                           TYPOGRAPHIC, Overlap(), Datasets(), Config(), Downloads(), Protocol()]

__all__ = ["SECTIONS", "Section"]
