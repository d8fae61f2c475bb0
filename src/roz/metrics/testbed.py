"""Ingest the ImageNet testbed's published accuracy table (Taori et al. 2020).

The format is ``robustness_top1s.csv`` of modestyachts/imagenet-testbed: one row per model
(column ``model``), one column per evaluation setting, top-1 accuracy in percent, an empty cell
where the model was not evaluated. :func:`read_testbed` reads it from a path or URL and renames
the columns to ROZ's ``"dataset:metric"`` keys through :data:`TESTBED_COLUMNS` (overridable).

Column choices (documented, overridable with ``columns=``):

* ImageNetV2 uses the ``*-format-val`` columns — the ones the testbed's own figures use
  (ImageNetV2 images re-encoded like ImageNet val).
* The video datasets map ``<ds>_pm0`` / ``<ds>_pm10`` to metrics ``pm0`` / ``pm10``; their
  class-restricted reference is ``val-on-<ds>-classes``.
* ImageNet-C columns (``imagenet-c.<corruption>.<severity>_in-memory``) are kept, when
  ``keep_unmapped=True``, under their raw names (ROZ's own corruption units carry their own
  identity).

Model roles: rows in :data:`~roz.metrics.effective.TESTBED_STANDARD_MODELS` are "standard",
``*clip_zeroshot`` rows are "zeroshot", everything else "testbed" (drawn grey).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Mapping

from roz.errors import DataError
from roz.metrics.effective import TESTBED_STANDARD_MODELS, AccuracyTable, key

#: testbed column -> ROZ ``"dataset:metric"`` key.
TESTBED_COLUMNS: dict[str, str] = {
    "val": key("imagenet-val"),
    "imagenetv2-matched-frequency-format-val": key("imagenetv2-matched-frequency"),
    "imagenetv2-threshold-0.7-format-val": key("imagenetv2-threshold0.7"),
    "imagenetv2-top-images-format-val": key("imagenetv2-top-images"),
    "imagenet-sketch": key("imagenet-sketch"),
    "imagenet-r": key("imagenet-r"),
    "imagenet-a": key("imagenet-a"),
    "objectnet-1.0-beta": key("objectnet"),
    "imagenet-vid-robust_pm0": key("imagenet-vid-robust", "pm0"),
    "imagenet-vid-robust_pm10": key("imagenet-vid-robust", "pm10"),
    "ytbb-robust_pm0": key("ytbb-robust", "pm0"),
    "ytbb-robust_pm10": key("ytbb-robust", "pm10"),
    "val-on-imagenet-r-classes": key("val-on-imagenet-r-classes"),
    "val-on-imagenet-a-classes": key("val-on-imagenet-a-classes"),
    "val-on-objectnet-classes": key("val-on-objectnet-classes"),
    "val-on-vid-robust-classes": key("val-on-imagenet-vid-robust-classes"),
    "val-on-ytbb-robust-classes": key("val-on-ytbb-robust-classes"),
}


def role_for_testbed_row(name: str) -> str:
    """Role of a testbed row: "standard", "zeroshot" (CLIP zero-shot rows) or "testbed"."""
    if name in TESTBED_STANDARD_MODELS:
        return "standard"
    if "clip_zeroshot" in name.lower():
        return "zeroshot"
    return "testbed"


def _open(source: str | os.PathLike):
    s = str(source)
    if s.startswith(("http://", "https://")):
        import urllib.request

        try:
            with urllib.request.urlopen(s, timeout=60) as r:  # noqa: S310 - user-given URL
                return io.StringIO(r.read().decode("utf-8"))
        except Exception as e:  # network errors of every kind
            raise DataError(f"cannot download the testbed table from {s} ({e})",
                            hint="download robustness_top1s.csv yourself and pass its path") from None
    p = Path(s).expanduser()
    if not p.is_file():
        raise DataError(f"testbed table {p} not found",
                        hint="pass the path (or URL) of the testbed's robustness_top1s.csv")
    return p


def read_testbed(source: str | os.PathLike, columns: Mapping[str, str] | None = None, *,
                 keep_unmapped: bool = False, roles: Mapping[str, str] | None = None) -> AccuracyTable:
    """Read a testbed-format table (path or http(s) URL) into an :class:`AccuracyTable`.

    ``columns`` replaces :data:`TESTBED_COLUMNS` (testbed column -> ROZ key; a value without
    ``:`` means metric top1). Missing mapped columns are simply absent; empty cells are NaN.
    ``roles`` overrides the role of individual rows.
    """
    import pandas as pd

    src = _open(source)
    try:
        df = pd.read_csv(src)
    except Exception as e:
        raise DataError(f"cannot parse the testbed table {source} ({e})", hint="expected robustness_top1s.csv format") from None
    if "model" not in df.columns:
        raise DataError(f"testbed table {source} has no 'model' column", hint="expected robustness_top1s.csv format")
    mapping = dict(TESTBED_COLUMNS if columns is None else columns)
    mapping = {c: (v if ":" in v else key(v)) for c, v in mapping.items()}
    if df["model"].duplicated().any():
        dups = df.loc[df["model"].duplicated(), "model"].tolist()
        raise DataError(f"testbed table {source} lists models twice: {dups[:5]}")
    df = df.set_index("model")
    keep = {c: mapping[c] for c in df.columns if c in mapping}
    if keep_unmapped:
        keep.update({c: c for c in df.columns if c not in mapping})
    acc = df[list(keep)].rename(columns=keep).apply(pd.to_numeric, errors="coerce").astype(float)
    acc.index = acc.index.astype(str)
    acc.index.name = "model"
    rl = {m: role_for_testbed_row(m) for m in acc.index}
    rl.update(roles or {})
    return AccuracyTable(acc=acc, roles=rl, n={}, source=str(source))
