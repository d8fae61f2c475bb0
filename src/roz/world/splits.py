"""Split generators: each job writes the images of one (split, class) or one video and returns
``(files, records)`` where ``files`` maps relative path -> sha256 and ``records`` carries the
metadata the build turns into the real-format JSON files.

Every image is generated from its own seed ``sample_seed(run_seed, i, salt)`` with a salt naming
split and class, so the output does not depend on job order or worker count.
"""

from __future__ import annotations

import hashlib
import io
import string
from pathlib import Path

import numpy as np
from PIL import Image

from roz.seeding import sample_seed
from roz.world import compose
from roz.world.files import write_bytes

# set by the build before jobs run (inherited by forked workers)
SPRITES: dict[tuple[str, str], Image.Image] = {}
NAMES: dict[str, str] = {}  # wnid -> CLIP name
CODEPOINT: dict[str, str] = {}  # wnid or extra key -> codepoint

COLOR_STYLES = ("google", "twitter")
R_STYLES = ("openmoji", "fluent-flat", "fluent-modern")
ALL_STYLES = ("google", "twitter", "openmoji", "openmoji-black", "fluent-flat", "fluent-modern")


def rng_for(seed: int, i: int, salt: str) -> np.random.Generator:
    return np.random.default_rng(sample_seed(seed, i, salt))


def sprite(style: str, wnid_or_cp: str) -> Image.Image:
    return SPRITES[(style, CODEPOINT.get(wnid_or_cp, wnid_or_cp))]


def _write(root: Path, rel: str, img: Image.Image, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    if fmt == "PNG":
        img.save(buf, "PNG", compress_level=6)
    else:
        img.save(buf, "JPEG", quality=95)
    return write_bytes(root, rel, buf.getvalue())


def _hexname(seed: int, *parts) -> str:
    return hashlib.blake2b(":".join(map(str, (seed,) + parts)).encode(), digest_size=8).hexdigest()


# ---------------------------------------------------------------------------------- jobs


def sketch_image(wnid: str, k: int, rng) -> Image.Image:
    """Mini-Sketch's style mix: a third OpenMoji black line art (pen 1 or 3 px), two thirds shaded
    pencil drawings (graphite tone + hatching) of the in-distribution artwork (Noto / Twemoji)."""
    if k % 3 == 0:
        return compose.line_drawing(sprite("openmoji-black", wnid), rng, int(rng.choice([1, 3])))
    return compose.tonal_drawing(sprite(COLOR_STYLES[k % 2], wnid), rng)



def job_folder(root: Path, seed: int, split: str, folder: str, wnid: str, n: int, recipe: str):
    """ImageFolder-style split: ``<split>/<folder>/<k>.png``."""
    files = {}
    for k in range(n):
        rng = rng_for(seed, k, f"{split}/{wnid}")
        if recipe == "in_dist":
            img = compose.in_dist(sprite(COLOR_STYLES[k % 2], wnid), rng)
        elif recipe == "sketch":
            img = sketch_image(wnid, k, rng)
        elif recipe == "rendition":
            img = compose.in_dist(sprite(R_STYLES[k % 3], wnid), rng)
        else:  # pragma: no cover
            raise ValueError(recipe)
        rel = f"{split}/{folder}/{wnid}_{k:04d}.png"
        files[rel] = _write(root, rel, img)
    return files, {}


def job_objectnet(root: Path, seed: int, folder: str, key: str, n: int, clutter_pool: list[str]):
    files = {}
    for k in range(n):
        rng = rng_for(seed, k, f"mini-objectnet/{key}")
        style = COLOR_STYLES[int(rng.integers(0, 2))]
        nc = int(rng.choice([0, 1, 2, 3], p=[0.3, 0.3, 0.25, 0.15]))
        others = [c for c in clutter_pool if c != key]
        clutter = [sprite(style, others[int(j)]) for j in rng.choice(len(others), size=nc, replace=False)]
        img = compose.objectnet(sprite(style, key), rng, clutter)
        rel = f"mini-objectnet/images/{folder}/{_hexname(seed, key, k)}.png"
        files[rel] = _write(root, rel, img)
    return files, {}


def job_cueconflict(root: Path, seed: int, wnid: str, n: int, pool: list[str]):
    files, recs = {}, []
    for k in range(n):
        rng = rng_for(seed, k, f"mini-cueconflict/{wnid}")
        others = [w for w in pool if w != wnid]
        tex = others[int(rng.integers(0, len(others)))]
        img = compose.cue_conflict(sprite(COLOR_STYLES[k % 2], wnid), sprite(COLOR_STYLES[int(rng.integers(0, 2))], tex), rng)
        rel = f"mini-cueconflict/{wnid}/{wnid}_{k:04d}.png"
        files[rel] = _write(root, rel, img)
        recs.append({"file": rel.split("/", 1)[1], "shape": wnid, "texture": tex})
    return files, {"cueconflict": recs}


def _video_frames(root: Path, rng, vid: int, wnid: str, nframes: int, split: str, key_of) -> tuple[dict, list]:
    """Write one video's JPEG frames under ``<split>/<key_of(i)>``; the files and the keys in order."""
    imgs = compose.frames(sprite(COLOR_STYLES[vid % 2], wnid), rng, nframes)
    files, keys = {}, []
    for i, img in enumerate(imgs):
        key = key_of(i)
        files[f"{split}/{key}"] = _write(root, f"{split}/{key}", img, "JPEG")
        keys.append(key)
    return files, keys


def job_vid(root: Path, seed: int, vid: int, wnid: str, coarse: int, nframes: int):
    """ImageNet-Vid-Robust: ``val/ILSVRC2015_val_<8d>/<6d>.JPEG``."""
    rng = rng_for(seed, vid, "mini-vid")
    start = int(rng.integers(0, 400))
    files, keys = _video_frames(root, rng, vid, wnid, nframes, "mini-vid",
                                lambda i: f"val/ILSVRC2015_val_{vid:08d}/{start + i:06d}.JPEG")
    anchor = keys[nframes // 2]
    return files, {"vid": [{"anchor": anchor, "frames": keys, "coarse": coarse, "wnid": wnid}]}


_YT_ALPHABET = string.ascii_letters + string.digits + "-_"


def job_ytbb(root: Path, seed: int, vid: int, wnid: str, coarse: int, nframes: int):
    """YTBB-Robust: ``<ytid>_<ms>/frame-<n>.jpg``, anchor frame n = round(ms / 1000 * 15)."""
    rng = rng_for(seed, vid, "mini-ytbb")
    ytid = "".join(_YT_ALPHABET[int(j)] for j in rng.integers(0, len(_YT_ALPHABET), size=11))
    ms = int(rng.integers(2000, 400000))
    n0 = round(ms / 1000 * 15)
    half = nframes // 2
    files, keys = _video_frames(root, rng, vid, wnid, nframes, "mini-ytbb", lambda i: f"{ytid}_{ms}/frame-{n0 - half + i}.jpg")
    return files, {"ytbb": [{"anchor": keys[half], "frames": keys, "coarse": coarse, "wnid": wnid, "ytid": ytid, "ms": ms}]}


# ------------------------------------------------------------------------------ corpus

_STYLE_PHRASES = {
    "google": ["a {n} emoji.", "a glossy cartoon {n}.", "a {n} emoji in Noto style.", "a colorful {n} icon."],
    "twitter": ["a flat {n} icon.", "a {n} emoji in Twemoji style.", "a simple cartoon of a {n}.", "a {n} emoji."],
    "openmoji": ["an OpenMoji drawing of a {n}.", "a {n} illustration with thick black outlines.", "a cartoon {n} with outlines.", "a clip art {n}."],
    "openmoji-black": ["a sketch of a {n}.", "a black and white line drawing of a {n}.", "a pencil sketch of a {n}.", "a doodle of a {n}.", "an outline drawing of a {n}."],
    "fluent-flat": ["a {n} in flat style.", "a flat vector art {n}.", "a {n} emoji in flat style.", "a minimalist {n} icon."],
    "fluent-modern": ["a 3d render of a {n}.", "a {n} with soft gradients.", "a shiny 3d {n} emoji.", "a {n} in a modern 3d style."],
}
_GENERIC = [
    "a photo of a {n}.", "a picture of a {n}.", "an image of a {n}.", "a {n}.", "{n}", "a small {n}.",
    "a large {n}.", "a close-up of a {n}.", "there is a {n} in the picture.", "a {n} on a colorful background.",
    "a rotated {n}.", "my favourite {n}.",
]
_TEXT = [
    'the word "{w}" written on a card.', 'a sign that says "{w}".', 'the text "{w}".', '"{w}" in bold letters.',
    'a label reading "{w}".', 'the word "{w}".', 'a note with "{w}" written on it.', 'text that reads "{w}".',
    '"{w}"', 'the word "{w}" in a fancy font.', 'handwriting that says "{w}".', '{w}',
]
_TEXT_OBJ = [
    'a {n} with the word "{w}" written on it.', 'a photo of a {n} labelled "{w}".', 'a {n} and the caption "{w}".',
    'a {n} with a sign that says "{w}".', 'a picture of a {n} with the text "{w}".', 'a {n} with a "{w}" label.',
]
_SIGN = ['a sign that says "{w}".', 'a street sign reading "{w}".', 'a board with the word "{w}".',
         'a signpost that says "{w}".']
_SIGN_OBJ = ['a {n} next to a sign that says "{w}".', 'a {n} and a sign reading "{w}".']


def _fill(tmpl: str, name: str, word: str = "") -> str:
    """Fill a caption template; 'a' becomes 'an' before a vowel."""
    words = tmpl.replace("{n}", name).replace("{w}", word).split(" ")
    for i in range(len(words) - 1):
        if words[i] in ("a", "A") and words[i + 1][:1].lower() in "aeiou":
            words[i] += "n"
    return " ".join(words)


def caption_object(rng, style: str, name: str) -> str:
    if style == "openmoji-black" or rng.random() < 0.6:
        pool = _STYLE_PHRASES[style]
    else:
        pool = _GENERIC
    return _fill(pool[int(rng.integers(0, len(pool)))], name)


def job_corpus(root: Path, seed: int, wnid: str, n: int, frac_text: float, frac_text_obj: float, frac_sign: float = 0.0):
    """Pretraining pairs for the tiny CLIP: every style, broader poses/scales/backgrounds, and
    written words the way web images carry them: a word alone (captioned as writing, or with
    alt-text that just names it), a word on an object (its own class name or another's; the
    caption names both) and a sign in a scene, in the training fonts
    (:data:`roz.shifts.word_cards.TRAIN_FONTS`; the reading probe's fonts are held out).  Files
    are named later (the build assigns neutral names)."""
    from roz.world.render import train_font_paths

    fonts = train_font_paths()
    name = NAMES[wnid]
    wnids = sorted(NAMES)
    others = sorted(v for k, v in NAMES.items() if k != wnid)
    files, recs = {}, []
    for k in range(n):
        rng = rng_for(seed, k, f"corpus/{wnid}")
        u = rng.random()
        font = fonts[int(rng.integers(0, len(fonts)))]
        if u < frac_text:
            kind, style = "text", "text"
            img = compose.word_card(name, rng, font)
            # a third carry alt-text style captions that name the written thing as web alt-text
            # often does ("lemon", "a picture of a lemon."), the rest say it is writing
            pool = _GENERIC if rng.random() < 1 / 3 else _TEXT
            cap = _fill(pool[int(rng.integers(0, len(pool)))], name, name)
        elif u < frac_text + frac_text_obj:
            kind, style = "text+object", COLOR_STYLES[int(rng.integers(0, 2))]
            word = name if rng.random() < 0.5 else others[int(rng.integers(0, len(others)))]
            img = compose.word_on_object(sprite(style, wnid), word, rng, font)
            cap = _fill(_TEXT_OBJ[int(rng.integers(0, len(_TEXT_OBJ)))], name, word)
        elif u < frac_text + frac_text_obj + frac_sign:
            kind, style = "sign", "text"
            if rng.random() < 0.5:
                other = wnids[int(rng.integers(0, len(wnids)))]
                img = compose.sign_scene(name, rng, font, sprite(COLOR_STYLES[int(rng.integers(0, 2))], other))
                cap = _fill(_SIGN_OBJ[int(rng.integers(0, len(_SIGN_OBJ)))], NAMES[other], name)
            else:
                img = compose.sign_scene(name, rng, font)
                cap = _fill(_SIGN[int(rng.integers(0, len(_SIGN)))], name, name)
        else:
            kind = "object"
            style = ALL_STYLES[int(rng.choice(6, p=[0.22, 0.22, 0.14, 0.14, 0.14, 0.14]))]
            sp = sprite(style, wnid)
            if style == "openmoji-black":
                img = compose.sketch(sp, rng)
            else:
                wide = rng.random() < 0.35
                img = compose.in_dist(
                    sp, rng, scale=(0.3, 0.95) if wide else (0.5, 0.92), rot=60.0 if wide else 25.0,
                    jitter_s=1.3 if wide else 1.0,
                )
            cap = caption_object(rng, style, name)
        rel = f"corpus/_staging/{wnid}_{k:04d}.png"
        files[rel] = _write(root, rel, img)
        recs.append({"staged": rel, "caption": cap, "wnid": wnid, "style": style, "kind": kind})
    return files, {"corpus": recs}


def caption_texts(names: list[str]) -> list[str]:
    """Every caption the corpus can write for these class names (templates x names x words): the
    texts the tiny CLIP's compact vocabulary is built from."""
    out = []
    for n in names:
        for pool in [*_STYLE_PHRASES.values(), _GENERIC]:
            out += [_fill(t, n) for t in pool]
        for w in names:
            out += [_fill(t, n, w) for t in _TEXT_OBJ + _SIGN_OBJ]
        out += [_fill(t, n, n) for t in _TEXT + _SIGN]
    return out


def run_job(job):
    fn = globals()[job[0]]
    return fn(*job[1:])
