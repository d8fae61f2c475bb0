"""The package layering (pyproject ``[tool.importlinter]``, docs/layering.md) and the lint rules
(``[tool.ruff]``) hold: both linters run here, so ``make test`` enforces them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _lint_imports(src: Path, config: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    cmd = [str(exe)] if exe.exists() else [shutil.which("lint-imports") or "lint-imports"]
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([*cmd, "--config", str(config), "--no-cache"], cwd=src.parent, env=env,
                          capture_output=True, text=True, timeout=300)


def test_layering_contracts_are_kept():
    r = _lint_imports(REPO / "src", REPO / "pyproject.toml")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout


@pytest.mark.parametrize("module, line, broken", [
    # an upward import inside a function (how the old cycles hid) is caught ...
    ("datasets/base.py", "def _upward():\n    import roz.world  # noqa: F401\n", "roz.datasets is not allowed to import roz.world"),
    # ... and so is a forbidden sibling import
    ("attacks/base.py", "from roz.shifts.base import Shift  # noqa: F401\n", "roz.attacks is not allowed to import roz.shifts"),
])
def test_layering_contract_catches_a_violation(tmp_path, module, line, broken):
    src = tmp_path / "src"
    shutil.copytree(REPO / "src" / "roz", src / "roz", ignore=shutil.ignore_patterns("__pycache__", "*.pt", "assets",
                                                                                      "checkpoints"))
    with open(src / "roz" / module, "a") as f:
        f.write("\n\n" + line)
    r = _lint_imports(src, REPO / "pyproject.toml")
    assert r.returncode != 0 and broken in r.stdout, r.stdout[-4000:]


def test_ruff_passes():
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "src", "tests"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_no_import_cycles():
    """No two modules of roz import each other, directly or through others (imports inside
    functions included): the old datasets.classes <-> datasets.registry and world.build <->
    world.splits cycles hid behind function-level imports."""
    code = ("import grimp, sys\n"
            "g = grimp.build_graph('roz', cache_dir=None)\n"
            "cycles = sorted({tuple(sorted((m, i))) for m in g.modules for i in g.find_modules_directly_imported_by(m)\n"
            "                 if g.find_shortest_chain(importer=i, imported=m)})\n"
            "print(cycles); sys.exit(1 if cycles else 0)\n")
    r = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]
