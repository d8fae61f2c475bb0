"""Fixtures live in attacks_fixtures.py (a uniquely named module, importable from tests)."""

from attacks_fixtures import *  # noqa: F401,F403
