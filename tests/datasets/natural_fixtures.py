"""Fixture trees in the real layouts of the natural-shift datasets, and a scripted fake model.

Every image is a tiny solid-colour picture whose colour encodes the ImageNet-1k index the fake
model will predict for it (``color_for`` / ``decode``), so each test knows every prediction and
computes the expected accuracy / pm-k by hand. The fake model's logits: 10 for the encoded class,
``-idx/1000`` for every other class, so after any class mask the argmax of an out-of-mask
prediction is the lowest-index class of the mask, and the top-5 of an unmasked prediction is the
encoded class followed by classes 0, 1, 2, 3 (minus the encoded one).

Metadata is written in each dataset's own format; where a real file is small and public
(ObjectNet mappings, video class maps, YTBB class index, anchor-label vocabulary) it is copied
from tests/data/reference (see its README) so the loaders are exercised on the real format.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn

from roz.datasets.classes import imagenet_1k
from roz.engine.labelspace import LabelMap

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference"  # small real metadata, in the repo
SIZE = 16


# ----------------------------------------------------------------------------- images
def color_for(idx: int) -> tuple[int, int, int]:
    return (4 + 8 * (idx // 32), 4 + 8 * (idx % 32), 128)


def decode(rgb) -> int:
    r, g = (float(v) for v in rgb[:2])
    return int(round((r - 4) / 8)) * 32 + int(round((g - 4) / 8))


def write_image(path: Path, idx: int, size: int = SIZE, border_idx: int | None = None, border: int = 2) -> Path:
    """Solid image of ``color_for(idx)``; with ``border_idx`` a ``border``-px frame of a decoy colour."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.zeros((size, size, 3), np.uint8)
    a[:] = color_for(idx)
    if border_idx is not None:
        a[:border, :] = a[-border:, :] = a[:, :border] = a[:, -border:] = color_for(border_idx)
    img = Image.fromarray(a, "RGB")
    if path.suffix.lower() in (".jpg", ".jpeg"):
        img.save(path, quality=98, subsampling=0)
    else:
        img.save(path)
    return path


# ----------------------------------------------------------------------------- fake model
class FakeModel(nn.Module):
    """Reads the encoded class from one pixel (``pos='center'`` or ``'corner'``) of a [0,1] image
    batch ``[B,3,H,W]``; ``mean``/``std`` (if given) undo the normalisation first."""

    def __init__(self, pos: str = "center", mean=None, std=None):
        super().__init__()
        self.pos = pos
        self.wnids = list(imagenet_1k().wnids)
        self.register_buffer("base", -torch.arange(1000, dtype=torch.float32) / 1000.0)
        self.mean = mean
        self.std = std

    def predicted(self, x: torch.Tensor) -> list[int]:
        if self.mean is not None:
            x = x * torch.tensor(self.std).view(1, 3, 1, 1) + torch.tensor(self.mean).view(1, 3, 1, 1)
        h, w = x.shape[-2:]
        px = x[:, :, 0, 0] if self.pos == "corner" else x[:, :, h // 2, w // 2]
        return [decode((p * 255.0).tolist()) for p in px]

    def forward(self, x):
        out = self.base.repeat(x.shape[0], 1)
        for i, c in enumerate(self.predicted(x)):
            out[i, c] = 10.0
        return out


def score(ds, model: FakeModel | None = None):
    """Evaluate ``ds`` with the fake model the way the engine does: logits over imagenet-1k, the
    dataset's LabelMap, correctness against ``valid_labels``; returns ``(metrics, rows)``."""
    from torchvision.transforms.functional import to_tensor

    model = model or FakeModel()
    lm = LabelMap(model.wnids, ds.labels)
    ds.transform = to_tensor
    rows = {"index": [], "pred": [], "correct": [], "correct5": []}
    for i in range(len(ds)):
        x, target, idx, ok = ds[i]
        logits = lm(model(x.unsqueeze(0)))[0]
        top = torch.topk(logits, min(5, logits.numel())).indices.tolist()
        valid = set(ds.valid_labels(i))
        rows["index"].append(idx)
        rows["pred"].append(top[0])
        rows["correct"].append(top[0] in valid)
        rows["correct5"].append(bool(valid & set(top)))
    for k, v in ds.sample_meta().items():
        rows[k] = v
    df = pd.DataFrame(rows)
    return ds.aggregate(df), df


def wnid(idx: int) -> str:
    return imagenet_1k().wnids[idx]


# ----------------------------------------------------------------------------- ImageNet val
# (true class index, predicted class index) per image: 4 of 6 top-1 correct, all 6 top-5 correct
VAL_IMAGES = [(0, 0), (0, 0), (1, 1), (1, 5), (2, 2), (2, 1)]
VAL_EXPECTED = {"top1": 100.0 * 4 / 6, "top5": 100.0, "n": 6}


def make_imagenet_val_folders(root: Path, sub: str = "val") -> Path:
    for j, (t, p) in enumerate(VAL_IMAGES):
        write_image(Path(root) / sub / wnid(t) / f"ILSVRC2012_val_{j + 1:08d}.JPEG", p)
    return Path(root)


def _devkit_ids() -> dict[int, str]:
    """A devkit-like ILSVRC2012_ID -> wnid table whose IDs are NOT the sorted-wnid order
    (ID k+1 is the wnid of index 999-k), as in the real devkit."""
    return {k + 1: wnid(999 - k) for k in range(1000)}


def write_devkit(root: Path) -> Path:
    import scipy.io

    ids = _devkit_ids()
    dt = [("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("num_children", "O")]
    rows = [(np.array([[k]], np.uint16), np.array([w]), np.array(["x"]), np.array([[0]], np.uint8))
            for k, w in ids.items()]
    # one internal (non-leaf) synset, as in the real meta.mat, which must be ignored
    rows.append((np.array([[1001]], np.uint16), np.array(["n00001740"]), np.array(["entity"]), np.array([[5]], np.uint8)))
    arr = np.empty((len(rows), 1), dtype=dt)
    for i, r in enumerate(rows):
        arr[i, 0] = r
    data = Path(root) / "ILSVRC2012_devkit_t12" / "data"
    data.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(data / "meta.mat"), {"synsets": arr})
    return data


def make_imagenet_val_flat(root: Path) -> Path:
    """Flat ILSVRC2012 val + devkit ground truth (IDs mapped through meta.mat)."""
    root = Path(root)
    data = write_devkit(root)
    inv = {w: k for k, w in _devkit_ids().items()}
    lines = []
    for j, (t, p) in enumerate(VAL_IMAGES):
        write_image(root / f"ILSVRC2012_val_{j + 1:08d}.JPEG", p)
        lines.append(str(inv[wnid(t)]))
    (data / "ILSVRC2012_validation_ground_truth.txt").write_text("\n".join(lines) + "\n")
    return root


def make_imagenet_val_kaggle(root: Path) -> Path:
    root = Path(root)
    d = root / "ILSVRC" / "Data" / "CLS-LOC" / "val"
    with open(root / "LOC_val_solution.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ImageId", "PredictionString"])
        for j, (t, p) in enumerate(VAL_IMAGES):
            write_image(d / f"ILSVRC2012_val_{j + 1:08d}.JPEG", p)
            w.writerow([f"ILSVRC2012_val_{j + 1:08d}", f"{wnid(t)} 1 2 30 40 {wnid(t)} 3 4 20 20"])
    return root


# ----------------------------------------------------------------------------- ImageNetV2
# folders 2, 10, 100 (string order 10, 100, 2): label = int(folder). 4 of 5 correct.
V2_IMAGES = {2: [2, 2], 10: [10], 100: [100, 7]}
V2_EXPECTED = {"top1": 80.0, "n": 5}


def make_imagenetv2(root: Path, variant: str = "matched-frequency") -> Path:
    base = Path(root) / f"imagenetv2-{variant}-format-val"
    for folder, preds in V2_IMAGES.items():
        for j, p in enumerate(preds):
            write_image(base / str(folder) / f"{j:040x}.jpeg", p)
    return Path(root)


# ----------------------------------------------------------------------------- Sketch
SKETCH_IMAGES = [(3, 3), (3, 3), (4, 9), (5, 5)]  # 3 of 4
SKETCH_EXPECTED = {"top1": 75.0, "n": 4}


def make_sketch(root: Path) -> Path:
    for j, (t, p) in enumerate(SKETCH_IMAGES):
        write_image(Path(root) / "sketch" / wnid(t) / f"sketch_{j}.JPEG", p)
    return Path(root)


# ----------------------------------------------------------------------------- ImageNet-R / -A
def r_a_classes(which: str) -> list[int]:
    from roz.datasets.imagenet import timm_synsets

    idx = imagenet_1k().index()
    return sorted(idx[w] for w in timm_synsets(which))


def restricted_plan(which: str):
    """Three classes c1<c2<c3 of the dataset and one class X outside it. Predictions:
    c1->c1 ok, c2->c2 ok, c2->X (masked: c1) wrong, c1->X (masked: c1) ok, c3->c2 wrong: 3/5 = 60%
    (unmasked it would be 2/5)."""
    cls = r_a_classes(which)
    c1, c2, c3 = cls[0], cls[1], cls[2]
    x = next(i for i in range(1000) if i not in set(cls))
    return [(c1, c1), (c2, c2), (c2, x), (c1, x), (c3, c2)]


RA_EXPECTED = {"top1": 60.0, "n": 5}


def make_imagenet_r_a(root: Path, which: str = "r") -> Path:
    for j, (t, p) in enumerate(restricted_plan(which)):
        write_image(Path(root) / wnid(t) / f"img_{j}.png", p)
    return Path(root)


def make_val_with_r_classes(root: Path) -> tuple[Path, dict]:
    """ImageNet val folders: the ImageNet-R plan images plus images of two non-R classes (which the
    restricted variant drops)."""
    make_imagenet_r_a(Path(root) / "val", "r")
    rset = set(r_a_classes("r"))
    outside = [i for i in range(1000) if i not in rset][:2]
    for j, c in enumerate(outside):
        write_image(Path(root) / "val" / wnid(c) / f"x_{j}.JPEG", c)
    return Path(root), {"top1": 60.0, "n": 5}


# ----------------------------------------------------------------------------- ObjectNet
# Alarm clock -> analog clock (409); digital clock (530).  Banana -> banana (954). Squeegee: unmapped.
# alarm_clock: pred 530 ok (any mapped class), pred 954 wrong, pred 0 (masked -> 409) ok;
# banana: pred 954 ok, pred 0 (masked -> 409, Alarm clock) wrong; squeegee images excluded.
OBJECTNET_IMAGES = {"alarm_clock": [530, 954, 0], "banana": [954, 0], "squeegee": [1, 2]}
OBJECTNET_EXPECTED = {"top1": 60.0, "n": 5}


def make_objectnet(root: Path, decoy: int = 954) -> Path:
    """Real mappings/; every image has a 2-px border in the colour of class ``decoy`` (read by
    the corner-reading fake model only when the border crop is skipped)."""
    base = Path(root) / "objectnet-1.0"
    shutil.copytree(REFERENCE / "objectnet", base / "mappings")
    for folder, preds in OBJECTNET_IMAGES.items():
        for j, p in enumerate(preds):
            write_image(base / "images" / folder / f"{j:032x}.png", p, size=SIZE + 4, border_idx=decoy)
    return Path(root)


# ----------------------------------------------------------------------------- video
def vid_class_map() -> dict[int, list[int]]:
    return {int(k): v for k, v in json.loads((REFERENCE / "imagenet-vid-robust" / "rev_class_idx_map.json").read_text()).items()}


def make_vid(root: Path) -> tuple[Path, dict]:
    """Three anchors in the real metadata format.

    A (class 0 airplane = [404]): anchor + 2 neighbours all predicted 404 -> pm0 ok, pm10 ok.
    B (class 26 = ImageNet 33..37): anchor 35 ok; neighbour 1 labelled [26, 0] predicted 404 (ok via
      its second label); neighbour 2 predicted 404 but labelled [26] -> pm10 wrong.
    C (class 8 = 151..): anchor predicted 404 -> pm0 wrong; neighbours ok.
    pm0 = 2/3, pm10 = 1/3."""
    root = Path(root)
    meta = root / "metadata"
    meta.mkdir(parents=True)
    for f in ("class_idx_map.json", "rev_class_idx_map.json"):
        shutil.copy(REFERENCE / "imagenet-vid-robust" / f, meta / f)
    plan = {
        "val/ILSVRC2015_val_00000000/000010.JPEG": ([0], 404, [
            ("val/ILSVRC2015_val_00000000/000005.JPEG", [0], 404),
            ("val/ILSVRC2015_val_00000000/000020.JPEG", [0], 404)]),
        "val/ILSVRC2015_val_00000001/000100.JPEG": ([26], 35, [
            ("val/ILSVRC2015_val_00000001/000099.JPEG", [26, 0], 404),
            ("val/ILSVRC2015_val_00000001/000101.JPEG", [26], 404)]),
        "val/ILSVRC2015_val_00000002/000050.JPEG": ([8], 404, [
            ("val/ILSVRC2015_val_00000002/000049.JPEG", [8], 151),
            ("val/ILSVRC2015_val_00000002/000051.JPEG", [8], 152)]),
    }
    pmsets, labels = {}, {}
    for a, (alab, apred, nbrs) in plan.items():
        write_image(root / a, apred)
        labels[a] = alab
        pmsets[a] = [n for n, _, _ in nbrs]
        for n, lab, p in nbrs:
            write_image(root / n, p)
            labels[n] = lab
    (meta / "pmsets.json").write_text(json.dumps(pmsets, indent=1))
    (meta / "labels.json").write_text(json.dumps(labels, indent=1))
    return root, {"pm0": 100.0 * 2 / 3, "pm10": 100.0 / 3, "n_anchors": 3, "n": 9}


YTBB_REF = REFERENCE / "ytbb-robust"


def _ytbb_common(meta: Path) -> None:
    meta.mkdir(parents=True, exist_ok=True)
    for f in ("class_idx_map.json", "rev_class_idx_map.json", "ytbb_class_index.json"):
        shutil.copy(YTBB_REF / f, meta / f)


def make_ytbb(root: Path, with_pmsets: bool = False) -> tuple[Path, dict]:
    """YTBB-Robust in the testbed's metadata format (or, ``with_pmsets``, with pmsets.json +
    labels.json as ROZ-Mini writes them).

    Anchor vocabulary = the real anchor_labels.json ``labels`` list (good, unsure, bad, person, ...).
    Anchors (ytbb_class_index ids; ImageNet via rev_class_idx_map):
      P: csv label 19 (dog, 151..) ; annotation [good]; anchor pred 151, nbrs -1,+1 pred 152, 153 -> ok/ok
      Q: csv label 22 (YTBB 'car' -> class-index 23 car: 407, ...); annotation [good]; anchor pred 407 ok
         (only right because of the 22/23 swap); nbr +1 pred 0 (person? no: tench) -> pm10 wrong
      R: csv label 0 (person: 981..983); annotation [good, dog]; anchor pred 151 (dog, added label) ok;
         nbrs pred 982 ok -> ok/ok
      S: csv label 19; annotation [good, bad] -> not a valid anchor (excluded)
      T: csv label 6 (cow: no ImageNet class); annotation [good]; pred 151 -> wrong (unpredictable class)
    pm0 = 3/4, pm10 = 2/4."""
    root = Path(root)
    meta = root / "metadata"
    _ytbb_common(meta)
    vocab = json.loads((YTBB_REF / "anchor_labels_vocabulary.json").read_text())["labels"]
    vi = {n: i for i, n in enumerate(vocab)}
    plan = [  # ytid, ms, frame, csv label, annotation names, anchor pred, {offset: pred}, ytbb labels
        ("aaaaaaaaaaa", 1000, 30, 19, ["good"], 151, {-1: 152, 1: 153}, [19]),
        ("bbbbbbbbb_b", 2000, 60, 22, ["good"], 407, {1: 0}, [23]),
        ("ccccccccccc", 3000, 90, 0, ["good", "dog"], 151, {-2: 982, 2: 982}, [19, 0]),
        ("ddddddddddd", 4000, 120, 19, ["good", "bad"], 151, {}, [19]),
        ("eeeeeeeeeee", 5000, 150, 6, ["good"], 151, {}, [6]),
    ]
    ann, rows, pmsets, labels = [], [], {}, {}
    for ytid, ms, n, lab, names, apred, nbrs, ylabels in plan:
        key = f"{ytid}_{ms}/frame-{n}.jpg"
        write_image(root / key, apred)
        for off, p in nbrs.items():
            write_image(root / f"{ytid}_{ms}/frame-{n + off}.jpg", p)
        # a frame outside +-10 that must not be used
        write_image(root / f"{ytid}_{ms}/frame-{n + 11}.jpg", 0)
        ann.append({"key": f"/home/x/frames/{key}" if ytid.startswith("c") else key, "notes": "",
                    "labels": [vi[x] for x in names]})
        rows.append({"ytid": ytid, "time_ms": ms, "label": lab})
        if "bad" not in names:
            pmsets[key] = [f"{ytid}_{ms}/frame-{n + off}.jpg" for off in nbrs]
            labels[key] = ylabels
    (meta / "anchor_labels.json").write_text(json.dumps({"annotations": ann, "labels": vocab}))
    with open(meta / "ytbb_robustness_test_anchors_full.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["ytid", "time_ms", "label"])
        w.writeheader()
        w.writerows(rows)
    if with_pmsets:
        (meta / "pmsets.json").write_text(json.dumps(pmsets))
        (meta / "labels.json").write_text(json.dumps(labels))
    return root, {"pm0": 75.0, "pm10": 50.0, "n_anchors": 4}
