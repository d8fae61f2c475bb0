"""CIFAR-10 in its released forms (the ``cifar-10`` class set is in :mod:`roz.datasets.classes`).

* binary: ``cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin`` -- records of 1 label byte +
  3072 pixel bytes (1024 R, 1024 G, 1024 B, row-major 32x32), and ``batches.meta.txt``;
* python: ``cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}`` -- pickles, read with a
  *restricted* unpickler that admits only numpy arrays/dtypes (plus the built-in containers, str,
  bytes and numbers that pickle encodes natively); any other global is refused. Never plain
  ``pickle.load``.

ROOT may be the extracted folder or its parent. ``split`` is ``test`` (default, 10 000 images) or
``train`` (50 000).

CIFAR classes are not one-to-one ImageNet classes, so the ``cifar-10`` class set uses the CIFAR
class *names* as its ids (``airplane`` ... ``truck``): a zero-shot head over that class set (or a
CIFAR-trained model whose output classes are those ids) can be evaluated; an ImageNet classifier
cannot (the engine reports that the model cannot predict the labels).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from roz.datasets.base import EvalDataset, LabelSpace
from roz.datasets.classes import CIFAR10_CLASSES
from roz.datasets.info import DatasetInfo
from roz.errors import DataError

INFOS: list[DatasetInfo] = []  # this family's datasets; roz.datasets.registry registers them

SPLITS = {"test": ("test_batch",), "train": tuple(f"data_batch_{i}" for i in range(1, 6))}
RECORD = 1 + 3 * 32 * 32

LAYOUT = ("  ROOT/cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin + batches.meta.txt   (binary)\n"
          "  or ROOT/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}   (python pickles)\n"
          "  (ROOT may also be the cifar-10-batches-* folder itself)")


# ----------------------------------------------------------------------------- restricted unpickling

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "numpy.core.multiarray"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "numpy.core.multiarray"),
    ("numpy.core.multiarray", "scalar"): ("numpy._core.multiarray", "numpy.core.multiarray"),
    ("numpy._core.multiarray", "scalar"): ("numpy._core.multiarray", "numpy.core.multiarray"),
    ("numpy", "ndarray"): ("numpy",),
    ("numpy", "dtype"): ("numpy",),
    # protocol-2 pickles written by Python 3 encode bytes objects as _codecs.encode(str, 'latin1')
    ("_codecs", "encode"): ("_codecs",),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler admitting only numpy arrays/dtypes and pickle's native types."""

    def find_class(self, module: str, name: str):
        key = (module, name)
        if key not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a dataset pickle")
        import importlib

        for mod in _ALLOWED[key]:
            try:
                return getattr(importlib.import_module(mod), name)
            except (ImportError, AttributeError):
                continue
        raise pickle.UnpicklingError(f"cannot resolve {module}.{name}")


def restricted_load(path: str | Path):
    """Load a dataset pickle (Python 2 pickles decode strings as bytes)."""
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
    except FileNotFoundError:
        raise DataError(f"file not found: {path}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise DataError(f"cannot read dataset pickle {path}: {type(e).__name__}: {e}",
                        hint="a corrupt or untrusted file; re-download the python version of CIFAR-10") from None


def _get(d: dict, key: str):
    for k in (key, key.encode()):
        if k in d:
            return d[k]
    raise KeyError(key)


# ----------------------------------------------------------------------------- readers


def _find_dir(root: Path, fmt: str) -> tuple[Path, str]:
    cands = []
    if fmt in ("auto", "binary"):
        cands += [(root, "binary"), (root / "cifar-10-batches-bin", "binary")]
    if fmt in ("auto", "python"):
        cands += [(root, "python"), (root / "cifar-10-batches-py", "python")]
    for d, kind in cands:
        probe = d / ("test_batch.bin" if kind == "binary" else "test_batch")
        if probe.is_file() or (d / ("data_batch_1.bin" if kind == "binary" else "data_batch_1")).is_file():
            return d, kind
    raise DataError(f"cifar-10: no CIFAR-10 batch files under {root}" + ("" if fmt == "auto" else f" (format={fmt})"),
                    hint=f"expected layout:\n{LAYOUT}")


def read_binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [N, 32, 32, 3], labels int64 [N])`` from a CIFAR-10 ``.bin`` batch."""
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if raw.size == 0 or raw.size % RECORD:
        raise DataError(f"cifar-10: {path} has {raw.size} bytes, not a multiple of the {RECORD}-byte record",
                        hint="a truncated download? re-extract cifar-10-binary.tar.gz")
    rec = raw.reshape(-1, RECORD)
    labels = rec[:, 0].astype(np.int64)
    if labels.max() >= 10:
        raise DataError(f"cifar-10: {path} contains label {int(labels.max())} (expected 0..9); is it CIFAR-100?")
    return rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def read_python_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    d = restricted_load(path)
    try:
        data = np.asarray(_get(d, "data"), dtype=np.uint8)
        labels = np.asarray(_get(d, "labels"), dtype=np.int64)
    except (KeyError, TypeError, ValueError):
        raise DataError(f"cifar-10: {path} is not a CIFAR-10 batch (no 'data'/'labels' entries)") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(f"cifar-10: {path} has data of shape {data.shape} and {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def _class_names(d: Path, kind: str) -> tuple[str, ...]:
    try:
        if kind == "binary" and (d / "batches.meta.txt").is_file():
            names = tuple(n.strip() for n in (d / "batches.meta.txt").read_text().splitlines() if n.strip())
        elif kind == "python" and (d / "batches.meta").is_file():
            names = tuple(n.decode() if isinstance(n, bytes) else str(n)
                          for n in _get(restricted_load(d / "batches.meta"), "label_names"))
        else:
            return CIFAR10_CLASSES
    except KeyError:
        return CIFAR10_CLASSES
    if names != CIFAR10_CLASSES:
        raise DataError(f"cifar-10: class names in {d} are {names}, expected {CIFAR10_CLASSES}")
    return names


class ArrayDataset(EvalDataset):
    """Images held in memory (``images`` uint8 [N, H, W, 3]); ``samples`` carry ``file#index``."""

    images: np.ndarray | None = None

    def __getitem__(self, i: int):
        img = Image.fromarray(self.images[i], "RGB")
        if self.pre_transform is not None:
            img = self.pre_transform(img)
        x = self.transform(img) if self.transform is not None else img
        return x, self.samples[i][1], i, True


def cifar10_dataset(root: Path, split: str = "test", format: str = "auto", on_bad_image: str = "fail") -> ArrayDataset:  # noqa: A002
    if split not in SPLITS:
        raise DataError(f"cifar-10: split must be 'test' or 'train', got {split!r}")
    if format not in ("auto", "binary", "python"):
        raise DataError(f"cifar-10: format must be auto, binary or python, got {format!r}")
    d, kind = _find_dir(Path(root), format)
    imgs, labs, samples = [], [], []
    for b in SPLITS[split]:
        f = d / (b + ".bin" if kind == "binary" else b)
        if not f.is_file():
            raise DataError(f"cifar-10: batch file {f} is missing", hint=f"expected layout:\n{LAYOUT}")
        x, y = read_binary_batch(f) if kind == "binary" else read_python_batch(f)
        samples.extend((f"{f.name}#{k}", int(t)) for k, t in enumerate(y))
        imgs.append(x)
        labs.append(y)
    names = _class_names(d, kind)
    ds = ArrayDataset(name="cifar-10", root=d, samples=samples, labels=LabelSpace.singletons(names, names),
                      protocol={"split": split, "format": kind, "class_set": "cifar-10",
                                "label_space": "10 CIFAR classes (ids are class names, not wnids)"},
                      on_bad_image=on_bad_image)
    ds.images = np.concatenate(imgs)
    return ds


INFOS.append(DatasetInfo("cifar-10", cifar10_dataset, layout=LAYOUT,
                         description="CIFAR-10 (binary or python release); class set cifar-10 (needs a head over CIFAR classes)",
                         source="https://www.cs.toronto.edu/~kriz/cifar.html",
                         expected_counts={"total": [10000, 50000]}, paper_order=500, tags=("cifar",)))
