"""A planted-duplicate fixture world: 64x64 random shapes/textures, ROZ-Mini layout.

``<root>/mini-r/<wnid>/*.png`` test images, ``<root>/corpus/images/*.png`` corpus (random images
plus altered copies of some test images: crop 1-4 px + resize back, brightness x U(0.9, 1.1),
JPEG 70-91, saved as PNG — ROZ-Mini's ``near_duplicate``), ground truth
``<root>/corpus/planted_duplicates.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from roz.overlap.calibrate import alter_image

N_TEST, N_PLANTED, N_CORPUS_RANDOM = 200, 50, 450
WNIDS = ["n00000001", "n00000002", "n00000003", "n00000004"]


def random_image(rng: np.random.Generator, size: int = 64) -> Image.Image:
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = rng.uniform(0, 255, 3)
    kind = rng.integers(3)
    if kind == 0:  # grating
        th, f = rng.uniform(0, np.pi), rng.uniform(1, 6)
        v = np.sin(2 * np.pi * f * (xx * np.cos(th) + yy * np.sin(th)) + rng.uniform(0, 6.3))
        a = base + 60 * v[..., None] * rng.uniform(-1, 1, 3)
    elif kind == 1:  # smooth noise
        n = rng.normal(size=(8, 8, 3))
        n = (n - n.min()) / (n.max() - n.min()) * 255
        a = 0.5 * base + 0.5 * np.asarray(Image.fromarray(n.astype(np.uint8)).resize((size, size), Image.BICUBIC), float)
    else:  # linear gradient
        g = rng.uniform(-1, 1, 2)
        a = base + 80 * (g[0] * xx + g[1] * yy)[..., None] * rng.uniform(-1, 1, 3)
    im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(im)
    for _ in range(rng.integers(2, 6)):
        x0, y0 = rng.uniform(-10, size, 2)
        w, h = rng.uniform(8, 40, 2)
        col = tuple(int(c) for c in rng.integers(0, 256, 3))
        s = rng.integers(3)
        if s == 0:
            d.ellipse([x0, y0, x0 + w, y0 + h], fill=col)
        elif s == 1:
            d.rectangle([x0, y0, x0 + w, y0 + h], fill=col)
        else:
            d.polygon([tuple(rng.uniform(-5, size + 5, 2)) for _ in range(3)], fill=col)
    return im


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("world")
    rng = np.random.default_rng(1234)
    test_files = []
    for i in range(N_TEST):
        w = WNIDS[i % len(WNIDS)]
        p = root / "mini-r" / w / f"{i:04d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        random_image(rng).save(p)
        test_files.append(p)
    cdir = root / "corpus" / "images"
    cdir.mkdir(parents=True)
    for j in range(N_CORPUS_RANDOM):
        random_image(rng).save(cdir / f"c{j:05d}.png")
    planted = []
    for k, i in enumerate(rng.choice(N_TEST, size=N_PLANTED, replace=False)):
        name = f"dup{k:04d}.png"
        alter_image(Image.open(test_files[i]), rng).save(cdir / name)
        planted.append({"corpus_file": f"images/{name}", "split": "mini-r",
                        "test_file": str(test_files[i].relative_to(root))})
    (root / "corpus" / "planted_duplicates.json").write_text(json.dumps(planted))
    return root


@pytest.fixture(scope="session")
def test_paths(world) -> list[Path]:
    return sorted((world / "mini-r").rglob("*.png"))


@pytest.fixture(scope="session")
def corpus_paths(world) -> list[Path]:
    return sorted((world / "corpus" / "images").glob("*.png"))


@pytest.fixture(scope="session")
def phash_detector(corpus_paths):
    from roz.overlap import OverlapDetector

    return OverlapDetector("phash").fit(corpus_paths)
