"""Typographic attack: write a wrong class name on the image (ImageNet-T, CIFAR-10-T).

Construction of Wang et al. (2024, arXiv 2403.10499): for each image draw a random *wrong* class
among the classes whose name is a single word, and write its name ``n_words`` times (ImageNet-T:
8, CIFAR-10-T: 4) at random non-overlapping positions, in white. Everything is a parameter:
font, size, colour, opacity, count, and an optional background box behind each word.

* The draw (written class, positions) is deterministic in the sample seed.
* The font size is a fraction of the image's shorter side (``size``), so the same spec works at
  32 px and 224 px. The shift acts wherever the engine applies shifts (normally model-input
  resolution, i.e. CIFAR images upsampled to 224 px).
* If the words do not fit (a word wider/taller than the image, or no free position for one of the
  words after ``max_tries`` random draws), the image is **skipped**: returned unchanged with
  ``ok = False`` and written label ``-1``; the engine drops and counts such samples.

The shift needs the true labels (to exclude the true class): the engine calls
``apply_with_labels(x, seeds, targets) -> (x_out, written_labels, ok)`` for shifts with
``needs_targets = True`` and stores ``written_label`` per sample; ``roz.metrics.typographic`` turns
predictions into accuracy and attack success rate. Plain ``apply`` raises.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from roz.datasets.classes import get_class_set
from roz.shifts.base import Shift


def default_font() -> str:
    """Path of DejaVu Sans (shipped with matplotlib)."""
    from matplotlib import font_manager

    return font_manager.findfont("DejaVu Sans", fallback_to_default=True)


@lru_cache(maxsize=64)
def _font(path: str, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, px)


def _resolve_font(font: str | None) -> str:
    if font is None:
        return default_font()
    if Path(font).is_file():
        return str(font)
    from matplotlib import font_manager

    return font_manager.findfont(font, fallback_to_default=True)


PRESETS = {
    None: {"n_words": 8, "size": 0.08},
    "imagenet-t": {"n_words": 8, "size": 0.08},  # ImageNet-T: 8 copies
    "cifar10-t": {"n_words": 4, "size": 0.10},  # CIFAR-10-T: 4 copies
}


def _rgb(c) -> tuple[float, float, float]:
    """An RGB triple in [0, 1] from floats, 0-255 ints or a colour name / ``#rrggbb``."""
    if isinstance(c, str):
        from PIL import ImageColor

        return tuple(v / 255.0 for v in ImageColor.getrgb(c)[:3])
    t = tuple(float(v) for v in c)
    if len(t) != 3:
        raise ValueError(f"typographic: colour {c!r} is not RGB")
    return tuple(v / 255.0 for v in t) if max(t) > 1 else t


def is_single_word(name: str) -> bool:
    """A class name that is one word: no whitespace (hyphenated names like 'T-shirt' count as one)."""
    n = name.strip()
    return bool(n) and not any(c.isspace() for c in n)


class Typographic(Shift):
    """Write a wrong single-word class name ``n_words`` times on each image."""

    name = "typographic"
    needs_targets = True

    def __init__(self, label_names: Sequence[str] | str, n_words: int | None = None, font: str | None = None,
                 size: float | None = None, color: tuple[float, float, float] | str = (1.0, 1.0, 1.0),
                 opacity: float = 1.0, box: bool = False, box_color: tuple[float, float, float] | str = (0.0, 0.0, 0.0),
                 box_opacity: float = 1.0, box_pad: float = 0.15, margin: int = 1, max_tries: int = 200,
                 lowercase: bool = False, preset: str | None = None):
        if preset not in PRESETS:
            raise ValueError(f"typographic: unknown preset {preset!r}; choose from {[p for p in PRESETS if p]}")
        n_words = PRESETS[preset]["n_words"] if n_words is None else n_words
        size = PRESETS[preset]["size"] if size is None else size
        self.preset = preset
        if isinstance(label_names, str):
            label_names = get_class_set(label_names).names
        self.label_names = [str(n) for n in label_names]
        self.candidates = [i for i, n in enumerate(self.label_names) if is_single_word(n)]
        if len(self.candidates) < 2:
            raise ValueError("typographic: fewer than two single-word class names to write")
        if n_words < 1:
            raise ValueError(f"typographic: n_words must be >= 1, got {n_words}")
        if not 0 < size <= 1:
            raise ValueError(f"typographic: size is a fraction of the image's shorter side in (0, 1], got {size}")
        if not 0 <= opacity <= 1 or not 0 <= box_opacity <= 1:
            raise ValueError("typographic: opacities must be in [0, 1]")
        self.n_words, self.size, self.opacity, self.box = int(n_words), float(size), float(opacity), bool(box)
        self.color, self.box_color = _rgb(color), _rgb(box_color)
        self.box_opacity, self.box_pad, self.margin = float(box_opacity), float(box_pad), int(margin)
        self.max_tries, self.lowercase = int(max_tries), bool(lowercase)
        self.font_path = _resolve_font(font)

    # presets ------------------------------------------------------------------------------------

    @classmethod
    def imagenet_t(cls, label_names: Sequence[str] | str = "imagenet-1k", **kw) -> "Typographic":
        """ImageNet-T: 8 words."""
        return cls(label_names, preset="imagenet-t", **kw)

    @classmethod
    def cifar10_t(cls, label_names: Sequence[str] | str = "cifar-10", **kw) -> "Typographic":
        """CIFAR-10-T: 4 words."""
        return cls(label_names, preset="cifar10-t", **kw)

    def params(self) -> dict:
        return {"preset": self.preset, "n_words": self.n_words, "font": Path(self.font_path).name, "size": self.size,
                "color": list(self.color), "opacity": self.opacity, "box": self.box,
                "box_color": list(self.box_color), "box_opacity": self.box_opacity, "box_pad": self.box_pad,
                "margin": self.margin, "max_tries": self.max_tries, "lowercase": self.lowercase,
                "n_candidate_classes": len(self.candidates), "skip_when_no_fit": True}

    # drawing ------------------------------------------------------------------------------------

    def _rng(self, seed: int) -> np.random.Generator:
        h = hashlib.blake2b(f"{int(seed)}:typographic".encode(), digest_size=8).digest()
        return np.random.default_rng(int.from_bytes(h, "little"))

    def draw_class(self, seed: int, target: int) -> int:
        """The written class for a sample (a single-word class other than the true one)."""
        true_name = self.label_names[target].strip().lower() if 0 <= target < len(self.label_names) else None
        cands = [c for c in self.candidates if c != target and self.label_names[c].strip().lower() != true_name]
        return int(cands[self._rng(seed).integers(len(cands))])

    def text_of(self, label: int) -> str:
        t = self.label_names[label].strip()
        return t.lower() if self.lowercase else t

    def layout(self, seed: int, target: int, H: int, W: int) -> tuple[int, str, list[tuple[int, int, int, int]]] | None:
        """``(written_label, text, boxes)`` or None if the words do not fit; boxes are
        ``(left, top, right, bottom)`` of each word's area (text extent plus box padding)."""
        label = self.draw_class(seed, target)
        text = self.text_of(label)
        rng = self._rng(seed)
        rng.integers(1 << 30)  # decorrelate positions from the class draw
        px = max(4, int(round(self.size * min(H, W))))
        font = _font(self.font_path, px)
        left, t, r, b = font.getbbox(text)
        pad = int(round(self.box_pad * px)) if self.box else 0
        w, h = (r - left) + 2 * pad, (b - t) + 2 * pad
        if w > W or h > H:
            return None
        placed: list[tuple[int, int, int, int]] = []
        m = self.margin
        for _ in range(self.n_words):
            for _try in range(self.max_tries):
                x0 = int(rng.integers(0, W - w + 1))
                y0 = int(rng.integers(0, H - h + 1))
                cand = (x0, y0, x0 + w, y0 + h)
                if all(cand[2] + m <= p[0] or p[2] + m <= cand[0] or cand[3] + m <= p[1] or p[3] + m <= cand[1]
                       for p in placed):
                    placed.append(cand)
                    break
            else:
                return None
        return label, text, placed

    def render_masks(self, H: int, W: int, text: str, boxes) -> tuple[np.ndarray, np.ndarray]:
        """``(text_mask, box_mask)`` float32 [H, W] in [0, 1] (anti-aliased text coverage)."""
        px = max(4, int(round(self.size * min(H, W))))
        font = _font(self.font_path, px)
        left, t, _, _ = font.getbbox(text)
        pad = int(round(self.box_pad * px)) if self.box else 0
        tm = Image.new("L", (W, H), 0)
        bm = Image.new("L", (W, H), 0)
        dt, db = ImageDraw.Draw(tm), ImageDraw.Draw(bm)
        for x0, y0, x1, y1 in boxes:
            if self.box:
                db.rectangle([x0, y0, x1 - 1, y1 - 1], fill=255)
            dt.text((x0 + pad - left, y0 + pad - t), text, font=font, fill=255)
        return np.asarray(tm, dtype=np.float32) / 255.0, np.asarray(bm, dtype=np.float32) / 255.0

    def apply_with_labels(self, x: torch.Tensor, seeds: torch.Tensor, targets: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x_out, written_labels [B] long (-1 if skipped), ok [B] bool)``."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{self.name}: expected a batch [B, 3, H, W], got shape {tuple(x.shape)}")
        if seeds.shape[0] != x.shape[0] or targets.shape[0] != x.shape[0]:
            raise ValueError(f"{self.name}: batch of {x.shape[0]} with {seeds.shape[0]} seeds, {targets.shape[0]} targets")
        B, _, H, W = x.shape
        text_m = np.zeros((B, H, W), np.float32)
        box_m = np.zeros((B, H, W), np.float32)
        written = torch.full((B,), -1, dtype=torch.long)
        ok = torch.zeros(B, dtype=torch.bool)
        for i, (s, y) in enumerate(zip(seeds.detach().cpu().tolist(), targets.detach().cpu().tolist())):
            lay = self.layout(s, int(y), H, W)
            if lay is None:
                continue
            label, text, boxes = lay
            text_m[i], box_m[i] = self.render_masks(H, W, text, boxes)
            written[i], ok[i] = label, True
        dev, dt = x.device, x.dtype
        tm = torch.from_numpy(text_m).to(dev, dt)[:, None] * self.opacity
        bm = torch.from_numpy(box_m).to(dev, dt)[:, None] * self.box_opacity
        col = torch.tensor(self.color, device=dev, dtype=dt).view(1, 3, 1, 1)
        bcol = torch.tensor(self.box_color, device=dev, dtype=dt).view(1, 3, 1, 1)
        out = x * (1 - bm) + bcol * bm
        out = out * (1 - tm) + col * tm
        return out.clamp(0, 1), written.to(dev), ok.to(dev)

    def apply(self, x: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        raise TypeError("typographic needs the true labels: call apply_with_labels(x, seeds, targets) "
                        "(the engine does this for shifts with needs_targets = True)")
