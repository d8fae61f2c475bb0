"""Word cards: the reading probe (can a model read a class name written alone on a plain card?).

Not a distribution shift of the images: for every sample the input image is thrown away and
replaced by a freshly rendered *word card* -- a plain background of a random colour with the
sample's TRUE class name written once, in a contrasting colour. The model's zero-shot top-1 on
these cards is its **reading accuracy** (``roz.metrics.reading``). Its protocol:

* **classes**: only samples whose true class name is a single word (``is_single_word``, the
  typographic attack's rule) get a card; the others are skipped (``ok = False``, written label
  ``-1``) and counted, exactly as the typographic shift skips. Predictions are over the dataset's
  full label space (multi-word classes stay candidates).
* **fonts**: drawn per sample from :data:`HELDOUT_FONTS` (default; ``fonts=train`` for
  :data:`TRAIN_FONTS`, the fonts ROZ-Mini's corpus renders its training words with, or a list of
  stems / paths). Fonts ship with matplotlib. A font that does not render every letter a-z, A-Z is
  refused; per card, the font is drawn among those whose character map covers the name.
* **size**: the largest font size (px, the em height) with the drawn text at most ``w`` x the
  image width wide and the font size at most ``h`` x the shorter side, where ``w`` ~ U(min_width,
  max_width) and ``h`` ~ U(min_height, max_height) per sample (default 0.6-0.9 and 0.15-0.35); a
  card whose text does not fit at ``min_px`` pixels is skipped and counted.
* **position**: uniform among the positions where the whole drawn text lies inside the image; no
  rotation.
* **colours**: background uniform in RGB; text a uniform RGB colour whose luma (Rec. 601) differs
  from the background's by at least ``min_contrast`` (rejection sampling; black or white after 64
  draws).

Every draw is deterministic in the sample seed (salt ``word-cards``) and independent of the batch.
Sizes are fractions of the image, so the spec works at any resolution; the engine applies shifts
at model-input resolution. The probe is a capability measurement, not an effective-robustness axis
(``roz.engine.tables`` derives no axis from it).
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from roz.datasets.classes import get_class_set
from roz.errors import RozError
from roz.shifts.base import Shift
from roz.shifts.typographic import is_single_word

#: Fonts of the probe (matplotlib's TTF file stems): never used to render ROZ-Mini's training words.
HELDOUT_FONTS = ("DejaVuSerif-Italic", "DejaVuSans-BoldOblique", "DejaVuSansMono-Oblique", "STIXGeneralItalic",
                 "cmr10", "cmb10")
#: Fonts ROZ-Mini's corpus renders its training words with (disjoint from HELDOUT_FONTS).
TRAIN_FONTS = ("DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique", "DejaVuSansMono", "DejaVuSansMono-Bold",
               "DejaVuSerif", "DejaVuSerif-Bold", "STIXGeneral", "STIXGeneralBol", "cmss10", "cmtt10")
FONT_SETS = {"heldout": HELDOUT_FONTS, "train": TRAIN_FONTS}
#: Letters every font of the probe must render.
REQUIRED_GLYPHS = string.ascii_lowercase + string.ascii_uppercase
#: Parameters of the probe (spec options) and their defaults.
DEFAULTS = {"fonts": "heldout", "min_width": 0.6, "max_width": 0.9, "min_height": 0.15, "max_height": 0.35,
            "min_contrast": 0.4, "min_px": 4}
#: The probe's rules in words, recorded with every result.
RULES = {"content": "the true class name once on a plain background of a random colour; the input image is discarded",
         "size": "largest font size (em px) <= h x shorter side with drawn text width <= w x image width, "
                 "w ~ U(min_width, max_width), h ~ U(min_height, max_height)",
         "position": "uniform where the whole drawn text fits; no rotation",
         "colour": "text luma differs from the background's by >= min_contrast (Rec. 601)",
         "font": "uniform among the fonts whose character map covers the name",
         "skip": "multi-word true class name, no font covering the name, or text not fitting at min_px",
         "score": "zero-shot top-1 over the dataset's full label space (roz.metrics.reading)"}
#: The probe's protocol version: enters every word-cards unit's id (results of another version are not reused).
VERSION = 1
_LUMA = np.array([0.299, 0.587, 0.114])
_COLOUR_TRIES = 64


@lru_cache(maxsize=2048)  # fonts x the sizes the bisection probes: larger than the typographic shift's cache
def _font(path: str, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, px)


def font_dir() -> Path:
    """matplotlib's folder of TrueType fonts."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def available_stems() -> list[str]:
    return sorted(p.stem for p in font_dir().glob("*.ttf"))


@lru_cache(maxsize=64)
def _cmap(path: str) -> frozenset[int]:
    # the character map says which characters have a glyph; PIL would silently draw .notdef boxes
    from fontTools.ttLib import TTFont

    with TTFont(path, lazy=True) as font:
        return frozenset(font.getBestCmap() or {})


def covers(path: str, text: str) -> bool:
    """Whether the font at ``path`` has a glyph for every non-space character of ``text``."""
    cmap = _cmap(path)
    return all(ord(c) in cmap for c in text if not c.isspace())


@lru_cache(maxsize=64)
def glyph_problem(path: str) -> str | None:
    """Why the font cannot serve the probe, or None: a letter a-z / A-Z without a glyph, with no
    ink, or drawn like another letter (a fallback font's one box for every character). A font that
    maps letters to other symbols (matplotlib's cmsy10, cmex10) passes: choose fonts by name."""
    missing = [c for c in REQUIRED_GLYPHS if not covers(path, c)]
    if missing:
        return f"no glyph for {''.join(missing)!r}"
    font = _font(path, 24)
    boxes = {c: font.getbbox(c) for c in REQUIRED_GLYPHS}
    empty = [c for c, (left, top, right, bottom) in boxes.items() if right <= left or bottom <= top]
    if empty:
        return f"letters {''.join(empty)!r} draw no ink"
    shapes = {(boxes[c], bytes(font.getmask(c))) for c in REQUIRED_GLYPHS}
    return None if len(shapes) == len(REQUIRED_GLYPHS) else "several letters draw the same glyph"


def _font_path(item: str) -> str:
    if Path(item).suffix.lower() in (".ttf", ".otf") and Path(item).is_file():
        return str(Path(item).resolve())
    path = font_dir() / f"{item}.ttf"
    if path.is_file():
        return str(path)
    raise RozError(f"word-cards: unknown font {item!r}",
                   hint=f"fonts= takes heldout (default), train, or a list of font files or of matplotlib's font "
                        f"stems: {', '.join(available_stems())}")


def resolve_fonts(fonts: str | Sequence[str] = "heldout") -> tuple[list[str], list[str]]:
    """``(usable font paths, dropped "stem: reason")`` of ``heldout`` / ``train`` / a comma list of
    stems or paths (or a sequence of them). No usable font left is a RozError."""
    if isinstance(fonts, str):
        items = list(FONT_SETS.get(fonts.strip(), [f.strip() for f in fonts.split(",") if f.strip()]))
    else:
        items = [str(f) for f in fonts]
    if not items:
        raise RozError("word-cards: no font given", hint="fonts=heldout (default), train, or a list of font stems")
    paths, dropped = [], []
    for item in items:
        path = _font_path(item)
        why = glyph_problem(path)
        if why is None:
            paths.append(path)
        else:
            dropped.append(f"{Path(path).stem}: {why}")
    if not paths:
        raise RozError(f"word-cards: none of the fonts {items} renders every letter a-z, A-Z ({'; '.join(dropped)})",
                       hint="choose fonts with Latin letters, e.g. fonts=heldout")
    return paths, dropped


def _sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@dataclass(frozen=True)
class Card:
    """One drawn card: the written class and text, font file and size (px), the drawn text's box
    ``(left, top, right, bottom)`` (exclusive right/bottom) and the two colours (RGB in [0, 1])."""

    label: int
    text: str
    font: str
    px: int
    box: tuple[int, int, int, int]
    background: tuple[float, float, float]
    ink: tuple[float, float, float]


def _extent(path: str, px: int, text: str) -> tuple[int, int, int, int]:
    return _font(path, px).getbbox(text)


def fit_px(path: str, text: str, max_w: float, max_px: float, H: int, W: int, min_px: int) -> int | None:
    """The largest font size in ``[min_px, max_px]`` whose drawn ``text`` is at most ``max_w`` px
    wide and fits in the image; None when even ``min_px`` does not."""

    def fits(px: int) -> bool:
        left, top, right, bottom = _extent(path, px, text)
        return right - left <= max_w and bottom - top <= H and right - left <= W

    lo, hi = int(min_px), int(np.floor(max_px))
    if hi < lo or not fits(lo):
        return None
    while lo < hi:  # drawn width grows with the size: bisect for the last size that fits
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


class WordCards(Shift):
    """Replace every image by a card with its true single-word class name (module docstring)."""

    name = "word-cards"
    needs_targets = True
    probe = "reading"  # the engine scores it with roz.metrics.reading, not as an attack

    def __init__(self, label_names: Sequence[str] | str, fonts: str | Sequence[str] = "heldout",
                 min_width: float = 0.6, max_width: float = 0.9, min_height: float = 0.15, max_height: float = 0.35,
                 min_contrast: float = 0.4, min_px: int = 4):
        if isinstance(label_names, str):
            label_names = get_class_set(label_names).names
        self.label_names = [str(n) for n in label_names]
        self.candidates = [i for i, n in enumerate(self.label_names) if is_single_word(n)]
        if not self.candidates:
            raise RozError("word-cards: the class set has no single-word class name to write",
                           hint="the probe writes single-word class names (no whitespace) only")
        for lo, hi, what in ((min_width, max_width, "width"), (min_height, max_height, "height")):
            if not 0 < float(lo) <= float(hi) <= 1:
                raise RozError(f"word-cards: need 0 < min_{what} <= max_{what} <= 1, got {lo} and {hi}",
                               hint=f"text {what} as fractions of the image, e.g. min_{what}=0.6,max_{what}=0.9")
        if not 0 <= float(min_contrast) < 1 or int(min_px) < 1:
            raise RozError(f"word-cards: min_contrast must be in [0, 1) and min_px >= 1, got {min_contrast}, {min_px}",
                           hint="defaults: min_contrast=0.4, min_px=4")
        self.fonts_spec = fonts if isinstance(fonts, str) else ",".join(map(str, fonts))
        self.font_paths, self.dropped_fonts = resolve_fonts(fonts)
        self.width = (float(min_width), float(max_width))
        self.height = (float(min_height), float(max_height))
        self.min_contrast, self.min_px = float(min_contrast), int(min_px)

    def params(self) -> dict:
        return {"version": VERSION, "fonts": self.fonts_spec, "font_files": [Path(p).name for p in self.font_paths],
                "font_sha256": {Path(p).name: _sha(p) for p in self.font_paths},
                "dropped_fonts": list(self.dropped_fonts), "min_width": self.width[0], "max_width": self.width[1],
                "min_height": self.height[0], "max_height": self.height[1], "min_contrast": self.min_contrast,
                "min_px": self.min_px, "n_candidate_classes": len(self.candidates),
                "rules": dict(RULES)}  # a mapping: kept out of the shift's short label (engine.tables.shift_label)

    def _rng(self, seed: int) -> np.random.Generator:
        h = hashlib.blake2b(f"{int(seed)}:word-cards".encode(), digest_size=8).digest()
        return np.random.default_rng(int.from_bytes(h, "little"))

    def _colours(self, rng: np.random.Generator) -> tuple[tuple, tuple]:
        bg = rng.uniform(0.0, 1.0, 3)
        for _ in range(_COLOUR_TRIES):
            ink = rng.uniform(0.0, 1.0, 3)
            if abs(float(_LUMA @ ink) - float(_LUMA @ bg)) >= self.min_contrast:
                break
        else:
            ink = np.zeros(3) if float(_LUMA @ bg) >= 0.5 else np.ones(3)
        return tuple(map(float, bg)), tuple(map(float, ink))

    def card(self, seed: int, target: int, H: int, W: int) -> Card | None:
        """The card of a sample, or None when it is skipped (module docstring)."""
        if not 0 <= target < len(self.label_names) or not is_single_word(self.label_names[target]):
            return None
        text = self.label_names[target].strip()
        fonts = [p for p in self.font_paths if covers(p, text)]
        if not fonts:
            return None
        rng = self._rng(seed)
        font = fonts[int(rng.integers(len(fonts)))]
        w_frac, h_frac = rng.uniform(*self.width), rng.uniform(*self.height)
        bg, ink = self._colours(rng)
        px = fit_px(font, text, w_frac * W, h_frac * min(H, W), H, W, self.min_px)
        if px is None:
            return None
        left, top, right, bottom = _extent(font, px, text)
        w, h = right - left, bottom - top
        x0, y0 = int(rng.integers(0, W - w + 1)), int(rng.integers(0, H - h + 1))
        return Card(target, text, font, px, (x0, y0, x0 + w, y0 + h), bg, ink)

    def text_mask(self, card: Card, H: int, W: int) -> np.ndarray:
        """The card's anti-aliased text coverage, float32 [H, W] in [0, 1]."""
        font = _font(card.font, card.px)
        left, top, _, _ = font.getbbox(card.text)
        mask = Image.new("L", (W, H), 0)
        ImageDraw.Draw(mask).text((card.box[0] - left, card.box[1] - top), card.text, font=font, fill=255)
        return np.asarray(mask, dtype=np.float32) / 255.0

    def render(self, card: Card, H: int, W: int) -> np.ndarray:
        """The card as float32 [3, H, W] in [0, 1]."""
        m = self.text_mask(card, H, W)[None]
        bg = np.asarray(card.background, np.float32)[:, None, None]
        ink = np.asarray(card.ink, np.float32)[:, None, None]
        return bg * (1 - m) + ink * m

    def apply_with_labels(self, x: torch.Tensor, seeds: torch.Tensor, targets: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(cards, written_labels [B] long (the target; -1 if skipped), ok [B] bool)``; a skipped
        sample's image is returned unchanged."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{self.name}: expected a batch [B, 3, H, W], got shape {tuple(x.shape)}")
        if seeds.shape[0] != x.shape[0] or targets.shape[0] != x.shape[0]:
            raise ValueError(f"{self.name}: batch of {x.shape[0]} with {seeds.shape[0]} seeds, {targets.shape[0]} targets")
        B, _, H, W = x.shape
        out = x.detach().clone()
        written = torch.full((B,), -1, dtype=torch.long)
        ok = torch.zeros(B, dtype=torch.bool)
        for i, (s, y) in enumerate(zip(seeds.detach().cpu().tolist(), targets.detach().cpu().tolist())):
            card = self.card(int(s), int(y), H, W)
            if card is None:
                continue
            out[i] = torch.from_numpy(self.render(card, H, W)).to(x.device, x.dtype)
            written[i], ok[i] = card.label, True
        return out.clamp(0, 1), written.to(x.device), ok.to(x.device)

    def apply(self, x: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        raise TypeError("word-cards needs the true labels: call apply_with_labels(x, seeds, targets) "
                        "(the engine does this for shifts with needs_targets = True)")
