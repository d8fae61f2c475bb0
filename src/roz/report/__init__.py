"""Reports: tables, figures and a self-contained HTML page rendered from a run's result store.

Entry point: :func:`build_report` (``roz report RUN_DIR``). Nothing here runs a model.
"""

from __future__ import annotations


def build_report(run_dir, out=None, baseline="run", **kwargs):
    """Render ``run_dir`` into ``out`` (default ``run_dir/report``); returns the index.html path.

    See :func:`roz.report.build.build_report` for every option.
    """
    from roz.report.build import build_report as _build

    return _build(run_dir, out, baseline, **kwargs)


__all__ = ["build_report"]
