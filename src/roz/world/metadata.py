"""The world's metadata files in the real datasets' formats (ObjectNet mappings, video pm-k
sets) and the overlap corpus's planted near-duplicates."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from PIL import Image

from roz.datasets.classes import imagenet_1k, imagenet_lemmas
from roz.world import compose, splits
from roz.world.concepts import EXTRAS, OBJECTNET, imagenet_index, roz_mini
from roz.world.files import json_bytes


def objectnet_folders(cs) -> dict[str, tuple[str, str]]:
    out = {}
    for w, n in zip(cs.wnids, cs.names):
        if w in OBJECTNET:
            out[w] = OBJECTNET[w]
        else:
            folder = "".join(ch if ch.isalnum() else "_" for ch in n.lower())
            out[w] = (folder, n[0].upper() + n[1:])
    return out


def objectnet_meta(cs, folders) -> dict[str, bytes]:
    lem = imagenet_lemmas()
    inidx = imagenet_index()
    f2l = {f: label for f, label in folders.values()}
    f2l.update({e[2]: e[3] for e in EXTRAS})
    by_label: dict[str, list[str]] = {}
    for w, (_, lab) in folders.items():
        by_label.setdefault(lab, []).append(w)
    o2i = {lab: "; ".join(lem[w] for w in sorted(ws, key=inidx.get)) for lab, ws in sorted(by_label.items())}
    in1k = imagenet_1k()
    i2l = {str(i): lem[w] for i, w in enumerate(in1k.wnids)}
    return {
        "mini-objectnet/mappings/folder_to_objectnet_label.json": json_bytes(dict(sorted(f2l.items()))),
        "mini-objectnet/mappings/objectnet_to_imagenet_1k.json": json_bytes(o2i),
        "mini-objectnet/mappings/imagenet_to_labels.json": json_bytes(i2l, indent=3),
    }


def video_meta(split: str, recs: list, groups, inidx, ytbb: bool) -> dict[str, bytes]:
    recs = sorted(recs, key=lambda r: r["anchor"])
    pmsets = {r["anchor"]: [k for k in r["frames"] if k != r["anchor"]] for r in recs}
    labels = {k: [r["coarse"]] for r in recs for k in r["frames"]}
    cmap, rev = {}, {}
    for gid, (_, members) in enumerate(groups):
        idxs = sorted(inidx[w] for w in members)
        rev[str(gid)] = idxs
        for i in idxs:
            cmap[str(i)] = gid
    cmap = {k: cmap[k] for k in sorted(cmap, key=int)}
    out = {
        f"{split}/metadata/pmsets.json": json_bytes(pmsets, indent=1),
        f"{split}/metadata/labels.json": json_bytes(dict(sorted(labels.items())), indent=1),
        f"{split}/metadata/class_idx_map.json": json_bytes(cmap),
        f"{split}/metadata/rev_class_idx_map.json": json_bytes(rev),
        f"{split}/metadata/coarse_class_names.json": json_bytes({str(g): n for g, (n, _) in enumerate(groups)}),
    }
    if ytbb:
        names = [n for n, _ in groups]
        ann = {
            "labels": ["good", "unsure", "bad"] + names,
            "annotations": [{"key": r["anchor"], "notes": "", "labels": [0, 3 + r["coarse"]]} for r in recs],
        }
        out[f"{split}/metadata/anchor_labels.json"] = json.dumps(ann).encode()
        out[f"{split}/metadata/ytbb_class_index.json"] = json_bytes({str(g): n for g, n in enumerate(names)}, indent=1)
        csv = "ytid,time_ms,label\n" + "".join(f"{r['ytid']},{r['ms']},{r['coarse']}\n" for r in recs)
        out[f"{split}/metadata/ytbb_robustness_test_anchors_full.csv"] = csv.encode()
    return out


def finish_corpus(staging: Path, seed: int, sizes: dict, all_files: dict, recs: list):
    """Plant near-duplicates of mini-r / mini-sketch test images, then give every corpus image a
    neutral name (a shuffled running number) so names carry no hint of kind or origin."""
    items = []  # (sortkey, source path under staging or image, record)
    for r in recs:
        items.append({"src": r["staged"], "caption": r["caption"], "wnid": r["wnid"], "style": r["style"], "kind": r["kind"]})
    cs = roz_mini()
    names = dict(zip(cs.wnids, cs.names))
    planted = []
    staged_sha = {k: v for k, v in all_files.items() if k.startswith("corpus/_staging/")}
    for split, frac in (("mini-r", sizes["dup-mini-r"]), ("mini-sketch", sizes["dup-mini-sketch"])):
        test = sorted(k for k in all_files if k.startswith(split + "/"))
        rng = splits.rng_for(seed, 0, f"dups/{split}")
        pick = sorted(rng.choice(len(test), size=int(round(frac * len(test))), replace=False).tolist())
        for j in pick:
            rel = test[j]
            wnid = rel.split("/")[1]
            r2 = splits.rng_for(seed, j, f"dup/{split}")
            img = compose.near_duplicate(Image.open(staging / rel).convert("RGB"), r2)
            k = int(rel.rsplit("_", 1)[1].split(".")[0])
            style = "openmoji-black" if split == "mini-sketch" else splits.R_STYLES[k % 3]
            staged = f"corpus/_staging/dup_{split}_{wnid}_{k:04d}.png"
            staged_sha[staged] = splits._write(staging, staged, img)
            items.append({"src": staged, "caption": splits.caption_object(r2, style, names[wnid]), "wnid": wnid, "style": style, "kind": "object", "dup_of": (split, rel.split("/", 1)[1])})
    order = sorted(range(len(items)), key=lambda i: hashlib.blake2b(f"{seed}:{items[i]['src']}".encode(), digest_size=8).digest())
    files, lines = {}, []
    for n, i in enumerate(order):
        it = items[i]
        fname = f"{n:06d}.png"
        dst = staging / "corpus" / "images" / fname
        dst.parent.mkdir(parents=True, exist_ok=True)
        src = staging / it["src"]
        sha = staged_sha.get(it["src"])
        if sha is None or not src.is_file():
            data = src.read_bytes() if src.is_file() else dst.read_bytes()
            sha = hashlib.sha256(data).hexdigest()
        if src.is_file():
            os.replace(src, dst)
        files[f"corpus/images/{fname}"] = sha
        lines.append(json.dumps({"file": f"images/{fname}", "caption": it["caption"], "wnid": it["wnid"], "style": it["style"], "kind": it["kind"]}, ensure_ascii=False) + "\n")
        if "dup_of" in it:
            planted.append({"corpus_file": f"images/{fname}", "split": it["dup_of"][0], "test_file": it["dup_of"][1]})
    planted.sort(key=lambda d: d["corpus_file"])
    return files, {"corpus/captions.jsonl": lines, "corpus/planted_duplicates.json": json.dumps(planted, indent=1) + "\n"}
