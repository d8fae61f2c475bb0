"""ImageNet-Vid-Robust and YTBB-Robust (Shankar et al. 2021), scored by pm-0 and pm-10.

**Samples.** One sample per (anchor, frame) pair: the anchor itself (``offset`` 0) and every
frame of its pm-set (the neighbouring frames within +-10 frames, as listed by the metadata). A
frame that belongs to several pm-sets is evaluated once per pm-set (exact, at the cost of
duplicate forward passes; in the released metadata pm-sets are disjoint). Per-sample columns:
``anchor`` (anchor key), ``frame`` (frame key), ``offset`` (frame number minus anchor frame
number, parsed from the file names; 0 for the anchor; for names without a frame number, the
frame's 1-based position in the pm-set).

**Scoring** (the testbed's ``validate_vid_robust`` / ``validate_ytbb_robust``): the model's
ImageNet logits are max-merged into the video classes (``rev_class_idx_map.json``: video class ->
ImageNet indices); a frame is correct when the argmax is in its label list (multi-label).
``pm0`` = % of anchors correct; ``pm10`` = % of anchors that are correct AND whose every pm-set
frame is correct. Both use the number of anchors as denominator.

ImageNet-Vid-Robust: ``ROOT/metadata/{pmsets,labels,class_idx_map,rev_class_idx_map}.json``,
frames at ``ROOT/<key>`` (``val/ILSVRC2015_val_00000000/000432.JPEG``); each frame is scored against
its own labels in ``labels.json``.

YTBB-Robust: frames ``ROOT/<ytid>_<ms>/frame-<n>.jpg``; metadata in ``ROOT/metadata/``. If
``pmsets.json`` + ``labels.json`` are present they are used as for Vid-Robust. Otherwise the
testbed's metadata is read: ``anchor_labels.json`` (reviewed anchors; kept: marked ``good`` and
neither ``bad`` nor ``unsure``), ``ytbb_robustness_test_anchors_full.csv`` (the original YTBB
label of each anchor; YTBB's ids 22=car / 23=none are swapped into ``ytbb_class_index.json``'s
22=none / 23=car, as the testbed does), ``ytbb_class_index.json`` (24 class names) and the class
maps. Every pm-set frame is scored against its anchor's labels. With ``pmk_labels.json`` (the
reviewed neighbour annotations) pm-sets are the reviewed-similar frames and anchors flagged
``bad-anchor`` are dropped (testbed); without it the pm-set is every frame file present within
+-10 frames of the anchor (recorded as ``pmsets: derived-unreviewed``).

Video classes with no ImageNet class (YTBB: cow, giraffe, skateboard, toilet, none) cannot be
predicted and are left out of the label space; a frame whose labels are all such classes is
always wrong (target -1, no valid label). The testbed's projection filled those classes with 0
logits instead, an artefact that could only matter when every mapped logit is negative.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from roz.datasets._util import fail_missing, read_json
from roz.datasets.base import EvalDataset, LabelSpace
from roz.datasets.classes import imagenet_1k
from roz.datasets.info import DatasetInfo
from roz.errors import DataError

INFOS: list[DatasetInfo] = []  # this family's datasets; roz.datasets.registry registers them

PM_K = 10
# The 30 ImageNet-VID (ILSVRC2015 VID) class names, in the class-id order of the Vid-Robust
# metadata. The metadata ships no names; these are used only for names (head=subset), never for
# the class map, which always comes from rev_class_idx_map.json. Overridable by
# metadata/class_names.json.
VID_CLASS_NAMES = (
    "airplane", "antelope", "bear", "bicycle", "bird", "bus", "car", "cattle", "dog", "domestic cat",
    "elephant", "fox", "giant panda", "hamster", "horse", "lion", "lizard", "monkey", "motorcycle",
    "rabbit", "red panda", "sheep", "snake", "squirrel", "tiger", "train", "turtle", "watercraft",
    "whale", "zebra",
)
NAME_FILES = ("class_names.json", "coarse_class_names.json")  # optional {class id: name}
SOURCE = "https://github.com/modestyachts/robust-vid (imagenet_vid_ytbb_robust.tar.gz)"
VID_LAYOUT = ("  ROOT/metadata/pmsets.json, labels.json, class_idx_map.json, rev_class_idx_map.json\n"
              "  ROOT/<frame key>   e.g. ROOT/val/ILSVRC2015_val_00000000/000432.JPEG   (1,109 anchors)")
YTBB_LAYOUT = ("  ROOT/<ytid>_<ms>/frame-<n>.jpg   (anchor frames and their +-10 neighbours)\n"
               "  ROOT/metadata/anchor_labels.json, ytbb_robustness_test_anchors_full.csv, ytbb_class_index.json,\n"
               "    class_idx_map.json, rev_class_idx_map.json [, pmk_labels.json]  (or pmsets.json + labels.json)")
_NUM_RE = re.compile(r"(\d+)(?=\.[A-Za-z]+$)")


@dataclass
class VideoPmkDataset(EvalDataset):
    """Samples are (anchor, frame) pairs; ``aggregate`` computes pm-0 and pm-k per anchor."""

    valid: list[tuple[int, ...]] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)
    frames: list[str] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    k: int = PM_K

    def valid_labels(self, i: int) -> tuple[int, ...]:
        return self.valid[i]

    def sample_meta(self) -> dict[str, list]:
        return {"anchor": list(self.anchors), "frame": list(self.frames), "offset": list(self.offsets)}

    def metric_names(self) -> list[str]:
        return ["pm0", f"pm{self.k}"]

    def aggregate(self, rows) -> dict[str, float]:
        return aggregate_pmk(rows, None, f"pm{self.k}")


def aggregate_pmk(rows, k: int | None = None, name: str = f"pm{PM_K}") -> dict[str, float]:
    """pm-0 and pm-k (percent) from per-sample rows with ``anchor``, ``frame``, ``offset``, ``correct``.

    The anchor row is the one whose ``frame`` equals its ``anchor``. ``k=None`` (the protocol) uses
    every row of the anchor's pm-set as listed by the metadata; an int ``k`` re-scores with only the
    frames within ``|offset| <= k``. Anchors whose anchor row is absent (e.g. a skipped unreadable
    frame) are not scored."""
    if len(rows) == 0:
        return {"pm0": float("nan"), name: float("nan"), "n_anchors": 0, "n": 0}
    df = rows[["anchor", "frame", "offset", "correct"]].copy()
    df["correct"] = df["correct"].astype(bool)
    anchor_ok = df[df["frame"] == df["anchor"]].groupby("anchor")["correct"].all()
    pm = df if k is None else df[(df["frame"] == df["anchor"]) | (df["offset"].abs() <= k)]
    all_ok = pm.groupby("anchor")["correct"].all().reindex(anchor_ok.index)
    n = len(anchor_ok)
    if n == 0:
        return {"pm0": float("nan"), name: float("nan"), "n_anchors": 0, "n": len(rows)}
    pmk = all_ok.astype(bool) & anchor_ok
    return {"pm0": 100.0 * float(anchor_ok.mean()), name: 100.0 * float(pmk.mean()), "n_anchors": n, "n": len(rows)}


def frame_number(key: str) -> int | None:
    m = _NUM_RE.search(Path(key).name)
    return int(m.group(1)) if m else None


def _offset(anchor: str, frame: str, j: int) -> int:
    a, f = frame_number(anchor), frame_number(frame)
    if a is not None and f is not None and Path(anchor).parent == Path(frame).parent and f != a:
        return f - a
    return j + 1  # unparseable names: a non-zero position (still in the pm-set)


def load_class_map(meta: Path, what: str) -> dict[int, tuple[int, ...]]:
    """video class id -> ImageNet-1k indices, from ``rev_class_idx_map.json`` (or the inverse of
    ``class_idx_map.json``); both must agree when both ship."""
    rev_p, fwd_p = meta / "rev_class_idx_map.json", meta / "class_idx_map.json"
    rev = fwd = None
    if rev_p.is_file():
        rev = {int(c): tuple(sorted(int(i) for i in v)) for c, v in read_json(rev_p, what).items()}
    if fwd_p.is_file():
        inv: dict[int, list[int]] = {}
        for i, c in read_json(fwd_p, what).items():
            inv.setdefault(int(c), []).append(int(i))
        fwd = {c: tuple(sorted(v)) for c, v in inv.items()}
    if rev is None and fwd is None:
        raise DataError(f"{what}: no class map in {meta} (rev_class_idx_map.json / class_idx_map.json)")
    if rev is not None and fwd is not None and rev != fwd:
        raise DataError(f"{what}: {rev_p.name} and {fwd_p.name} disagree")
    out = rev if rev is not None else fwd
    for c, idx in out.items():
        if any(not 0 <= i < 1000 for i in idx):
            raise DataError(f"{what}: class {c} maps to an index outside ImageNet-1k")
    return out


def _label_space(cmap: dict[int, tuple[int, ...]], names: dict[int, str]):
    cs = imagenet_1k()
    ids = sorted(c for c, idx in cmap.items() if idx)
    pos = {c: p for p, c in enumerate(ids)}
    labels = LabelSpace([tuple(cs.wnids[i] for i in cmap[c]) for c in ids], [names.get(c, f"class {c}") for c in ids])
    return labels, pos


def _metadata_dir(root: Path, what: str) -> Path:
    for m in (root / "metadata", root / f"{what}_metadata", root):
        if m.is_dir() and ((m / "pmsets.json").is_file() or (m / "anchor_labels.json").is_file()):
            return m
    raise DataError(f"{what}: no metadata/ folder with pmsets.json (or anchor_labels.json) under {root}")


def _build(name, root, pairs, frame_labels, cmap, names, protocol, on_bad_image, check_files=True):
    """pairs: [(anchor, frame, offset)] ; frame_labels(anchor, frame) -> video class ids."""
    labels, pos = _label_space(cmap, names)
    if check_files:
        keys = sorted({f for _, f, _ in pairs})
        fail_missing(name, [k for k in keys if not (root / k).is_file()], len(keys), root)
    samples, valid, anchors, frames, offsets = [], [], [], [], []
    for a, f, off in pairs:
        v = tuple(dict.fromkeys(pos[c] for c in frame_labels(a, f) if c in pos))
        samples.append((f, v[0] if v else -1))
        valid.append(v)
        anchors.append(a)
        frames.append(f)
        offsets.append(off)
    n_anchors = len({a for a, _, _ in pairs})
    unmapped = sorted(set(cmap) ^ set(pos)) if cmap else []
    proto = {"dataset": name, "metrics": f"pm0, pm{PM_K}", "merge": "max over each video class's ImageNet classes",
             "n_classes": len(labels), "n_anchors": n_anchors, "n_pairs": len(pairs),
             "samples": "one per (anchor, frame) pair", **protocol}
    if unmapped:
        proto["classes_without_imagenet_map"] = unmapped
    return VideoPmkDataset(name=name, root=root, samples=samples, labels=labels, protocol=proto,
                           on_bad_image=on_bad_image, valid=valid, anchors=anchors, frames=frames, offsets=offsets)


def _pairs_from_pmsets(pmsets: dict) -> list[tuple[str, str, int]]:
    pairs = []
    for a in sorted(pmsets):
        pairs.append((a, a, 0))
        for j, f in enumerate(pmsets[a]):
            if f != a:
                pairs.append((a, f, _offset(a, f, j)))
    return pairs


def _norm_labels(labels: dict, what: str) -> dict[str, tuple[int, ...]]:
    out = {}
    for k, v in labels.items():
        out[k] = tuple(int(x) for x in (v if isinstance(v, list) else [v]))
    return out


def vid_robust_dataset(root: Path, on_bad_image: str = "fail") -> VideoPmkDataset:
    name = "imagenet-vid-robust"
    root = Path(root)
    if not (root / "metadata").is_dir() and (root / "imagenet-vid-robust" / "metadata").is_dir():
        root = root / "imagenet-vid-robust"
    meta = _metadata_dir(root, name)
    pmsets = read_json(meta / "pmsets.json", name)
    labels = _norm_labels(read_json(meta / "labels.json", name), name)
    cmap = load_class_map(meta, name)
    names = dict(enumerate(VID_CLASS_NAMES)) if len(cmap) == len(VID_CLASS_NAMES) else {}
    names_file = next((meta / f for f in NAME_FILES if (meta / f).is_file()), None)
    if names_file is not None:
        cn = read_json(names_file, name)
        names = {int(k): v for k, v in (cn.items() if isinstance(cn, dict) else enumerate(cn))}
    pairs = _pairs_from_pmsets(pmsets)
    missing = sorted({f for _, f, _ in pairs if f not in labels})
    if missing:
        raise DataError(f"{name}: {len(missing)} frames of pmsets.json have no entry in labels.json (e.g. {missing[:3]})")
    return _build(name, root, pairs, lambda a, f: labels[f], cmap, names,
                  {"pmsets": "metadata/pmsets.json", "frame_labels": "own (labels.json)",
                   "class_names": f"metadata/{names_file.name}" if names_file is not None
                   else ("ImageNet-VID class names" if names else "class ids")}, on_bad_image)


# ----------------------------------------------------------------------------- YTBB
def path_to_key(p: str) -> str:
    parts = str(p).replace("\\", "/").rstrip("/").split("/")
    return "/".join(parts[-2:])


def parse_ytbb_key(key: str) -> tuple[str, int, int]:
    """``'<ytid>_<ms>/frame-<n>.jpg'`` -> (ytid, ms, n)."""
    parent, fname = path_to_key(key).split("/")
    ytid, ms = parent.rsplit("_", 1)
    n = int(fname.split("-", 1)[1].split(".")[0])
    return ytid, int(ms), n


def _good_rows(annotations: dict, must_have=("good",), must_not=("bad", "unsure")) -> tuple[list[dict], list[str]]:
    names = annotations["labels"]
    idx = {n: i for i, n in enumerate(names)}
    need = {idx[n] for n in must_have if n in idx}
    bad = {idx[n] for n in must_not if n in idx}
    latest = {}
    for row in annotations["annotations"]:  # later annotations of the same key win (testbed)
        latest[path_to_key(row["key"])] = row
    good = [dict(r, key=k) for k, r in latest.items() if need <= set(r["labels"]) and not (bad & set(r["labels"]))]
    return good, names


def _read_pmk_labels(path: Path, what: str):
    """Testbed's reviewed neighbour annotations -> (valid pairs by anchor, bad anchors)."""
    data = read_json(path, what)
    names = data["labels"]
    idx = {n: i for i, n in enumerate(names)}
    problematic = {idx[n] for n in ("dissimilar", "problematic", "incorrect", "dont know", "deformation",
                                    "background-change", "occlusion-increased", "blur-increase", "bad-anchor")
                   if n in idx}
    similar = idx.get("similar")
    latest = {r["key"]: r for r in data["annotations"]}
    valid: dict[str, set[str]] = {}
    bad_anchors = set()
    for k, r in latest.items():
        a, f = (path_to_key(x) for x in k.split(","))
        labs = set(r["labels"])
        if "bad-anchor" in idx and idx["bad-anchor"] in labs:
            bad_anchors.add(a)
        if similar is not None and similar in labs and not (labs & problematic):
            valid.setdefault(a, set()).add(f)
    return valid, bad_anchors


def ytbb_robust_dataset(root: Path, pmsets: str = "auto", on_bad_image: str = "fail") -> VideoPmkDataset:
    """``pmsets``: ``auto`` (metadata pmsets.json, else reviewed pmk_labels.json, else derived),
    ``metadata``, ``reviewed`` or ``derived``."""
    name = "ytbb-robust"
    root = Path(root)
    if not (root / "metadata").is_dir() and (root / "ytbb-robust" / "metadata").is_dir():
        root = root / "ytbb-robust"
    meta = _metadata_dir(root, name)
    cmap = load_class_map(meta, name)
    names: dict[int, str] = {}
    if (meta / "ytbb_class_index.json").is_file():
        names = {int(k): v for k, v in read_json(meta / "ytbb_class_index.json", name).items()}
    has_pm = (meta / "pmsets.json").is_file() and (meta / "labels.json").is_file()
    mode = pmsets
    if mode == "auto":
        mode = "metadata" if has_pm else ("reviewed" if (meta / "pmk_labels.json").is_file() else "derived")
    if mode not in ("metadata", "reviewed", "derived"):
        raise DataError(f"{name}: pmsets must be auto, metadata, reviewed or derived, got {pmsets!r}")
    proto = {"class_names": "metadata/ytbb_class_index.json" if names else "class ids"}
    if mode == "metadata":
        pm = read_json(meta / "pmsets.json", name)
        labels = _norm_labels(read_json(meta / "labels.json", name), name)
        pairs = _pairs_from_pmsets(pm)
        anchors_missing = [a for a in pm if a not in labels]
        if anchors_missing:
            raise DataError(f"{name}: {len(anchors_missing)} anchors have no labels (e.g. {anchors_missing[:3]})")
        proto.update({"pmsets": "metadata/pmsets.json", "frame_labels": "anchor's labels (testbed)"})
        return _build(name, root, pairs, lambda a, f: labels[a], cmap, names, proto, on_bad_image)

    # testbed metadata: reviewed anchors + original YTBB anchor labels
    if not names:
        raise DataError(f"{name}: {meta / 'ytbb_class_index.json'} is missing (needed to read anchor labels)")
    good, ann_names = _good_rows(read_json(meta / "anchor_labels.json", name))
    name_to_id = {v: k for k, v in names.items()}
    csv_p = meta / "ytbb_robustness_test_anchors_full.csv"
    if not csv_p.is_file():
        raise DataError(f"{name}: {csv_p} is missing (the original YTBB label of each anchor)")
    initial = {}
    with open(csv_p, newline="") as f:
        for row in csv.DictReader(f):
            lab = int(row["label"])
            lab = {22: 23, 23: 22}.get(lab, lab)  # YTBB ids (22 car, 23 none) -> ytbb_class_index ids
            initial[f"{row['ytid']}_{row['time_ms']}"] = lab
    anchor_labels: dict[str, tuple[int, ...]] = {}
    for r in good:
        folder = r["key"].split("/")[0]
        if folder not in initial:
            raise DataError(f"{name}: anchor {r['key']} is not in {csv_p.name}")
        added = [name_to_id[ann_names[i]] for i in r["labels"] if ann_names[i] in name_to_id]
        anchor_labels[r["key"]] = tuple(dict.fromkeys([*added, initial[folder]]))
    proto["anchor_labels"] = "anchor_labels.json good anchors + csv label (ids 22/23 swapped to class index)"
    if mode == "reviewed":
        valid_pm, bad_anchors = _read_pmk_labels(meta / "pmk_labels.json", name)
        for a in bad_anchors:
            anchor_labels.pop(a, None)
    fail_missing(name, [a for a in anchor_labels if not (root / a).is_file()], len(anchor_labels), root)
    pairs = []
    for a in sorted(anchor_labels):
        ytid, ms, n = parse_ytbb_key(a)
        pairs.append((a, a, 0))
        for i in range(-PM_K, PM_K + 1):
            if i == 0:
                continue
            fkey = f"{ytid}_{ms}/frame-{n + i}.jpg"
            if mode == "reviewed":
                if fkey in valid_pm.get(a, ()):
                    pairs.append((a, fkey, i))
            elif (root / fkey).is_file():
                pairs.append((a, fkey, i))
    proto["pmsets"] = ("reviewed (metadata/pmk_labels.json)" if mode == "reviewed"
                       else f"derived-unreviewed (all frame files within +-{PM_K} of the anchor)")
    proto["frame_labels"] = "anchor's labels (testbed)"
    return _build(name, root, pairs, lambda a, f: anchor_labels[a], cmap, names, proto, on_bad_image,
                  check_files=(mode == "reviewed"))


INFOS.append(DatasetInfo(
    name="imagenet-vid-robust", factory=lambda root, **o: vid_robust_dataset(root, **o),
    description="ImageNet-Vid-Robust: 30 video classes, pm-0 / pm-10 over 1,109 anchors",
    layout=VID_LAYOUT, source=SOURCE, expected_counts={"anchors": 1109, "n_classes": 30},
    metrics=("pm0", "pm10"), paper_order=60, tags=("natural", "video"),
))
INFOS.append(DatasetInfo(
    name="ytbb-robust", factory=lambda root, **o: ytbb_robust_dataset(root, **o),
    description="YTBB-Robust: 24 YouTube-BB classes, pm-0 / pm-10 (option pmsets=auto|metadata|reviewed|derived)",
    layout=YTBB_LAYOUT, source=SOURCE, expected_counts={"anchors_listed": 2529, "n_classes": 24},
    metrics=("pm0", "pm10"), paper_order=70, tags=("natural", "video"),
))
