"""User-facing errors.

Every error a user can cause (bad spec, missing data, bad image, ...) is raised as a
``RozError`` whose message says what was expected, where, and how to fix it. The CLI prints
these as one readable block without a traceback; anything else is a bug in ROZ.
"""

from __future__ import annotations


class RozError(Exception):
    """An actionable, user-facing error.

    ``RozError(what, hint=...)``: ``what`` states the problem (with the offending path/value),
    ``hint`` says how to fix it.
    """

    def __init__(self, what: str, hint: str | None = None):
        self.what = what
        self.hint = hint
        super().__init__(what if not hint else f"{what}\n  hint: {hint}")


class DataError(RozError):
    """A dataset root, file or image is missing, malformed or unreadable."""


class ModelError(RozError):
    """A model spec, config or weight file is unknown, missing or incompatible."""


class StoreError(RozError):
    """A run directory is missing, corrupt, or written by an incompatible ROZ version."""


class ConfigError(RozError):
    """A run config or command-line option is invalid; raised before anything runs."""
