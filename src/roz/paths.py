"""Where ROZ keeps downloaded assets, built worlds and caches.

``ROZ_HOME`` (default ``~/.cache/roz``) holds everything that can be rebuilt; nothing under it
is ever committed.
"""

from __future__ import annotations

import os
from pathlib import Path


def roz_home() -> Path:
    return Path(os.environ.get("ROZ_HOME", Path.home() / ".cache" / "roz")).expanduser()


def cache_dir(kind: str) -> Path:
    p = roz_home() / "cache" / kind
    p.mkdir(parents=True, exist_ok=True)
    return p
