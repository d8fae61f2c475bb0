"""Build the ROZ-Mini world: ``build_world()`` -> the world root.

A build writes into ``.<name>.partial/`` next to the root, stage by stage (a stage that
finished is recorded under ``.done/`` and skipped when an interrupted build is resumed with the
same parameters), then writes ``BUILD.json`` (parameters, versions, per-split counts, sha256 of
the sorted file-hash list) and renames the folder into place.  A root whose ``BUILD.json``
matches the parameters is reused as is.  Same seed => byte-identical files.

Layout (see docs/world.md)::

    classes.json  BUILD.json
    mini-train/<wnid>/*.png   mini-val/<wnid>/*.png   mini-v2/<imagenet index>/*.png
    mini-sketch/<wnid>/*.png  mini-r/<wnid>/*.png     mini-cueconflict/<wnid>/*.png + cueconflict.json
    mini-objectnet/images/<folder>/*.png + mappings/{folder_to_objectnet_label,
        objectnet_to_imagenet_1k, imagenet_to_labels}.json
    mini-vid/val/ILSVRC2015_val_<8d>/<6d>.JPEG + metadata/{pmsets,labels,class_idx_map,rev_class_idx_map}.json
    mini-ytbb/<ytid>_<ms>/frame-<n>.jpg + metadata/{anchor_labels,ytbb_class_index,class_idx_map,
        rev_class_idx_map,pmsets,labels}.json + ytbb_robustness_test_anchors_full.csv
    corpus/images/*.png + captions.jsonl + planted_duplicates.json
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from roz.errors import DataError
from roz.paths import roz_home
from roz.world import metadata, splits
from roz.world.files import json_bytes, load_sprites, write_bytes
from roz.world.concepts import (
    CLASS_SET_NAME,
    CONCEPTS,
    EXTRAS,
    VID_GROUPS,
    YTBB_GROUPS,
    imagenet_index,
    roz_mini,
)

WORLD_VERSION = 2

FULL = {
    "mini-train": 80,
    "mini-val": 20,
    "mini-v2": 10,
    "mini-sketch": 10,
    "mini-r": 12,
    "mini-objectnet": 10,
    "mini-objectnet-unmapped": 8,
    "mini-vid-per-group": 4,
    "mini-ytbb-per-group": 4,
    "frames": 21,
    "mini-cueconflict": 8,
    "corpus": 450,
    "corpus-text": 0.55,
    "corpus-text-object": 0.07,
    "corpus-sign": 0.06,
    "dup-mini-r": 0.3,
    "dup-mini-sketch": 0.2,
}
QUICK = {
    **FULL,
    "mini-train": 6,
    "mini-val": 3,
    "mini-v2": 2,
    "mini-sketch": 3,
    "mini-r": 3,
    "mini-objectnet": 2,
    "mini-objectnet-unmapped": 2,
    "mini-vid-per-group": 1,
    "mini-ytbb-per-group": 1,
    "mini-cueconflict": 2,
    "frames": 11,
    "corpus": 12,
}

IMAGE_SPLITS = ("mini-train", "mini-val", "mini-v2", "mini-sketch", "mini-r", "mini-objectnet", "mini-vid", "mini-ytbb", "mini-cueconflict", "corpus")


def default_root(quick: bool = False, seed: int = 0) -> Path:
    name = f"roz-mini-v{WORLD_VERSION}" + ("-quick" if quick else "") + (f"-seed{seed}" if seed else "")
    return roz_home() / "world" / name


def _params(quick: bool, seed: int, sizes: dict | None = None) -> dict:
    sz = dict(QUICK if quick else FULL)
    if sizes:
        unknown = set(sizes) - set(sz)
        if unknown:
            raise DataError(f"unknown world size keys {sorted(unknown)}", hint=f"use some of {sorted(sz)}")
        sz.update(sizes)
    return {"name": CLASS_SET_NAME, "world_version": WORLD_VERSION, "seed": int(seed), "quick": bool(quick), "sizes": sz, "n_classes": len(CONCEPTS)}


def read_build(root: Path) -> dict | None:
    try:
        return json.loads((Path(root) / "BUILD.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def is_complete(root: Path, quick: bool = False, seed: int = 0, sizes: dict | None = None) -> bool:
    b = read_build(root)
    return b is not None and b.get("params") == _params(quick, seed, sizes)


@contextlib.contextmanager
def _lock(path: Path):
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class _Runner:
    """Runs jobs inline or on one pool of forked workers (created on first use, after the
    sprites are loaded, so workers inherit them)."""

    def __init__(self, workers: int):
        self.workers = workers
        self.pool = None

    def run(self, jobs: list) -> list:
        if self.workers <= 1 or len(jobs) < 4:
            return [splits.run_job(j) for j in jobs]
        if self.pool is None:
            import multiprocessing

            self.pool = multiprocessing.get_context("fork").Pool(self.workers)
        return list(self.pool.imap(splits.run_job, jobs, chunksize=1))

    def close(self):
        if self.pool is not None:
            self.pool.close()
            self.pool.join()
            self.pool = None


class _Stage:
    """A build stage whose files and records are kept under .done/ once complete."""

    def __init__(self, staging: Path, name: str):
        self.path = staging / ".done" / f"{name}.json"

    def load(self):
        try:
            d = json.loads(self.path.read_text())
            return d["files"], d["records"]
        except (OSError, json.JSONDecodeError, KeyError):
            return None

    def save(self, files, records):
        write_bytes(self.path.parent, self.path.name, json.dumps({"files": files, "records": records}).encode())


def _merge(results):
    files, recs = {}, {}
    for f, r in results:
        files.update(f)
        for k, v in r.items():
            recs.setdefault(k, []).extend(v)
    return files, recs


def build_world(
    root: Path | str | None = None,
    quick: bool = False,
    seed: int = 0,
    force: bool = False,
    workers: int | None = None,
    verbose: bool = False,
    sizes: dict | None = None,
) -> Path:
    """Build (or reuse) the ROZ-Mini world and return its root.

    ``quick`` builds few images per class (for tests, seconds); the full build is what the
    tiny CLIP and the baselines are trained on.  ``force`` rebuilds even if a complete build
    with the same parameters exists.  ``sizes`` overrides entries of ``FULL``/``QUICK``
    (images per class per split; the default root is only used without overrides).
    """
    if root is None and sizes:
        raise DataError("a world with custom sizes needs an explicit root", hint="pass root=...")
    root = Path(root) if root is not None else default_root(quick, seed)
    params = _params(quick, seed, sizes)
    if not force and is_complete(root, quick, seed, sizes):
        return root
    with _lock(root.parent / f".{root.name}.lock"):
        if not force and is_complete(root, quick, seed, sizes):
            return root
        return _build(root, params, quick, seed, workers, verbose)


def _build(root: Path, params: dict, quick: bool, seed: int, workers: int | None, verbose: bool) -> Path:
    from roz.world.assets import ensure_assets

    t0 = time.time()

    def log(msg):
        if verbose:
            print(f"[roz-world {time.time() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    sizes = params["sizes"]
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    assets = ensure_assets()
    log("assets ready")
    cs = roz_mini()
    inidx = imagenet_index()
    splits.SPRITES.clear()
    splits.SPRITES.update(load_sprites(assets))
    splits.NAMES.clear()
    splits.NAMES.update(dict(zip(cs.wnids, cs.names)))
    splits.CODEPOINT.clear()
    splits.CODEPOINT.update({c.wnid: c.codepoint for c in CONCEPTS})
    splits.CODEPOINT.update({e[2]: e[0] for e in EXTRAS})
    log(f"{len(splits.SPRITES)} sprites rendered")

    staging = root.parent / f".{root.name}.partial"
    pfile = staging / "PARAMS.json"
    if staging.exists():
        try:
            same = json.loads(pfile.read_text()) == params
        except (OSError, json.JSONDecodeError):
            same = False
        if not same:
            shutil.rmtree(staging)
    staging.mkdir(parents=True, exist_ok=True)
    pfile.write_text(json.dumps(params))

    runner = _Runner(workers)
    try:
        return _build_stages(root, staging, pfile, params, sizes, seed, cs, inidx, assets, runner, log, t0)
    finally:
        runner.close()


def _build_stages(root, staging, pfile, params, sizes, seed, cs, inidx, assets, runner, log, t0) -> Path:
    all_files: dict[str, str] = {}
    records: dict[str, list] = {}

    def stage(name, make_jobs):
        st = _Stage(staging, name)
        got = st.load()
        if got is None:
            jobs = make_jobs()
            files, recs = _merge(runner.run(jobs))
            st.save(files, recs)
            log(f"{name}: {len(files)} files")
        else:
            files, recs = got
            log(f"{name}: reused")
        all_files.update(files)
        for k, v in recs.items():
            records.setdefault(k, []).extend(v)

    on_folders = metadata.objectnet_folders(cs)
    _image_stages(stage, staging, seed, sizes, list(cs.wnids), inidx, on_folders)
    meta = _metadata_files(cs, inidx, on_folders, records)
    all_files = _corpus_stage(staging, seed, sizes, all_files, records, meta, log)
    for rel, data in meta.items():
        all_files[rel] = write_bytes(staging, rel, data)
    return _finish(root, staging, pfile, params, cs, assets, all_files, log, t0)


def _image_stages(stage, staging: Path, seed: int, sizes: dict, wnids: list, inidx: dict, on_folders: dict) -> None:
    """The image splits, one build stage each (jobs run on the runner's workers)."""
    S = staging
    stage("mini-train", lambda: [("job_folder", S, seed, "mini-train", w, w, sizes["mini-train"], "in_dist") for w in wnids])
    stage("mini-val", lambda: [("job_folder", S, seed, "mini-val", w, w, sizes["mini-val"], "in_dist") for w in wnids])
    stage("mini-v2", lambda: [("job_folder", S, seed, "mini-v2", str(inidx[w]), w, sizes["mini-v2"], "in_dist") for w in wnids])
    stage("mini-sketch", lambda: [("job_folder", S, seed, "mini-sketch", w, w, sizes["mini-sketch"], "sketch") for w in wnids])
    stage("mini-r", lambda: [("job_folder", S, seed, "mini-r", w, w, sizes["mini-r"], "rendition") for w in wnids])

    clutter_pool = wnids + [e[2] for e in EXTRAS]

    def on_jobs():
        jobs = [("job_objectnet", S, seed, on_folders[w][0], w, sizes["mini-objectnet"], clutter_pool) for w in wnids]
        jobs += [("job_objectnet", S, seed, e[2], e[2], sizes["mini-objectnet-unmapped"], clutter_pool) for e in EXTRAS]
        return jobs

    stage("mini-objectnet", on_jobs)
    stage("mini-cueconflict", lambda: [("job_cueconflict", S, seed, w, sizes["mini-cueconflict"], wnids) for w in wnids])

    def video_jobs(fn, groups, per):
        jobs, vid = [], 0
        for gid, (_, members) in enumerate(groups):
            for k in range(per):
                jobs.append((fn, S, seed, vid, members[k % len(members)], gid, sizes["frames"]))
                vid += 1
        return jobs

    stage("mini-vid", lambda: video_jobs("job_vid", VID_GROUPS, sizes["mini-vid-per-group"]))
    stage("mini-ytbb", lambda: video_jobs("job_ytbb", YTBB_GROUPS, sizes["mini-ytbb-per-group"]))
    stage(
        "corpus-raw",
        lambda: [("job_corpus", S, seed, w, sizes["corpus"], sizes["corpus-text"], sizes["corpus-text-object"],
                  sizes["corpus-sign"]) for w in wnids],
    )


def _metadata_files(cs, inidx: dict, on_folders: dict, records: dict) -> dict[str, bytes]:
    """The metadata files (cheap; always rewritten)."""
    meta: dict[str, bytes] = {}
    meta.update(metadata.objectnet_meta(cs, on_folders))
    meta.update(metadata.video_meta("mini-vid", records.get("vid", []), VID_GROUPS, inidx, ytbb=False))
    meta.update(metadata.video_meta("mini-ytbb", records.get("ytbb", []), YTBB_GROUPS, inidx, ytbb=True))
    cc = sorted(records.get("cueconflict", []), key=lambda r: r["file"])
    meta["mini-cueconflict/cueconflict.json"] = json_bytes(
        {"label": "shape", "images": [{"file": r["file"], "shape": r["shape"], "texture": r["texture"]} for r in cc]}
    )
    meta["classes.json"] = json_bytes({"name": CLASS_SET_NAME, "wnids": list(cs.wnids), "names": list(cs.names)})
    return meta


def _corpus_stage(staging: Path, seed: int, sizes: dict, all_files: dict, records: dict, meta: dict, log) -> dict:
    """The corpus: planted near-duplicates, neutral names; returns the file listing without the
    corpus's staging files (the corpus's metadata goes into ``meta``)."""
    st = _Stage(staging, "corpus")
    got = st.load()
    if got is None:
        cfiles, crecs = metadata.finish_corpus(staging, seed, sizes, all_files, records.get("corpus", []))
        st.save(cfiles, crecs)
    else:
        cfiles, crecs = got
    all_files = {k: v for k, v in all_files.items() if not k.startswith("corpus/_staging/")}
    all_files.update(cfiles)
    for k, v in crecs.items():
        meta[k] = "".join(v).encode() if k.endswith(".jsonl") else v.encode()
    shutil.rmtree(staging / "corpus" / "_staging", ignore_errors=True)
    log("corpus finished")
    return all_files


def _finish(root: Path, staging: Path, pfile: Path, params: dict, cs, assets, all_files: dict, log, t0) -> Path:
    """Write FILES.txt and BUILD.json, then move the staged world into place."""
    counts = {}
    for rel in all_files:
        top = rel.split("/", 1)[0]
        if top in IMAGE_SPLITS and rel.lower().endswith((".png", ".jpeg", ".jpg")):
            counts[top] = counts.get(top, 0) + 1
    listing = "".join(f"{k} {all_files[k]}\n" for k in sorted(all_files))
    import PIL

    build = {
        "params": params,
        "content_sha256": hashlib.sha256(listing.encode()).hexdigest(),
        "n_files": len(all_files),
        "counts": dict(sorted(counts.items())),
        "classes": len(cs),
        "assets_sha256": assets.fingerprint(),
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__, "pillow": PIL.__version__},
        "build_seconds": round(time.time() - t0, 1),
    }
    write_bytes(staging, "FILES.txt", listing.encode())
    shutil.rmtree(staging / ".done", ignore_errors=True)
    pfile.unlink(missing_ok=True)
    write_bytes(staging, "BUILD.json", json_bytes(build))
    if root.exists():
        old = root.parent / f".{root.name}.old{os.getpid()}"
        os.replace(root, old)
        os.replace(staging, root)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, root)
    log(f"done: {root} ({len(all_files)} files)")
    return root


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Build the ROZ-Mini world")
    ap.add_argument("--root", default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--workers", type=int, default=None)
    a = ap.parse_args(argv)
    try:
        root = build_world(a.root, quick=a.quick, seed=a.seed, force=a.force, workers=a.workers, verbose=True)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
