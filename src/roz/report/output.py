"""Where a report's files go: a staging folder beside the target, moved in once complete.

:func:`staged` yields a fresh hidden folder next to ``out`` (same file system, so moves are
renames); every figure, table, ``report.json``, ``summary.txt`` and ``index.html`` is written
there. Only when the whole report rendered does :func:`install` move it in: a new ``out`` is one
rename; an existing one gets its ``figures/`` and ``tables/`` folders swapped whole and its files
replaced one rename each, ``index.html`` last. A report that fails (or is killed) before that
leaves the previous report untouched and never a truncated file; on an exception the staging
folder is removed. Files in ``out`` that the report does not write are left alone.

:class:`ReportFiles` is what sections write through: it records every table and figure under a
name so that sections can link them (:meth:`ReportFiles.links`, relative paths only).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from roz.report import figures
from roz.report import html
from roz.report import tables


class ReportFiles:
    """The files of one report being written under ``root`` (the staging folder)."""

    def __init__(self, root: Path, formats: Sequence[str] = ("png", "svg")):
        self.root = Path(root)
        self.formats = tuple(formats)
        self.written: dict[str, dict[str, str]] = {}  # name -> {format: path relative to the report}
        self.figures: dict[str, tuple[bytes, dict[str, str], str]] = {}  # name -> (PNG, links, alt)
        (self.root / "figures").mkdir(parents=True, exist_ok=True)
        (self.root / "tables").mkdir(parents=True, exist_ok=True)

    def _rel(self, path: Path) -> str:
        return os.path.relpath(path, self.root)

    def table(self, name: str, df) -> None:
        """``tables/<name>.csv`` and ``.parquet``, linked under ``name``."""
        paths = tables.write_table(df, self.root / "tables" / name)
        self.written[name] = {k: self._rel(p) for k, p in paths.items()}

    def text(self, relpath: str, text: str, name: str | None = None, fmt: str | None = None) -> None:
        """A UTF-8 text file; with ``name`` also linked as that table's ``fmt`` download."""
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if name is not None:
            self.written.setdefault(name, {})[fmt or path.suffix.lstrip(".")] = self._rel(path)

    def figure(self, name: str, fig, alt: str) -> None:
        """``figures/<name>.<format>`` for each format; the PNG is also kept for inlining."""
        paths, png = figures.save(fig, self.root / "figures" / name, self.formats)
        self.figures[name] = (png, {k: self._rel(p) for k, p in paths.items()}, alt)

    def figure_html(self, name: str) -> str:
        """The inlined figure with its download links, or "" when it was not drawn."""
        if name not in self.figures:
            return ""
        png, links, alt = self.figures[name]
        return html.img_html(png, alt, links)

    def links(self, name: str) -> str:
        """Escaped links to every file written under ``name`` ("" when none)."""
        d = self.written.get(name) or {}
        return " ".join(f'<a href="{html.href(p)}">{html.esc(k.upper())}</a>' for k, p in d.items())


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A staging folder beside ``out``; installed into ``out`` when the block succeeds, removed
    when it raises."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    stage.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the report folder is not
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    install(stage, out)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def install(stage: Path, out: Path) -> None:
    """Move the complete report in ``stage`` into ``out`` (see the module docstring)."""
    if not out.exists():
        os.replace(stage, out)
        return
    # os.replace cannot put a folder over a non-empty one: move the old one aside first
    trash = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
    try:
        for src in sorted(stage.iterdir(), key=lambda p: p.name == "index.html"):  # the page last
            dst = out / src.name
            if dst.is_dir() and not dst.is_symlink():
                os.replace(dst, trash / src.name)
            os.replace(src, dst)
    finally:
        shutil.rmtree(trash, ignore_errors=True)
        shutil.rmtree(stage, ignore_errors=True)
