"""Every synthetic-shift loader on a generated fixture tree."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from roz.datasets.classes import get_class_set
from roz.engine.sequence_unit import sequence_metrics
from roz.datasets.cifar import RestrictedUnpickler, restricted_load
from roz.datasets.classes import CIFAR10_CLASSES
from roz.datasets.imagenet_c import imagenet_c_cells
from roz.datasets.imagenet_p import decode_video, imagenet_p_perturbations
from roz.datasets.registry import create_dataset
from roz.errors import DataError

from support.synthetic_fixtures import WNIDS, write_image
from support.videofixtures import write_video


def _to_tensor(img):
    return torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1) / 255


# ----------------------------------------------------------------------------- ImageNet-C


def test_imagenet_c(tmp_path, class_file):
    for c in ("gaussian_noise", "fog"):
        for s in (1, 3):
            for k, w in enumerate(WNIDS):
                write_image(tmp_path / c / str(s) / w / f"img{k}.JPEG", seed=k)
    cells = imagenet_c_cells(tmp_path)
    assert [(c, s) for c, s, _ in cells] == [("gaussian_noise", 1), ("gaussian_noise", 3), ("fog", 1), ("fog", 3)]
    ds = create_dataset("imagenet-c", tmp_path, corruption="fog", severity=3, classes=class_file)
    assert len(ds) == 2 and ds.protocol["corruption"] == "fog" and ds.protocol["severity"] == 3
    assert ds.protocol["corruption_group"] == "weather"
    assert ds[1][1] == 1
    with pytest.raises(DataError):
        create_dataset("imagenet-c", tmp_path, corruption="fog", severity=2, classes=class_file)
    with pytest.raises(DataError):
        create_dataset("imagenet-c", tmp_path, corruption="fog", severity=9, classes=class_file)
    with pytest.raises(DataError):
        imagenet_c_cells(tmp_path, corruptions=["frost"])


# ----------------------------------------------------------------------------- ImageNet-P


def test_imagenet_p_videos(tmp_path, class_file):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(4)]
    for p in ("rotate", "gaussian_noise_2"):
        for k, w in enumerate(WNIDS):
            write_video(tmp_path / p / w / f"ILSVRC2012_val_{k:08d}.mp4", frames)
    assert imagenet_p_perturbations(tmp_path) == ["gaussian_noise_2", "rotate"]
    dec = decode_video(tmp_path / "rotate" / WNIDS[0] / "ILSVRC2012_val_00000000.mp4")
    assert len(dec) == 4 and dec[0].size == (16, 16)
    ds = create_dataset("imagenet-p", tmp_path, perturbation="rotate", classes=class_file)
    ds.transform = _to_tensor
    x, y, i, ok = ds[1]
    assert x.shape == (4, 3, 16, 16) and y == 1 and ok
    assert ds.protocol["comparison"].startswith("consecutive") and ds.metric_names() == ["flip_prob", "top5_dist"]
    noisy = create_dataset("imagenet-p", tmp_path, perturbation="gaussian_noise", difficulty=2, classes=class_file)
    assert noisy.protocol["folder"] == "gaussian_noise_2" and noisy.protocol["comparison"] == "first-frame"
    # aggregate from per-frame top-5 lists
    seq_a = [[0, 1, 2, 3, 4]] * 4
    seq_b = [[0, 1, 2, 3, 4], [1, 0, 2, 3, 4], [0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]
    rows = pd.DataFrame({"frame_top5": [seq_a, seq_b], "correct": [True, False], "correct5": [True, True]})
    rows["ok"] = True
    agg = sequence_metrics(rows, ds.perturbation, ds.difficulty)
    assert agg["flip_prob"] == pytest.approx((0 + 2 / 3) / 2) and agg["top1"] == 50.0
    assert sequence_metrics(rows, noisy.perturbation, noisy.difficulty)["flip_prob"] == pytest.approx((0 + 1 / 3) / 2)
    # a broken video
    bad = tmp_path / "rotate" / WNIDS[0] / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    ds2 = create_dataset("imagenet-p", tmp_path, perturbation="rotate", classes=class_file, on_bad_image="skip")
    ds2.transform = _to_tensor
    j = [k for k, (p, _) in enumerate(ds2.samples) if p.endswith("broken.mp4")][0]
    assert ds2[j][3] is False
    with pytest.raises(DataError):
        decode_video(bad)
    with pytest.raises(DataError):
        create_dataset("imagenet-p", tmp_path, perturbation="zoom_blur", classes=class_file)


# ----------------------------------------------------------------------------- Stylized-ImageNet


def test_stylized_imagenet(tmp_path, class_file):
    for k, w in enumerate(WNIDS):
        write_image(tmp_path / "val" / w / f"a{k}.png", seed=k)
    ds = create_dataset("stylized-imagenet", tmp_path, classes=class_file)  # finds val/
    assert len(ds) == 2 and ds.protocol["split"] == "val"
    ds2 = create_dataset("stylized-imagenet", tmp_path / "val", classes=class_file)
    assert ds2.samples == ds.samples
    assert ds[0][0].size == (8, 8)


# ----------------------------------------------------------------------------- CIFAR-10


def _cifar_arrays(n=6):
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n)


def test_cifar10_binary(tmp_path):
    data, labels = _cifar_arrays()
    d = tmp_path / "cifar-10-batches-bin"
    d.mkdir()
    rec = np.concatenate([labels[:, None].astype(np.uint8), data], axis=1)
    rec.tofile(d / "test_batch.bin")
    (d / "batches.meta.txt").write_text("\n".join(CIFAR10_CLASSES) + "\n\n")
    ds = create_dataset("cifar-10", tmp_path)
    assert len(ds) == 6 and ds.protocol["format"] == "binary"
    assert [s[1] for s in ds.samples] == labels.tolist()
    img = np.asarray(ds[2][0])
    np.testing.assert_array_equal(img[..., 0].reshape(-1), data[2, :1024])  # R plane first
    np.testing.assert_array_equal(img[..., 2].reshape(-1), data[2, 2048:])
    assert ds.labels.groups[0] == ("airplane",) and get_class_set("cifar-10").wnids == CIFAR10_CLASSES
    (d / "test_batch.bin").write_bytes(rec.tobytes()[:-5])
    with pytest.raises(DataError):
        create_dataset("cifar-10", tmp_path)
    with pytest.raises(DataError):
        create_dataset("cifar-10", tmp_path, split="train")


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("protocol", [2, 4])
def test_cifar10_python_restricted(tmp_path, protocol):
    data, labels = _cifar_arrays()
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    with open(d / "test_batch", "wb") as f:
        pickle.dump({b"batch_label": b"testing batch 1 of 1", b"labels": labels.tolist(), b"data": data,
                     b"filenames": [b"x.png"] * len(labels)}, f, protocol=protocol)
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in CIFAR10_CLASSES], b"num_vis": 3072}, f, protocol=protocol)
    ds = create_dataset("cifar-10", tmp_path, format="python")
    assert len(ds) == 6 and ds.protocol["format"] == "python"
    np.testing.assert_array_equal(np.asarray(ds[0][0])[..., 1].reshape(-1), data[0, 1024:2048])
    # anything but numpy arrays and plain containers is refused
    with open(tmp_path / "evil", "wb") as f:
        pickle.dump({b"data": _Evil()}, f, protocol=protocol)
    with pytest.raises(DataError, match="refusing"):
        restricted_load(tmp_path / "evil")
    assert issubclass(RestrictedUnpickler, pickle.Unpickler)


# ----------------------------------------------------------------------------- typographic datasets


def test_typographic_filenames_and_protocols(tmp_path):
    for k, (a, b) in enumerate([("apple", "ipod"), ("dog", "cat"), ("cat", "dog"), ("apple", "dog")]):
        write_image(tmp_path / "sub" / f"label={a}_text={b}_{k}.jpg", seed=k)
    ds = create_dataset("typographic", tmp_path)
    assert ds.labels.names == ["apple", "cat", "dog", "ipod"] and ds.protocol["candidates"] == "union"
    assert len(ds) == 4
    meta = ds.sample_meta()
    names = ds.labels.names
    pairs = sorted((names[t], names[w]) for (_, t), w in zip(ds.samples, meta["written_label"]))
    assert pairs == sorted([("apple", "ipod"), ("dog", "cat"), ("cat", "dog"), ("apple", "dog")])
    assert ds.candidate_mask([0, 1]).all()
    bi = create_dataset("typographic", tmp_path, candidates="binary")
    m = bi.candidate_mask([0, 1, 2, 3])
    assert m.sum(1).tolist() == [2, 2, 2, 2] and "candidates" in bi.sample_meta()
    for r in range(4):
        assert m[r, bi.samples[r][1]] and m[r, bi.written[r]]
    rows = pd.DataFrame({"pred": [bi.written[0], bi.samples[1][1], 0, 0], "target": [s[1] for s in bi.samples],
                         "written_label": bi.written, "correct": [False, True, False, False],
                         "correct5": [True] * 4})
    from roz.metrics.typographic import aggregate_typographic  # what the engine adds to the dataset's scores

    agg = {**bi.aggregate(rows), **aggregate_typographic(rows)}
    assert agg["attack_success_rate"] >= 25.0 and agg["accuracy"] >= 25.0
    with pytest.raises(DataError):
        create_dataset("typographic", tmp_path, candidates="nope")
    write_image(tmp_path / "unnamed.jpg", seed=9)
    with pytest.raises(DataError):
        create_dataset("typographic", tmp_path)


def test_typographic_annotation_json_full_class_set(tmp_path, class_file):
    write_image(tmp_path / "img" / "0.png", seed=0)
    write_image(tmp_path / "img" / "1.png", seed=1)
    (tmp_path / "annotations.json").write_text(json.dumps([
        {"file": "img/0.png", "label": "tench", "text": "goldfish"},
        {"file": "img/1.png", "label": "goldfish", "text": "iPod"}]))
    ds = create_dataset("typographic", tmp_path, candidates="full", classes=class_file)
    assert ds.labels.names == ["tench", "goldfish", "ipod"]
    assert ds.labels.groups[:2] == [(WNIDS[0],), (WNIDS[1],)] and ds.labels.groups[2] == ("ipod",)
    assert [s[1] for s in ds.samples] == [0, 1] and ds.written == [1, 2]
    u = create_dataset("typographic", tmp_path, annotations="annotations.json", classes=class_file)
    assert u.labels.names == ["goldfish", "ipod", "tench"] and u.labels.groups[0] == (WNIDS[1],)


def test_cifar10_python_numpy1_global_names(tmp_path):
    """The released pickles name numpy.core.multiarray._reconstruct (numpy 1); numpy 2 resolves it."""
    data, labels = _cifar_arrays(3)
    raw = pickle.dumps({b"data": data, b"labels": labels.tolist()}, protocol=2)
    raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"cnumpy.core.multiarray\n_reconstruct" in raw
    (tmp_path / "test_batch").write_bytes(raw)
    d = restricted_load(tmp_path / "test_batch")
    np.testing.assert_array_equal(d[b"data"], data)
