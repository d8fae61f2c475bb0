"""A report that fails half-way leaves the previous report as it was, and no partial file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from roz.report import build_report
from roz.report import figures as F
from roz.report.sections.attacks import ATTACKS


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _boom(*args, **kwargs):
    raise RuntimeError("killed mid-report")


def _fail_attack_figure(monkeypatch):
    monkeypatch.setattr(F, "attack_figure", _boom)  # drawn after the headline tables and figures


def _fail_attacks_write(monkeypatch):
    monkeypatch.setattr(ATTACKS, "write", _boom)


@pytest.mark.parametrize("fail", [_fail_attack_figure, _fail_attacks_write])
def test_failed_report_keeps_previous_one(fixture_run, tmp_path, monkeypatch, fail):
    out = tmp_path / "report"
    build_report(fixture_run, out, formats=("png", "svg"))
    before = _snapshot(out)
    assert "index.html" in before and "figures/attacks.svg" in before and "tables/headline.csv" in before
    fail(monkeypatch)
    with pytest.raises(RuntimeError, match="killed mid-report"):
        # other options than the first report's: a non-atomic writer would change its files
        build_report(fixture_run, out, n_boot=50, seed=1, title="second", formats=("png", "svg"))
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no staging folder left beside it


def test_rerender_replaces_report_and_keeps_foreign_files(fixture_run, tmp_path):
    out = tmp_path / "report"
    build_report(fixture_run, out, formats=("png",))
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # not the private mode of a temporary folder
    (out / "figures" / "stale.png").write_bytes(b"old figure")
    (out / "notes.md").write_text("mine")
    index = build_report(fixture_run, out, formats=("png", "svg"), title="second")
    assert "second" in index.read_text()
    assert (out / "figures" / "attacks.svg").is_file()
    assert not (out / "figures" / "stale.png").exists()  # the figures folder is the new one, whole
    assert (out / "notes.md").read_text() == "mine"  # a file the report does not write is left alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
