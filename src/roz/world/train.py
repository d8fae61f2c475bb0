"""Train ROZ-Mini's own models: ``roz-mini-clip`` and the supervised baselines.

Public API::

    train_all(world_root, out_dir, seed=0, quick=False, only=None) -> dict   # the MANIFEST
    verify_manifest(dir, deep=False) -> list[str]                           # [] when fine
    make_toy_world(root, ...) -> Path                                       # tiny world for tests

``train_all`` writes one ROZ checkpoint (``NAME.pt`` float16 state_dict + ``NAME.json``
sidecar, see :mod:`roz.models.checkpoint`) per model into ``out_dir`` plus ``MANIFEST.json``::

    {NAME: {file, sidecar, sha256, bytes, source, arch, config, params, seed, epochs, steps,
            train_seconds, mini_val_top1, code_version, ...}}

The shipped set lives in ``src/roz/world/checkpoints/`` (:data:`SHIPPED_DIR`).

Determinism: every model is seeded (weights, data order, augmentation) from ``seed``; on CPU
with a fixed thread count runs repeat bit-for-bit, but a different ``torch`` thread count or
build (BLAS reduction order) changes the floats slightly, so retrained weights (and their
sha256) need not match the shipped ones exactly -- accuracies agree to within noise.

Command line::

    python -m roz.world.train WORLD_ROOT [--out DIR] [--seed 0] [--quick] [--only NAME ...]
    python -m roz.world.train --verify DIR
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from roz.errors import ModelError
from roz.models.bpe import sidecar_tokenizer
from roz.models.checkpoint import atomic_write_bytes, load_state_dict, read_sidecar, save_checkpoint, sha256_file
from roz.world import train_baselines, train_clip, train_common

SHIPPED_DIR = Path(__file__).parent / "checkpoints"
MANIFEST = "MANIFEST.json"
SIZE_TARGET_BYTES = 20 * 1024 * 1024
SIZE_LIMIT_BYTES = 25 * 1024 * 1024

# The full CLIP run (sized for 2 CPU cores). quick=True overrides all of these.
CLIP_EPOCHS = 21
CLIP_BATCH = 128
CLIP_LR = 2e-3
# Each CLIP epoch draws every written-word pair and a fresh half of the plain object pairs: the
# words are what it must learn to read (issue 17), the objects are learnt from fewer passes.
CLIP_KIND_FRACTIONS = {"object": 0.5}
BASELINE_BATCH = 32  # small batches: more updates per CPU-second on short runs

__all__ = ["train_all", "verify_manifest", "make_toy_world", "SHIPPED_DIR", "MANIFEST", "BASELINES",
           "CLIP_ARCH", "load_manifest"]
BASELINES = train_baselines.BASELINES
CLIP_ARCH = train_clip.CLIP_ARCH


def load_manifest(out_dir: str | os.PathLike) -> dict:
    p = Path(out_dir) / MANIFEST
    return json.loads(p.read_text()) if p.is_file() else {}


@contextmanager
def _manifest_lock(out_dir: Path):
    """Serialise MANIFEST.json updates (several ``train_all(only=...)`` processes may share a dir)."""
    import fcntl
    import hashlib
    import tempfile

    key = hashlib.sha1(str(out_dir.resolve()).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"roz-manifest-{key}.lock", "w") as f:  # not in out_dir: it ships
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _update_manifest(out_dir: Path, name: str, entry: dict) -> None:
    with _manifest_lock(out_dir):
        man = load_manifest(out_dir)
        man[name] = entry
        atomic_write_bytes(out_dir / MANIFEST, (json.dumps(man, indent=2, sort_keys=True) + "\n").encode())
        os.chmod(out_dir / MANIFEST, 0o644)


def _save(model: torch.nn.Module, path: Path, meta: dict) -> Path:
    path = save_checkpoint(model.state_dict(), path, meta, half=True)
    for p in (path, path.with_suffix(".json")):
        os.chmod(p, 0o644)  # mkstemp makes 0600 files; shipped artefacts are world-readable
    return path


def _entry(path: Path, meta: dict, extra: dict) -> dict:
    return {"file": path.name, "sidecar": path.with_suffix(".json").name, "sha256": sha256_file(path),
            "bytes": path.stat().st_size, "source": meta["source"], "arch": meta["arch"], "role": meta["role"],
            **extra}


def _first_per_class(y: torch.Tensor, n: int | None) -> torch.Tensor:
    """Indices of the first ``n`` examples of every class (all when ``n`` is None)."""
    if n is None:
        return torch.arange(len(y))
    keep, seen = [], {}
    for i, c in enumerate(y.tolist()):
        if seen.get(c, 0) < n:
            seen[c] = seen.get(c, 0) + 1
            keep.append(i)
    return torch.tensor(keep, dtype=torch.long)


def _mean_tail(xs: list[float], k: int = 10) -> float | None:
    return round(sum(xs[-k:]) / len(xs[-k:]), 4) if xs else None


def train_all(world_root: str | os.PathLike, out_dir: str | os.PathLike, seed: int = 0, quick: bool = False,
              only: list[str] | None = None, threads: int | None = None, clip_epochs: int | None = None,
              log=None, keep_models: dict | None = None) -> dict:
    """Train the CLIP and every baseline on the world at ``world_root``; write checkpoints and
    ``MANIFEST.json`` into ``out_dir``; return the manifest.

    ``quick=True``: a few steps on a few images per class (seconds; for tests) -- same
    architectures and file format, meaningless accuracies. ``only``: names to (re)train; other
    entries already in ``out_dir``'s manifest are kept (several ``only`` runs may share one
    ``out_dir`` concurrently). ``threads``: torch CPU threads while training (restored after);
    on a shared, busy machine 1 is much faster than 2 (OpenMP threads spin-wait).
    ``clip_epochs``: override :data:`CLIP_EPOCHS`. ``keep_models``: a dict to receive the
    trained in-memory modules by name (their weights already rounded to the shipped float16).
    """
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    old_threads = torch.get_num_threads()
    train_common.set_threads(threads)
    try:
        return _train_all(Path(world_root), Path(out_dir), seed, quick, only, clip_epochs, log, keep_models)
    finally:
        torch.set_num_threads(old_threads)


def _train_all(world_root: Path, out_dir: Path, seed: int, quick: bool, only, clip_epochs, log, keep) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [CLIP_ARCH] + [s.name for s in BASELINES]
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise ValueError(f"unknown model names {unknown}; known: {names}")
    todo = [n for n in names if not only or n in only]
    t_all = time.time()

    classes = train_common.load_world_classes(world_root)
    lim = 6 if quick else None
    xtr, ytr = train_common.load_split(world_root, "mini-train", classes, limit_per_class=lim)
    xva, yva = train_common.load_split(world_root, "mini-val", classes, limit_per_class=lim)
    version = train_common.code_version()
    if not only:  # a full run replaces the set: drop stale checkpoints and manifest
        with _manifest_lock(out_dir):
            for p in out_dir.glob("*.pt"):
                p.unlink()
                p.with_suffix(".json").unlink(missing_ok=True)
            (out_dir / train_clip.BPE_FILE).unlink(missing_ok=True)
            (out_dir / MANIFEST).unlink(missing_ok=True)
    common_extra = {"seed": seed, "code_version": version, "quick": quick, "threads": torch.get_num_threads(),
                    "torch": torch.__version__, "wnids": classes.wnids}
    world = {"name": classes.name, "root_name": world_root.name, "n_classes": len(classes.wnids),
             "n_mini_val": len(yva)}

    ctx = {"world_root": world_root, "out_dir": out_dir, "seed": seed, "quick": quick, "log": log, "keep": keep,
           "classes": classes, "train": (xtr, ytr), "val": (xva, yva), "common_extra": common_extra, "world": world}
    if CLIP_ARCH in todo:
        _train_clip_model(ctx, clip_epochs)
    for spec in BASELINES:
        if spec.name in todo:
            _train_baseline_model(ctx, spec)

    manifest = load_manifest(out_dir)
    total = sum(e["bytes"] for e in manifest.values())
    log(f"[roz-mini] trained {len(todo)} models in {time.time() - t_all:.0f}s; {len(manifest)} in {out_dir}, "
        f".pt bytes {total} ({total / 2**20:.2f} MiB)")
    return manifest


def _train_clip_model(ctx: dict, clip_epochs) -> None:
    """Train, round, score, save and register the tiny CLIP (``ctx``: what ``_train_all`` loaded)."""
    world_root, out_dir, seed, quick, log, keep = (ctx[k] for k in ("world_root", "out_dir", "seed", "quick", "log", "keep"))
    classes, (xva, yva), common_extra, world = ctx["classes"], ctx["val"], ctx["common_extra"], ctx["world"]
    cx, caps, recs = train_common.load_corpus(world_root, limit=64 if quick else None)
    log(f"[clip] corpus {len(caps)} pairs, mini-val {len(yva)} images, {len(classes.wnids)} classes")
    epochs = 3 if quick else (clip_epochs or CLIP_EPOCHS)
    bs = 16 if quick else CLIP_BATCH
    tok, tok_record = train_clip.build_tokenizer(out_dir)
    log(f"[clip] compact vocabulary: {tok_record['vocab_size']} tokens ({tok_record['n_merges']} merges)")
    probe = torch.arange(0, len(yva), 3)  # a third of mini-val, one template: a cheap progress probe

    def probe_fn(m):  # one-template zero-shot top-1 and reading accuracy, each on a third of mini-val
        return (train_clip.zero_shot_accuracy(m, tok, classes.names, xva[probe], yva[probe], templates=["photo"])["photo"],
                train_clip.reading_accuracy(m, tok, classes.names, xva[probe], yva[probe], templates="photo"))

    model, info = train_clip.train_clip(cx, caps, tokenizer=tok, epochs=epochs, seed=seed, batch_size=bs, lr=CLIP_LR,
                                        kinds=[str(r.get("kind", "object")) for r in recs],
                                        kind_fractions=None if quick else CLIP_KIND_FRACTIONS, log=log,
                                        eval_fn=None if quick else probe_fn, eval_every_epochs=1)
    del cx
    train_common.round_to_half_(model)
    # quick: one template (an 80-template head over every class is most of a quick run's time)
    accs = train_clip.zero_shot_accuracy(model, tok, classes.names, xva, yva, templates=["photo"] if quick else None)
    top1 = accs["photo"] if quick else accs[train_clip.PRIMARY_TEMPLATES]
    reading = train_clip.reading_accuracy(model, tok, classes.names, xva, yva)
    log(f"[clip] mini-val zero-shot top-1 by template set: {accs}; reading accuracy {reading:.2f}")
    cfg = json.loads((train_clip.CONFIG_DIR / f"{CLIP_ARCH}.json").read_text())
    extra = {**common_extra, "epochs": epochs, "steps": info["steps"], "batch_size": info["batch_size"],
             "lr": info["lr"], "schedule": info["schedule"], "weight_decay": info["weight_decay"],
             "precision": info["precision"], "pairs_per_epoch": info["pairs_per_epoch"],
             "kind_fractions": info["kind_fractions"],
             "train_seconds": round(info["train_seconds"], 1),
             "final_loss": _mean_tail(info["losses"]), "loss_curve": info["loss_curve"],
             "probe_curve": [a for _, (a, _r) in info["evals"]],
             "reading_curve": [r for _, (_a, r) in info["evals"]], "mini_val_top1": top1,
             "mini_val_templates": "photo" if quick else train_clip.PRIMARY_TEMPLATES,
             "mini_val_top1_by_templates": accs, "reading_accuracy": reading, "params": train_common.n_params(model),
             "world": {**world, "n_corpus": len(caps)}, "config": cfg}
    meta = {"source": "openclip", "arch": CLIP_ARCH, "kwargs": {}, "classes": train_common.CLASS_SET_NAME,
            "role": "zeroshot", "templates": train_clip.PRIMARY_TEMPLATES, "tokenizer": tok_record,
            "preprocess": train_common.preprocess_meta(train_common.CLIP_MEAN, train_common.CLIP_STD), "extra": extra}
    path = _save(model, out_dir / f"{CLIP_ARCH}.pt", meta)
    _update_manifest(out_dir, CLIP_ARCH, _entry(path, meta, {k: v for k, v in extra.items() if k != "wnids"}))
    if keep is not None:
        keep[CLIP_ARCH] = model
    del model


def _train_baseline_model(ctx: dict, spec) -> None:
    """Train, round, score, save and register one baseline (``ctx``: what ``_train_all`` loaded)."""
    out_dir, seed, quick, log, keep = (ctx[k] for k in ("out_dir", "seed", "quick", "log", "keep"))
    classes, (xtr, ytr), (xva, yva), common_extra, world = (ctx[k] for k in ("classes", "train", "val", "common_extra",
                                                                              "world"))
    epochs = 1 if quick else spec.epochs
    idx = _first_per_class(ytr, None if quick else spec.per_class)
    model, info = train_baselines.train_baseline(spec, xtr[idx], ytr[idx], len(classes.wnids), seed=seed, epochs=epochs,
                                   batch_size=16 if quick else BASELINE_BATCH, log=log)
    train_common.round_to_half_(model)
    top1 = train_baselines.accuracy(model, xva, yva)
    train_top1 = train_baselines.accuracy(model, xtr, ytr)
    log(f"[{spec.name}] mini-val top-1 {top1:.2f} (mini-train {train_top1:.2f}) "
        f"{info['train_seconds']:.0f}s, {train_common.n_params(model)} params")
    kwargs = dict(spec.kwargs)
    extra = {**common_extra, "epochs": epochs, "steps": info["steps"], "batch_size": info["batch_size"],
             "lr": info["lr"], "weight_decay": info["weight_decay"], "label_smoothing": info["label_smoothing"],
             "train_seconds": round(info["train_seconds"], 1), "final_loss": _mean_tail(info["losses"]),
             "loss_curve": info["loss_curve"], "mini_val_top1": top1, "mini_train_top1": train_top1,
             "params": train_common.n_params(model), "train_per_class": None if quick else spec.per_class,
             "world": {**world, "n_mini_train_used": info["n_train"]}}
    meta = {"source": spec.source, "arch": spec.arch, "kwargs": kwargs, "classes": train_common.CLASS_SET_NAME,
            "role": "standard", "preprocess": train_common.preprocess_meta(train_common.IMAGENET_MEAN, train_common.IMAGENET_STD), "extra": extra}
    path = _save(model, out_dir / f"{spec.name}.pt", meta)
    _update_manifest(out_dir, spec.name, _entry(path, meta, {"config": kwargs, "num_classes": len(classes.wnids),
                                                             **{k: v for k, v in extra.items() if k != "wnids"}}))
    if keep is not None:
        keep[spec.name] = model
    del model


# ----------------------------------------------------------------------------- verification

def rebuild(meta: dict) -> torch.nn.Module:
    """Rebuild the (untrained) module a sidecar describes, as the model adapters do."""
    if meta["source"] == "openclip":
        import logging

        import open_clip

        train_clip.register_config()
        lg = logging.getLogger()
        old = lg.level
        lg.setLevel(logging.ERROR)
        try:
            return open_clip.create_model(meta["arch"], **meta.get("kwargs", {}))
        finally:
            lg.setLevel(old)
    n = len(meta["extra"]["wnids"]) if isinstance(meta.get("extra", {}).get("wnids"), list) else None
    if n is None and isinstance(meta.get("classes"), list):
        n = len(meta["classes"])
    if n is None:
        from roz.datasets.classes import get_class_set
        from roz.world import register

        register()
        n = len(get_class_set(meta["classes"]))
    return train_baselines.build_for(meta["source"], meta["arch"], meta.get("kwargs", {}), n)


def verify_manifest(dir: str | os.PathLike = SHIPPED_DIR, deep: bool = False) -> list[str]:
    """Check a checkpoint directory against its MANIFEST.json; returns problems ([] when fine).

    Checks files exist with the recorded size and sha256, sidecars agree, no unlisted
    checkpoints, total size within :data:`SIZE_LIMIT_BYTES`. ``deep=True`` also rebuilds each
    model and loads its weights strictly.
    """
    d = Path(dir)
    probs: list[str] = []
    mp = d / MANIFEST
    if not mp.is_file():
        return [f"{mp} not found"]
    try:
        man = json.loads(mp.read_text())
    except json.JSONDecodeError as e:
        return [f"{mp} is not valid JSON: {e}"]
    if not isinstance(man, dict) or not man:
        return [f"{mp} holds no entries"]
    listed = set()
    for name, e in sorted(man.items()):
        try:
            f = d / e["file"]
            listed.add(f.name)
            side = f.with_suffix(".json")
            listed.add(side.name)
            if not f.is_file():
                probs.append(f"{name}: file {f} missing")
                continue
            if f.stat().st_size != e["bytes"]:
                probs.append(f"{name}: {f.name} is {f.stat().st_size} bytes, manifest says {e['bytes']}")
            sha = sha256_file(f)
            if sha != e["sha256"]:
                probs.append(f"{name}: sha256 of {f.name} does not match the manifest")
            meta = read_sidecar(f)
            if meta is None:
                probs.append(f"{name}: sidecar {side.name} missing")
                continue
            if meta.get("sha256") != sha:
                probs.append(f"{name}: sidecar sha256 does not match {f.name}")
            for k in ("source", "arch", "kwargs", "classes", "role", "preprocess"):
                if k not in meta:
                    probs.append(f"{name}: sidecar lacks {k!r}")
            if meta.get("source") != e.get("source") or meta.get("arch") != e.get("arch"):
                probs.append(f"{name}: sidecar source/arch disagree with the manifest")
            pp = meta.get("preprocess", {})
            if pp.get("input_size") != train_common.IMAGE_SIZE or pp.get("resize_size") != train_common.IMAGE_SIZE:
                probs.append(f"{name}: preprocess is not {train_common.IMAGE_SIZE}px in / no crop")
            if meta.get("tokenizer") is not None:  # the same checks the model adapter makes on load
                try:
                    train_clip.register_config()
                    sidecar_tokenizer(meta["tokenizer"], f, meta["arch"])
                except ModelError as ex:
                    probs.append(f"{name}: {ex}")
            if deep and not probs:
                model = rebuild(meta)
                model.load_state_dict(load_state_dict(f, verify=meta["sha256"]), strict=True)
        except (KeyError, TypeError) as ex:
            probs.append(f"{name}: malformed manifest entry ({ex!r})")
        except Exception as ex:  # deep rebuild/load failures
            probs.append(f"{name}: cannot rebuild/load ({type(ex).__name__}: {str(ex)[:200]})")
    from roz.world.prompts import prompt_files

    listed |= prompt_files(d)  # the CLIP-Auto artefacts (PROMPTS.json) and their CoOp context tensors
    for p in sorted(d.glob("*.pt")):
        if p.name not in listed:
            probs.append(f"unlisted checkpoint {p.name}")
    total = sum(p.stat().st_size for p in d.iterdir() if p.is_file())
    if total > SIZE_LIMIT_BYTES:
        probs.append(f"checkpoint dir holds {total} bytes, over the {SIZE_LIMIT_BYTES}-byte limit")
    return probs


# ----------------------------------------------------------------------------- toy world

TOY_CLASSES = (
    ("n01443537", "goldfish"), ("n01644373", "tree frog"), ("n02123045", "tabby cat"),
    ("n02099601", "golden retriever"), ("n07714990", "broccoli"), ("n07753592", "banana"),
    ("n07745940", "strawberry"), ("n04254680", "soccer ball"),
)


def make_toy_world(root: str | os.PathLike, n_classes: int = 4, n_train: int = 12, n_val: int = 6,
                   n_corpus: int = 48, seed: int = 0) -> Path:
    """Write a tiny world with ROZ-Mini's layout (classes.json, mini-train/, mini-val/,
    corpus/images + captions.jsonl): each class is a coloured shape; a third of the corpus are
    written words captioned with the word."""
    import random

    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    root = Path(root)
    cls = list(TOY_CLASSES[:n_classes])
    palette = [(220, 40, 40), (40, 160, 60), (50, 80, 220), (230, 180, 30), (150, 60, 200), (30, 190, 200),
               (240, 120, 20), (90, 90, 90)]

    def draw(i: int) -> Image.Image:
        bg = tuple(rng.randint(200, 255) for _ in range(3))
        im = Image.new("RGB", (train_common.IMAGE_SIZE, train_common.IMAGE_SIZE), bg)
        d = ImageDraw.Draw(im)
        r = rng.randint(12, 22)
        cx, cy = rng.randint(r, 63 - r), rng.randint(r, 63 - r)
        col = tuple(max(0, min(255, c + rng.randint(-25, 25))) for c in palette[i % len(palette)])
        box = (cx - r, cy - r, cx + r, cy + r)
        shape = i % 4
        if shape == 0:
            d.ellipse(box, fill=col)
        elif shape == 1:
            d.rectangle(box, fill=col)
        elif shape == 2:
            d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=col)
        else:
            d.rectangle((cx - r, cy - r // 3, cx + r, cy + r // 3), fill=col)
            d.rectangle((cx - r // 3, cy - r, cx + r // 3, cy + r), fill=col)
        return im

    def word(i: int) -> Image.Image:
        im = Image.new("RGB", (train_common.IMAGE_SIZE, train_common.IMAGE_SIZE), (255, 255, 255))
        d = ImageDraw.Draw(im)
        d.text((rng.randint(0, 8), rng.randint(10, 40)), cls[i][1][:10], fill=(0, 0, 0))
        return im

    (root).mkdir(parents=True, exist_ok=True)
    (root / "classes.json").write_text(json.dumps({"name": "roz-mini", "wnids": [w for w, _ in cls],
                                                    "names": [n for _, n in cls]}, indent=1))
    for split, k in (("mini-train", n_train), ("mini-val", n_val)):
        for i, (w, _) in enumerate(cls):
            (root / split / w).mkdir(parents=True, exist_ok=True)
            for j in range(k):
                draw(i).save(root / split / w / f"{j:04d}.png")
    (root / "corpus" / "images").mkdir(parents=True, exist_ok=True)
    styles = ("photo", "drawing", "emoji")
    with open(root / "corpus" / "captions.jsonl", "w") as f:
        for j in range(n_corpus):
            i = j % len(cls)
            w, name = cls[i]
            if j % 3 == 2:
                im, kind, style = word(i), "text", "text"
                cap = f'the word "{name}" written in black'
            else:
                style = rng.choice(styles)
                im, kind = draw(i), "object"
                cap = f"a {style} of a {name}"
            fn = f"{j:05d}.png"
            im.save(root / "corpus" / "images" / fn)
            f.write(json.dumps({"file": fn, "caption": cap, "wnid": w, "style": style, "kind": kind}) + "\n")
    return root


# ----------------------------------------------------------------------------- CLI

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m roz.world.train", description=__doc__.split("\n")[0])
    ap.add_argument("world_root", nargs="?", help="a built ROZ-Mini world root")
    ap.add_argument("--out", default=str(SHIPPED_DIR), help="checkpoint directory (default: the shipped set)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--clip-epochs", type=int, default=None)
    ap.add_argument("--verify", metavar="DIR", default=None, help="only check DIR against its MANIFEST")
    a = ap.parse_args(argv)
    if a.verify:
        probs = verify_manifest(a.verify, deep=True)
        print("\n".join(probs) if probs else "ok")
        return 1 if probs else 0
    if not a.world_root:
        ap.error("world_root is required")
    man = train_all(a.world_root, a.out, seed=a.seed, quick=a.quick, only=a.only, threads=a.threads,
                    clip_epochs=a.clip_epochs)
    for k, e in man.items():
        print(f"{k:28s} top1 {e['mini_val_top1']:6.2f}  {e['bytes'] / 2**20:6.2f} MiB  {e['train_seconds']:7.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
