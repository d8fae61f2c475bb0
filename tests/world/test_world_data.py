"""The ROZ-Mini world data: real-format layouts, determinism, planted duplicates, asset errors.

Assets: ``ROZ_ASSETS`` if set; else the user's asset cache (``ROZ_REAL_HOME`` or ~/.cache/roz)
if it is complete; else the npm registry (fetched into the session's temporary ROZ_HOME).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

TINY = {
    "mini-train": 1, "mini-val": 1, "mini-v2": 1, "mini-sketch": 1, "mini-r": 1, "mini-objectnet": 1,
    "mini-objectnet-unmapped": 1, "mini-vid-per-group": 1, "mini-ytbb-per-group": 1, "frames": 5,
    "mini-cueconflict": 1, "corpus": 2,
}


@pytest.fixture(scope="session")
def world_env(tmp_path_factory):
    """A session ROZ_HOME; reuse installed artwork when there is some."""
    home = tmp_path_factory.mktemp("roz_home")
    old = {k: os.environ.get(k) for k in ("ROZ_HOME", "ROZ_ASSETS")}
    real_home = os.environ.get("ROZ_REAL_HOME") or old["ROZ_HOME"] or str(Path.home() / ".cache" / "roz")
    user_assets = Path(real_home).expanduser() / "assets"
    os.environ["ROZ_HOME"] = str(home)
    if not old["ROZ_ASSETS"] and (user_assets / "MANIFEST.json").is_file():
        os.environ["ROZ_ASSETS"] = str(user_assets)
    yield home
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def quick_world(world_env):
    from roz.world.build import build_world

    return build_world(quick=True)


def _json(p: Path):
    return json.loads(p.read_text())


def _imgs(d: Path, ext=(".png",)):
    return sorted(p for p in d.iterdir() if p.suffix in ext)


def test_classes_and_registry(quick_world):
    from roz.datasets.classes import get_class_set, imagenet_1k
    from roz.world import register
    from roz.world.concepts import roz_mini

    register()  # the world registers its class set into the datasets layer
    cs = get_class_set("roz-mini")
    assert cs == roz_mini() and len(cs) >= 50
    in1k = imagenet_1k()
    idx = in1k.index()
    assert all(in1k.names[idx[w]] == n for w, n in zip(cs.wnids, cs.names))
    assert sum(" " not in n for n in cs.names) >= 40  # single-word names for the typographic split
    c = _json(quick_world / "classes.json")
    assert c == {"name": "roz-mini", "wnids": list(cs.wnids), "names": list(cs.names)}


def test_imagefolder_splits(quick_world):
    from roz.world.concepts import imagenet_index, roz_mini

    wnids = set(roz_mini().wnids)
    for split in ("mini-train", "mini-val", "mini-sketch", "mini-r", "mini-cueconflict"):
        d = quick_world / split
        assert {p.name for p in d.iterdir() if p.is_dir()} == wnids, split
        for w in wnids:
            assert _imgs(d / w), (split, w)
    im = Image.open(_imgs(quick_world / "mini-train" / sorted(wnids)[0])[0])
    assert im.size == (64, 64) and im.mode == "RGB"
    # ImageNetV2 layout: folders named by the ImageNet-1k index
    v2 = {p.name for p in (quick_world / "mini-v2").iterdir()}
    assert v2 == {str(imagenet_index()[w]) for w in wnids}
    cc = _json(quick_world / "mini-cueconflict" / "cueconflict.json")
    assert cc["label"] == "shape" and cc["images"]
    for r in cc["images"]:
        assert (quick_world / "mini-cueconflict" / r["file"]).is_file()
        assert r["shape"] != r["texture"] and r["file"].startswith(r["shape"] + "/")


def test_sketch_split_mixes_line_art_and_shaded_pencil(quick_world):
    """Mini-Sketch: grey-scale; line drawings (dark ink on paper) for k % 3 == 0, shaded pencil
    drawings (graphite tone, never ink-black: mid greys wherever it is not paper) otherwise."""
    from roz.world.concepts import roz_mini

    levels = {"line": [], "tonal": []}
    for w in roz_mini().wnids[:12]:
        for p in _imgs(quick_world / "mini-sketch" / w):
            a = np.asarray(Image.open(p).convert("RGB"), dtype=np.int16)
            assert (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all(), p
            g = a[..., 0]
            k = int(p.stem.rsplit("_", 1)[1])
            drawn = g < 200  # not paper
            levels["line" if k % 3 == 0 else "tonal"].append(
                (float((g < 60).mean()), float((drawn & (g >= 60)).sum() / max(1, drawn.sum()))))
    line, tonal = np.median(levels["line"], axis=0), np.median(levels["tonal"], axis=0)
    assert line[0] > 3 * tonal[0]  # ink-black pixels
    assert tonal[1] > 0.8 > line[1]  # what is drawn is mid-grey tone


def test_corpus_words_are_legible_and_in_training_fonts(monkeypatch):
    """The corpus writes its words only in TRAIN_FONTS (the reading probe's fonts are held out), and
    a word card's text is large enough to read: its ink spans at least half the image width."""
    from roz.shifts.word_cards import HELDOUT_FONTS, TRAIN_FONTS
    from roz.world import compose, render

    paths = render.train_font_paths()
    assert [Path(p).stem for p in paths] == list(TRAIN_FONTS) and not set(TRAIN_FONTS) & set(HELDOUT_FONTS)
    used = []
    real = render.text_sprite

    def spy(*a, **k):
        used.append(k.get("font_path"))
        return real(*a, **k)

    monkeypatch.setattr(compose, "text_sprite", spy)
    widths = []
    for i in range(40):
        rng = np.random.default_rng(i)
        font = paths[i % len(paths)]
        img = compose.word_card("lemon", rng, font)
        plain = compose.sign_scene("lemon", np.random.default_rng(100 + i), font)
        assert img.size == plain.size == (64, 64)
        sp = real("lemon", (0, 0, 0), int(0.55 * 64), int(0.22 * 64), font_path=font, max_size=40)
        widths.append(sp.width)
    assert used and set(used) <= set(paths)
    assert min(widths) >= 0.4 * 64 - 2


def test_objectnet_format(quick_world):
    from roz.datasets.classes import imagenet_1k, imagenet_lemmas

    root = quick_world / "mini-objectnet"
    f2l = _json(root / "mappings" / "folder_to_objectnet_label.json")
    o2i = _json(root / "mappings" / "objectnet_to_imagenet_1k.json")
    i2l = _json(root / "mappings" / "imagenet_to_labels.json")
    lem = imagenet_lemmas()
    in1k = imagenet_1k()
    assert i2l == {str(i): lem[w] for i, w in enumerate(in1k.wnids)}
    folders = {p.name for p in (root / "images").iterdir()}
    assert folders == set(f2l)
    assert set(o2i) < set(f2l.values())  # some folders have no ImageNet mapping
    lemma_set = set(lem.values())
    multi = [v for v in o2i.values() if "; " in v]
    assert multi, "at least one ObjectNet class maps to several ImageNet classes"
    for v in o2i.values():
        assert all(part in lemma_set for part in v.split("; ")), v
    assert o2i["Pen"] == "ballpoint, ballpoint pen, ballpen, Biro; fountain pen"
    for f in folders:
        assert _imgs(root / "images" / f), f


def _check_vid_like(root: Path, frame_ext: str):
    meta = root / "metadata"
    pm = _json(meta / "pmsets.json")
    labels = _json(meta / "labels.json")
    cmap = _json(meta / "class_idx_map.json")
    rev = _json(meta / "rev_class_idx_map.json")
    assert pm and labels
    for anchor, nbrs in pm.items():
        assert anchor not in nbrs and 1 <= len(nbrs) <= 20
        assert (root / anchor).is_file() and anchor.endswith(frame_ext)
        for k in nbrs:
            assert (root / k).is_file(), k
            assert labels[k] == labels[anchor]
    assert all(isinstance(v, list) and all(isinstance(c, int) for c in v) for v in labels.values())
    for k, c in cmap.items():
        assert int(k) in rev[str(c)]
    coarse = {c for v in labels.values() for c in v}
    assert coarse == {int(k) for k in rev}  # every coarse class has videos
    return pm, labels, rev


def test_vid_format(quick_world):
    import re

    pm, labels, rev = _check_vid_like(quick_world / "mini-vid", ".JPEG")
    assert all(re.fullmatch(r"val/ILSVRC2015_val_\d{8}/\d{6}\.JPEG", k) for k in labels)
    # anchors neighbours lie within +-10 frames
    for a, nbrs in pm.items():
        fa = int(a.rsplit("/", 1)[1].split(".")[0])
        assert all(abs(int(k.rsplit("/", 1)[1].split(".")[0]) - fa) <= 10 for k in nbrs)
    assert any(len(v) > 1 for v in rev.values())
    im = Image.open(quick_world / "mini-vid" / next(iter(pm)))
    assert im.format == "JPEG" and im.size == (64, 64)


def test_ytbb_format(quick_world):
    import re

    root = quick_world / "mini-ytbb"
    pm, labels, rev = _check_vid_like(root, ".jpg")
    ann = _json(root / "metadata" / "anchor_labels.json")
    idx = _json(root / "metadata" / "ytbb_class_index.json")
    assert ann["labels"][:3] == ["good", "unsure", "bad"] and ann["labels"][3:] == [idx[str(i)] for i in range(len(idx))]
    keys = {a["key"] for a in ann["annotations"]}
    assert keys == set(pm)
    for a in ann["annotations"]:
        assert set(a) == {"key", "notes", "labels"} and 0 in a["labels"]
        m = re.fullmatch(r"(.{11})_(\d+)/frame-(\d+)\.jpg", a["key"])
        assert m and int(m.group(3)) == round(int(m.group(2)) / 1000 * 15)
        assert [c - 3 for c in a["labels"] if c >= 3] == labels[a["key"]]
    assert set(_json(root / "metadata" / "class_idx_map.json").values()) <= {int(k) for k in idx}


def test_corpus_and_planted_duplicates(quick_world):
    import numpy as np

    root = quick_world / "corpus"
    rows = [json.loads(line) for line in (root / "captions.jsonl").read_text().splitlines()]
    assert rows and all(set(r) == {"file", "caption", "wnid", "style", "kind"} for r in rows)
    files = {p.name for p in (root / "images").iterdir()}
    assert {r["file"].split("/", 1)[1] for r in rows} == files
    styles = {r["style"] for r in rows}
    assert {"google", "twitter", "openmoji", "openmoji-black", "fluent-flat", "fluent-modern", "text"} <= styles
    assert {r["kind"] for r in rows} == {"object", "text", "text+object", "sign"}
    names = dict(zip(*(_json(quick_world / "classes.json")[k] for k in ("wnids", "names"))))
    quoted = {f'"{n}"' for n in names.values()}
    for r in rows:
        if r["kind"] == "sign":  # the sign says the class's name, quoted
            assert f'"{names[r["wnid"]]}"' in r["caption"]
        elif r["kind"] == "text":  # the written class name: quoted as writing, or named by alt-text
            assert names[r["wnid"]] in r["caption"]
        elif r["kind"] == "text+object":  # the object's name and the word written on it (any class's)
            assert names[r["wnid"]] in r["caption"] and any(q in r["caption"] for q in quoted)
    obj = [r for r in rows if r["kind"] == "text+object"]
    assert any(f'"{names[r["wnid"]]}"' not in r["caption"] for r in obj)  # words of other classes too
    planted = _json(root / "planted_duplicates.json")

    def small(p):  # blurred, normalised 16x16 thumbnail: robust to the crop/brightness change
        im = Image.open(p).convert("L").filter(ImageFilter.GaussianBlur(1.5)).resize((16, 16), Image.BILINEAR)
        a = np.asarray(im, dtype=np.float32).ravel()
        a -= a.mean()
        return a / (np.linalg.norm(a) + 1e-6)

    by_split, ranks = {}, []
    tests = {s: sorted((quick_world / s).rglob("*.png")) for s in ("mini-r", "mini-sketch")}
    thumbs = {s: np.stack([small(p) for p in ps]) for s, ps in tests.items()}
    for d in planted:
        by_split[d["split"]] = by_split.get(d["split"], 0) + 1
        sim = thumbs[d["split"]] @ small(root / d["corpus_file"])
        src = tests[d["split"]].index(quick_world / d["split"] / d["test_file"])
        ranks.append(int((sim > sim[src]).sum()))
    # each planted copy is (nearly always) most similar to the test image it was made from
    assert max(ranks) <= 2 and sum(r == 0 for r in ranks) >= 0.9 * len(ranks)
    n_r = len(list((quick_world / "mini-r").rglob("*.png")))
    n_s = len(list((quick_world / "mini-sketch").rglob("*.png")))
    assert by_split["mini-r"] == round(0.3 * n_r) and by_split["mini-sketch"] == round(0.2 * n_s)


def test_build_json_and_reuse(quick_world):
    from roz.world.build import build_world, read_build

    b = read_build(quick_world)
    assert b["params"]["quick"] is True and b["classes"] >= 50
    for split in ("mini-train", "mini-val", "mini-v2", "mini-sketch", "mini-r", "mini-objectnet", "mini-vid", "mini-ytbb", "mini-cueconflict", "corpus"):
        assert b["counts"][split] > 0, split
    listing = (quick_world / "FILES.txt").read_text().splitlines()
    assert len(listing) == b["n_files"]
    mtime = (quick_world / "BUILD.json").stat().st_mtime
    assert build_world(quick=True) == quick_world
    assert (quick_world / "BUILD.json").stat().st_mtime == mtime  # reused, not rebuilt


def test_determinism(world_env, tmp_path):
    from roz.world.build import build_world, read_build

    a = read_build(build_world(tmp_path / "a", seed=3, sizes=TINY, workers=2))
    b = read_build(build_world(tmp_path / "b", seed=3, sizes=TINY, workers=1))  # worker count does not matter
    c = read_build(build_world(tmp_path / "c", seed=4, sizes=TINY, workers=1))
    assert a["content_sha256"] == b["content_sha256"]
    assert a["content_sha256"] != c["content_sha256"]
    assert (tmp_path / "a" / "FILES.txt").read_text() == (tmp_path / "b" / "FILES.txt").read_text()


def test_missing_assets_error(tmp_path, monkeypatch):
    from roz.errors import DataError
    from roz.world.assets import ensure_assets

    monkeypatch.setenv("ROZ_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ROZ_ASSETS", str(tmp_path / "nothing-here"))
    with pytest.raises(DataError) as e:
        ensure_assets()
    assert "ROZ_ASSETS" in str(e.value) and "npm pack" in str(e.value)
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("ROZ_ASSETS", str(tmp_path / "empty"))
    with pytest.raises(DataError, match="ROZ_ASSETS"):
        ensure_assets()
    monkeypatch.delenv("ROZ_ASSETS")
    with pytest.raises(DataError, match="ROZ_ASSETS"):
        ensure_assets(fetch=False)


def test_tampered_tarball_rejected(tmp_path, monkeypatch):
    from roz.errors import DataError
    from roz.world.assets import PACKAGES, ensure_assets

    d = tmp_path / "tgz"
    d.mkdir()
    for p in PACKAGES.values():
        (d / f"{p.stem}.tgz").write_bytes(b"not the real tarball")
    monkeypatch.setenv("ROZ_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ROZ_ASSETS", str(d))
    with pytest.raises(DataError, match="checksum mismatch"):
        ensure_assets()


def test_mini_a(quick_world, tmp_path):
    import shutil

    import torch

    from roz.world.mini_a import build_mini_a

    w = tmp_path / "w"
    w.mkdir()
    shutil.copy(quick_world / "classes.json", w / "classes.json")
    n_cls = len(_json(w / "classes.json")["wnids"])
    always0 = lambda x: torch.zeros(x.shape[0], dtype=torch.long)  # noqa: E731
    out = build_mini_a(w, [always0], n_candidates=2 * n_cls, seed=0)
    meta = _json(out / "MINI_A.json")
    assert meta["n_kept"] == 2 * n_cls - 2  # everything but class 0 is misclassified
    first = _json(w / "classes.json")["wnids"][0]
    assert not (out / first).exists()
    assert len(list(out.rglob("*.png"))) == meta["n_kept"]


def test_offline_fetch_error(tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    from roz.errors import DataError
    from roz.world.assets import ensure_assets

    def offline(*a, **k):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setenv("ROZ_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ROZ_ASSETS", raising=False)
    with pytest.raises(DataError) as e:
        ensure_assets()
    msg = str(e.value)
    assert "cannot download https://registry.npmjs.org/" in msg and "ROZ_ASSETS=" in msg
