"""File writing and sprite loading shared by the world build and its split generators."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from roz.world.concepts import CONCEPTS, EXTRAS


def json_bytes(obj, indent=2) -> bytes:
    return (json.dumps(obj, indent=indent, ensure_ascii=False) + "\n").encode()


def write_bytes(root: Path, rel: str, data: bytes) -> str:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, p)
    return hashlib.sha256(data).hexdigest()


def load_sprites(assets) -> dict:
    from roz.world.assets import STYLES, assets_dir, file_key
    from roz.world.render import load_sprite_cached

    out = {}
    items = [(c.codepoint, c.fluent) for c in CONCEPTS] + [(e[0], e[1]) for e in EXTRAS]
    for cp, fl in items:
        for style in STYLES:
            p = assets.path(style, cp, fl)
            sha = assets.files_sha.get(file_key(assets, p)) or hashlib.sha256(p.read_bytes()).hexdigest()
            out[(style, cp)] = load_sprite_cached(p, sha, assets_dir() / "sprites", extra_dirs=assets.sprite_dirs())
    return out
