"""Compositing: procedural backgrounds, placement and photometric jitter, and the recipes.

Everything takes a ``numpy.random.Generator`` seeded per image, so an image depends only on its
own seed (not on order, batching or worker).  Images are 64x64 RGB.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from roz.world.render import text_sprite

S = 64  # image side


def _u(rng, a, b) -> float:
    return float(rng.uniform(a, b))


def _color(rng, lo=0, hi=255) -> np.ndarray:
    return rng.integers(lo, hi + 1, size=3).astype(np.float32)


def _smooth_noise(rng, cells: int, size: int = S) -> np.ndarray:
    """Value noise in [0, 1] of shape (size, size), from a cells x cells random grid."""
    g = rng.random((cells + 1, cells + 1)).astype(np.float32)
    im = Image.fromarray((g * 255).astype(np.uint8), "L").resize((size, size), Image.BICUBIC)
    return np.asarray(im, dtype=np.float32) / 255.0


BACKGROUNDS = ("plain", "linear", "radial", "noise", "stripes", "checker", "dots", "texture")


def background(rng, kind: str | None = None, kinds=BACKGROUNDS, pale: bool = False) -> Image.Image:
    kind = kind or str(rng.choice(kinds))
    lo = 150 if pale else 0
    c1, c2 = _color(rng, lo), _color(rng, lo)
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) / (S - 1)
    if kind == "plain":
        t = np.zeros((S, S), np.float32)
    elif kind == "linear":
        a = _u(rng, 0, 2 * math.pi)
        t = (np.cos(a) * (xx - 0.5) + np.sin(a) * (yy - 0.5)) + 0.5
    elif kind == "radial":
        cx, cy = _u(rng, 0.2, 0.8), _u(rng, 0.2, 0.8)
        t = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / 0.8
    elif kind == "noise":
        t = _smooth_noise(rng, int(rng.integers(2, 9)))
    elif kind == "stripes":
        a, f = _u(rng, 0, math.pi), _u(rng, 3, 10)
        t = 0.5 + 0.5 * np.sign(np.sin(2 * math.pi * f * (np.cos(a) * xx + np.sin(a) * yy)))
        t = t * _u(rng, 0.3, 1.0)
    elif kind == "checker":
        n = int(rng.integers(3, 9))
        t = ((np.floor(xx * n) + np.floor(yy * n)) % 2) * _u(rng, 0.3, 1.0)
    elif kind == "dots":
        n = int(rng.integers(3, 8))
        fx, fy = (xx * n) % 1 - 0.5, (yy * n) % 1 - 0.5
        t = (fx**2 + fy**2 < _u(rng, 0.03, 0.12)).astype(np.float32)
    else:  # texture: fine noise times coarse noise, like a fabric/wood tile
        t = 0.6 * _smooth_noise(rng, int(rng.integers(12, 24))) + 0.4 * _smooth_noise(rng, 3)
    t = np.clip(t, 0, 1)[..., None]
    img = c1 * (1 - t) + c2 * t
    img += rng.normal(0, _u(rng, 0, 6), size=(S, S, 1)).astype(np.float32)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def paper(rng) -> Image.Image:
    """Light paper for sketches."""
    base = _u(rng, 225, 255)
    t = _smooth_noise(rng, int(rng.integers(4, 16))) * _u(rng, 0, 18)
    img = np.clip(base - t + rng.normal(0, 2, size=(S, S)), 0, 255).astype(np.uint8)
    return Image.fromarray(img, "L").convert("RGB")


def jitter(sprite: Image.Image, rng, strength: float = 1.0) -> Image.Image:
    """Colour jitter on an RGBA sprite (alpha kept)."""
    rgb, a = sprite.convert("RGB"), sprite.getchannel("A")
    s = strength
    rgb = ImageEnhance.Brightness(rgb).enhance(_u(rng, 1 - 0.25 * s, 1 + 0.25 * s))
    rgb = ImageEnhance.Contrast(rgb).enhance(_u(rng, 1 - 0.25 * s, 1 + 0.25 * s))
    rgb = ImageEnhance.Color(rgb).enhance(_u(rng, 1 - 0.35 * s, 1 + 0.35 * s))
    if s > 0:
        h = int(round(_u(rng, -12, 12) * s))
        if h:
            hsv = np.asarray(rgb.convert("HSV")).copy()
            hsv[..., 0] = (hsv[..., 0].astype(np.int16) + h) % 256
            rgb = Image.fromarray(hsv, "HSV").convert("RGB")
    out = rgb.convert("RGBA")
    out.putalpha(a)
    return out


def transform(sprite: Image.Image, size: float, angle: float, flip: bool = False) -> Image.Image:
    """Scale so the longer side is ``size`` px, then rotate by ``angle`` degrees (expanding)."""
    w, h = sprite.size
    k = size / max(w, h)
    nw, nh = max(1, round(w * k)), max(1, round(h * k))
    im = sprite.resize((nw, nh), Image.LANCZOS if k < 1 else Image.BICUBIC)
    if flip:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    if abs(angle) > 0.01:
        im = im.rotate(angle, resample=Image.BICUBIC, expand=True)
    return im


def paste(canvas: Image.Image, sprite: Image.Image, cx: float, cy: float) -> tuple[int, int, int, int]:
    """Alpha-composite sprite centred at (cx, cy) pixels; returns its box."""
    x, y = int(round(cx - sprite.width / 2)), int(round(cy - sprite.height / 2))
    canvas.paste(sprite, (x, y), sprite)
    return x, y, x + sprite.width, y + sprite.height


def finish(img: Image.Image, rng, blur_p: float = 0.3, noise: float = 0.0) -> Image.Image:
    if rng.random() < blur_p:
        img = img.filter(ImageFilter.GaussianBlur(_u(rng, 0.3, 1.1)))
    if noise > 0:
        a = np.asarray(img, dtype=np.float32) + rng.normal(0, noise, size=(S, S, 3))
        img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")
    return img


# --------------------------------------------------------------------------------------------
# recipes


def in_dist(sprite: Image.Image, rng, *, bg_kinds=BACKGROUNDS, scale=(0.55, 0.92), rot=20.0, jitter_s=1.0) -> Image.Image:
    """The 'ImageNet' recipe: one object, varied background, scale, position, small rotation."""
    img = background(rng, kinds=bg_kinds)
    size = _u(rng, *scale) * S
    sp = transform(jitter(sprite, rng, jitter_s), size, _u(rng, -rot, rot), flip=bool(rng.random() < 0.5))
    mx, my = max(0.0, (S - sp.width) / 2), max(0.0, (S - sp.height) / 2)
    cx = S / 2 + _u(rng, -1, 1) * min(mx + 4, 14)
    cy = S / 2 + _u(rng, -1, 1) * min(my + 4, 14)
    paste(img, sp, cx, cy)
    return finish(img, rng)


def _on_paper(sp: Image.Image, rng) -> Image.Image:
    """Place a grey RGBA drawing on paper with the sketch geometry; grey-scale output."""
    img = paper(rng)
    size = _u(rng, 0.6, 0.95) * S
    sp = transform(sp, size, _u(rng, -15, 15), flip=bool(rng.random() < 0.5))
    mx, my = max(0.0, (S - sp.width) / 2), max(0.0, (S - sp.height) / 2)
    paste(img, sp, S / 2 + _u(rng, -1, 1) * min(mx + 2, 8), S / 2 + _u(rng, -1, 1) * min(my + 2, 8))
    img = finish(img, rng, blur_p=0.4)
    return img.convert("L").convert("RGB")


def line_drawing(sprite: Image.Image, rng, line_px: int = 1) -> Image.Image:
    """Black line art (OpenMoji black) inked on paper; ``line_px`` > 1 thickens the pen (max filter)."""
    a = np.asarray(sprite.getchannel("A"), dtype=np.float32) / 255.0
    lum = np.asarray(sprite.convert("L"), dtype=np.float32)
    dark = (lum < 128) & (a > 0.3)
    if line_px > 1:
        dark = np.asarray(Image.fromarray((dark * 255).astype(np.uint8)).filter(ImageFilter.MaxFilter(line_px))) > 127
        a = np.maximum(a, dark)
    ink = _u(rng, 0, 60)
    # keep the white interiors of OpenMoji line art white, the lines dark
    val = np.where(dark, ink, 255.0)
    return _on_paper(Image.fromarray(np.dstack([val, val, val, a * 255]).astype(np.uint8), "RGBA"), rng)


def tonal_drawing(sprite: Image.Image, rng) -> Image.Image:
    """A shaded pencil drawing of a colour artwork: its luminance as graphite tone (contrast
    stretched, random gamma, never darker than 25 % grey) with hatching over the dark areas."""
    alpha = np.asarray(sprite.getchannel("A"))
    g = np.asarray(sprite.convert("L"), dtype=np.float32)
    inside = alpha > 128
    lo, hi = np.percentile(g[inside], [2, 98]) if inside.any() else (0.0, 255.0)
    g = np.clip((g - lo) / max(1.0, hi - lo), 0, 1)
    tone = 255 * (0.25 + 0.75 * g ** _u(rng, 0.8, 1.4))
    yy, xx = np.mgrid[0:g.shape[0], 0:g.shape[1]]
    ang, period = _u(rng, 0, math.pi), _u(rng, 3, 6)
    hatch = np.sin((math.cos(ang) * xx + math.sin(ang) * yy) * 2 * math.pi / period) > 0.6
    tone = np.where(hatch & (g < 0.5), tone * 0.7, tone)
    return _on_paper(Image.fromarray(np.dstack([tone, tone, tone, alpha]).astype(np.uint8), "RGBA"), rng)


def sketch(sprite: Image.Image, rng) -> Image.Image:
    """OpenMoji black line art on paper, thin pen (the corpus's line drawings)."""
    return line_drawing(sprite, rng, 1)


def objectnet(sprite: Image.Image, rng, clutter: list[Image.Image]) -> Image.Image:
    """ObjectNet-style controls: any rotation (often upside down), odd viewpoints, clutter,
    occlusion, small off-centre objects, domestic (plain/texture) backgrounds."""
    img = background(rng, kinds=("plain", "linear", "texture", "noise"), pale=bool(rng.random() < 0.5))
    # clutter behind the object
    for c in clutter:
        cs = transform(jitter(c, rng, 0.5), _u(rng, 0.25, 0.5) * S, _u(rng, 0, 360))
        paste(img, cs, _u(rng, 0, S), _u(rng, 0, S))
    r = rng.random()
    angle = 180.0 + _u(rng, -20, 20) if r < 0.35 else (_u(rng, 45, 315) if r < 0.8 else _u(rng, -30, 30))
    small = rng.random() < 0.4
    size = (_u(rng, 0.3, 0.45) if small else _u(rng, 0.5, 0.8)) * S
    sp = transform(jitter(sprite, rng, 0.6), size, angle, flip=bool(rng.random() < 0.5))
    if small:
        cx, cy = _u(rng, sp.width / 2, S - sp.width / 2), _u(rng, sp.height / 2, S - sp.height / 2)
    else:
        cx, cy = S / 2 + _u(rng, -8, 8), S / 2 + _u(rng, -8, 8)
    x0, y0, x1, y1 = paste(img, sp, cx, cy)
    if rng.random() < 0.5:  # occluder: a flat-coloured box or bar over part of the object
        w, h = x1 - x0, y1 - y0
        ow, oh = int(w * _u(rng, 0.3, 0.6)), int(h * _u(rng, 0.3, 0.6))
        side = int(rng.integers(0, 4))
        ox = x0 if side == 0 else (x1 - ow if side == 1 else x0 + int(_u(rng, 0, max(1, w - ow))))
        oy = y0 if side == 2 else (y1 - oh if side == 3 else y0 + int(_u(rng, 0, max(1, h - oh))))
        occ = Image.new("RGB", (max(1, ow), max(1, oh)), tuple(int(v) for v in _color(rng)))
        img.paste(occ, (ox, oy))
    return finish(img, rng, blur_p=0.3, noise=_u(rng, 0, 5))


def cue_conflict(shape: Image.Image, texture: Image.Image, rng) -> Image.Image:
    """Silhouette (alpha) of the shape class filled with tiles of the texture class."""
    size = _u(rng, 0.75, 0.95) * S
    sh = transform(shape, size, _u(rng, -10, 10))
    mask = sh.getchannel("A")
    tile_px = int(rng.integers(10, 17))
    fill = Image.new("RGB", (S, S), tuple(int(v) for v in _color(rng, 60, 230)))
    t = transform(texture, tile_px, 0)
    off = int(rng.integers(0, tile_px))
    for j, y in enumerate(range(-off, S, tile_px)):
        for x in range(-off - (tile_px // 2) * (j % 2), S, tile_px):
            fill.paste(t, (x, y), t)
    img = background(rng, kinds=("plain", "linear"), pale=True)
    x, y = int(round(S / 2 - sh.width / 2)), int(round(S / 2 - sh.height / 2))
    full = Image.new("L", (S, S), 0)
    full.paste(mask, (x, y))
    img.paste(fill, (0, 0), full)
    return finish(img, rng, blur_p=0.0)


def frames(sprite: Image.Image, rng, n: int = 21) -> list[Image.Image]:
    """A short 'video': one in-distribution scene, drifting slightly frame to frame
    (translation random walk, zoom, lighting, fresh sensor noise, occasional motion blur)."""
    bg = background(rng)
    base_size = _u(rng, 0.55, 0.85) * S
    angle = _u(rng, -20, 20)
    sp0 = jitter(sprite, rng, 1.0)
    flip = bool(rng.random() < 0.5)
    cx, cy = S / 2 + _u(rng, -8, 8), S / 2 + _u(rng, -8, 8)
    vx, vy = _u(rng, -0.6, 0.6), _u(rng, -0.6, 0.6)
    zoom_rate, rot_rate = _u(rng, -0.008, 0.008), _u(rng, -0.6, 0.6)
    light0, light_rate = _u(rng, 0.9, 1.1), _u(rng, -0.01, 0.01)
    out = []
    for i in range(n):
        t = i - n // 2
        x = cx + vx * t + _u(rng, -1.0, 1.0)
        y = cy + vy * t + _u(rng, -1.0, 1.0)
        sp = transform(sp0, base_size * (1 + zoom_rate * t), angle + rot_rate * t, flip)
        img = bg.copy()
        paste(img, sp, x, y)
        img = ImageEnhance.Brightness(img).enhance(light0 + light_rate * t + _u(rng, -0.03, 0.03))
        if rng.random() < 0.12:
            img = img.filter(ImageFilter.GaussianBlur(_u(rng, 0.5, 1.2)))
        img = finish(img, rng, blur_p=0.0, noise=_u(rng, 1, 6))
        out.append(img)
    return out


def _ink_for(img: Image.Image, rng) -> tuple[int, int, int]:
    """A text colour that contrasts with the image's mean brightness."""
    mean = float(np.asarray(img, dtype=np.float32).mean())
    return tuple(int(v) for v in (_color(rng, 0, 70) if mean > 128 else _color(rng, 190, 255)))


def _word(word: str, rng, color, font_path: str, max_w: float, max_h: float, rot: float) -> Image.Image:
    ts = text_sprite(word, color, int(max_w), int(max_h), font_path=font_path, max_size=40)
    return ts.rotate(_u(rng, -rot, rot), resample=Image.BICUBIC, expand=True) if rot else ts


def _paste_anywhere(img: Image.Image, sp: Image.Image, rng) -> tuple[int, int, int, int]:
    """Paste at a uniform position where the sprite fits (centred if it is larger than the image)."""
    cx = _u(rng, sp.width / 2, S - sp.width / 2) if sp.width < S else S / 2
    cy = _u(rng, sp.height / 2, S - sp.height / 2) if sp.height < S else S / 2
    return paste(img, sp, cx, cy)


def word_card(word: str, rng, font_path: str) -> Image.Image:
    """A written word alone: on a card, a plain/gradient/noisy/paper background; any size that
    stays legible (text up to 55-95 % of the width), position, colour, rotation within +-8 degrees."""
    if rng.random() < 0.25:
        img = paper(rng)
    else:
        img = background(rng, kinds=("plain", "linear", "noise"), pale=bool(rng.random() < 0.6))
    if rng.random() < 0.4:  # a card
        cw, ch = int(_u(rng, 46, 64)), int(_u(rng, 22, 44))
        card = Image.new("RGB", (cw, ch), tuple(int(v) for v in _color(rng, 190)))
        x0, y0 = int(_u(rng, 0, S - cw)), int(_u(rng, 0, S - ch))
        img.paste(card, (x0, y0))
        ts = _word(word, rng, tuple(int(v) for v in _color(rng, 0, 70)), font_path, cw - 4, ch - 4, 8)
        paste(img, ts, x0 + cw / 2, y0 + ch / 2)
    else:
        ts = _word(word, rng, _ink_for(img, rng), font_path, _u(rng, 0.55, 0.95) * S, _u(rng, 0.22, 0.5) * S, 8)
        _paste_anywhere(img, ts, rng)
    return finish(img, rng, blur_p=0.1)


def word_on_object(sprite: Image.Image, word: str, rng, font_path: str) -> Image.Image:
    """An object with a word on it (a label or printed text), legible on any object."""
    img = in_dist(sprite, rng, scale=(0.5, 0.85))
    col = (255, 255, 255) if rng.random() < 0.5 else (0, 0, 0)
    ts = text_sprite(word, col, int(_u(rng, 40, 62)), int(_u(rng, 14, 24)), font_path=font_path, max_size=40)
    if rng.random() < 0.7:  # a contrasting label behind the text
        box = Image.new("RGBA", (ts.width + 4, ts.height + 2), tuple(255 - c for c in col) + (int(_u(rng, 140, 240)),))
        box.paste(ts, (2, 1), ts)
        ts = box
    ts = ts.rotate(_u(rng, -10, 10), resample=Image.BICUBIC, expand=True)
    _paste_anywhere(img, ts, rng)
    return img


def sign_scene(word: str, rng, font_path: str, sprite: Image.Image | None = None) -> Image.Image:
    """A sign on a post saying the word, in a scene; optionally beside an object."""
    img = background(rng)
    if sprite is not None:
        sp = transform(jitter(sprite, rng, 0.8), _u(rng, 0.35, 0.55) * S, _u(rng, -20, 20))
        paste(img, sp, _u(rng, 0.15, 0.3) * S if rng.random() < 0.5 else _u(rng, 0.7, 0.85) * S, _u(rng, 0.55, 0.8) * S)
    bw, bh = int(_u(rng, 36, 62)), int(_u(rng, 18, 34))
    x0, y0 = int(_u(rng, 0, S - bw)), int(_u(rng, 0, max(1, S - bh - 8)))
    post = tuple(int(v) for v in _color(rng, 60, 140))
    img.paste(Image.new("RGB", (3, S - y0), post), (x0 + bw // 2 - 1, y0))
    board = tuple(int(v) for v in _color(rng))
    img.paste(Image.new("RGB", (bw, bh), board), (x0, y0))
    ink = (0, 0, 0) if sum(board) / 3 > 128 else (255, 255, 255)
    ts = text_sprite(word, ink, bw - 4, bh - 4, font_path=font_path, max_size=40)
    paste(img, ts, x0 + bw / 2, y0 + bh / 2)
    return finish(img, rng, blur_p=0.2, noise=_u(rng, 0, 4))


def near_duplicate(img: Image.Image, rng) -> Image.Image:
    """Light alteration of a test image: re-encoded, slightly cropped/rescaled, brightness jitter."""
    c = int(rng.integers(1, 5))
    x0, y0 = int(rng.integers(0, c + 1)), int(rng.integers(0, c + 1))
    img = img.crop((x0, y0, S - (c - x0), S - (c - y0))).resize((S, S), Image.BICUBIC)
    img = ImageEnhance.Brightness(img).enhance(_u(rng, 0.9, 1.1))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=int(rng.integers(70, 92)))
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
