"""Dataset-level choices as string enums, in a module without heavy imports (the CLI lists them
as choices without loading torch)."""

from __future__ import annotations

from enum import StrEnum


class BadImagePolicy(StrEnum):
    """What an unreadable image does: stop the unit, or skip it and list it with the result."""

    FAIL = "fail"
    SKIP = "skip"
