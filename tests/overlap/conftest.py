"""Fixtures live in overlap_fixtures.py (a uniquely named module, importable from tests)."""

from overlap_fixtures import *  # noqa: F401,F403
