"""Sprites: every artwork file rendered once to a tight RGBA image, and text rendering.

SVGs (OpenMoji, Fluent) are rasterised with resvg at ``SVG_PX``; PNGs (Noto/Google, Twemoji)
are read as they ship (64 px).  Each sprite is cropped to the bounding box of its alpha.
Text uses DejaVu Sans (shipped by matplotlib), so renders are the same on every machine.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from roz.errors import DataError

SVG_PX = 96


SPRITE_CACHE_VERSION = 1


def load_sprite_cached(path, sha256: str, cache_dir, extra_dirs=()) -> Image.Image:
    """``load_sprite`` through a PNG cache keyed by the artwork's sha256 (read from
    ``extra_dirs`` too, written to ``cache_dir``)."""
    from pathlib import Path

    sub = Path(f"v{SPRITE_CACHE_VERSION}-{SVG_PX}") / f"{sha256[:24]}.png"
    c = Path(cache_dir) / sub
    for d in [Path(cache_dir), *map(Path, extra_dirs)]:
        if (d / sub).is_file():
            try:
                im = Image.open(d / sub)
                im.load()
                return im.convert("RGBA")
            except OSError:
                pass
    im = load_sprite(path)
    c.parent.mkdir(parents=True, exist_ok=True)
    tmp = c.with_name(f".{c.name}.{__import__('os').getpid()}.tmp")
    im.save(tmp, "PNG")
    __import__("os").replace(tmp, c)
    return im


def load_sprite(path) -> Image.Image:
    path = str(path)
    if path.endswith(".svg"):
        import resvg_py

        try:
            png = resvg_py.svg_to_bytes(svg_path=path, width=SVG_PX, height=SVG_PX, skip_system_fonts=True)
        except Exception as e:  # resvg raises ValueError on bad SVG
            raise DataError(f"cannot render {path}: {e}", hint="the asset is corrupt; delete the asset cache") from None
        im = Image.open(io.BytesIO(bytes(png)))
    else:
        im = Image.open(path)
    im = im.convert("RGBA")
    im.load()
    a = np.asarray(im)[:, :, 3]
    ys, xs = np.nonzero(a > 8)
    if len(xs) == 0:
        raise DataError(f"{path}: empty artwork")
    return im.crop((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))


@lru_cache(maxsize=None)
def font_path() -> str:
    try:
        from matplotlib import font_manager

        p = font_manager.findfont("DejaVu Sans", fallback_to_default=False)
        if p:
            return p
    except Exception:
        pass
    raise DataError(
        "the DejaVu Sans font (shipped with matplotlib) is not available",
        hint="pip install matplotlib",
    )


@lru_cache(maxsize=64)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    p = font_path()
    if bold:
        b = p.replace("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")
        try:
            return ImageFont.truetype(b, size)
        except OSError:
            pass
    return ImageFont.truetype(p, size)


def train_font_paths() -> tuple[str, ...]:
    """The TrueType files the corpus writes its words in: :data:`roz.shifts.word_cards.TRAIN_FONTS`,
    never the reading probe's held-out fonts."""
    from roz.shifts.word_cards import TRAIN_FONTS, font_dir

    paths = tuple(str(font_dir() / f"{stem}.ttf") for stem in TRAIN_FONTS)
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise DataError(f"fonts {missing} are not among matplotlib's bundled fonts", hint="reinstall matplotlib")
    return paths


@lru_cache(maxsize=512)
def _font_at(path: str | None, size: int, bold: bool) -> ImageFont.FreeTypeFont:
    return font(size, bold) if path is None else ImageFont.truetype(path, size)


@lru_cache(maxsize=8192)
def _fit(text: str, max_w: int, max_h: int, bold: bool, path: str | None = None,
         max_size: int = 28) -> tuple[int, int, int, int, int]:
    """Largest font size (<= max_size) at which the text fits; with its bounding box."""
    d = ImageDraw.Draw(Image.new("L", (1, 1)))
    for size in range(max_size, 5, -1):
        bb = d.multiline_textbbox((0, 0), text, font=_font_at(path, size, bold), spacing=1, align="center")
        left, t, r, b = (int(round(v)) for v in bb)
        if r - left <= max_w and b - t <= max_h:
            break
    return size, left, t, r, b


def text_sprite(word: str, color: tuple, max_w: int, max_h: int, bold: bool = False, font_path: str | None = None,
                max_size: int = 28) -> Image.Image:
    """The word as a tight RGBA sprite no larger than max_w x max_h (two lines if needed), in DejaVu
    Sans (bold or not) or the TrueType file ``font_path``."""
    lines = [word]
    if " " in word and len(word) > 9:
        parts = word.split(" ")
        k = max(1, len(parts) // 2)
        lines = [" ".join(parts[:k]), " ".join(parts[k:])]
    text = "\n".join(lines)
    size, left, t, r, b = _fit(text, max_w, max_h, bold, font_path, max_size)
    im = Image.new("RGBA", (r - left + 2, b - t + 2), (0, 0, 0, 0))
    ImageDraw.Draw(im).multiline_text((1 - left, 1 - t), text, font=_font_at(font_path, size, bold),
                                      fill=tuple(color) + (255,), spacing=1, align="center")
    return im
