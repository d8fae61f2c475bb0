"""Ingest the ImageNet testbed's published accuracy table (Taori et al. 2020).

The format is ``robustness_top1s.csv`` of modestyachts/imagenet-testbed: one row per model
(column ``model``), one column per evaluation setting, top-1 accuracy in percent, an empty cell
where the model was not evaluated. :func:`read_testbed` reads it from a path, an http(s) URL or
the name ``"testbed"`` (the copy shipped with ROZ, :data:`SHIPPED_TABLE`: MIT licence, see
``roz/data/README.md``) and renames the columns to ROZ's ``"dataset:metric"`` keys through
:data:`TESTBED_COLUMNS` (overridable).

Column choices (documented in docs/metrics.md, overridable with ``columns=``):

* ImageNetV2 uses the ``*-format-val`` columns — the ones the testbed's own figures use
  (ImageNetV2 images re-encoded like ImageNet val).
* The video datasets map ``<ds>_pm0`` / ``<ds>_pm10`` to metrics ``pm0`` / ``pm10``; their
  class-restricted reference is ``val-on-<ds>-classes``.
* ``stylized_imagenet`` / ``greyscale`` -> ``stylized-imagenet`` / ``greyscale``; the PGD columns
  -> ``pgd-linf-0.5/255`` ... (settings in :mod:`roz.metrics.testbed_pgd`).
* ImageNet-C (with the default mapping): ``imagenet-c-<corruption>`` is the mean over severities
  1-5 of ``imagenet-c.<corruption>.<s>_in-memory`` — glass blur has only ``_on-disk`` columns
  and uses those — and ``imagenet-c-mean`` (shift ``imagenet-c``) is the mean of the 19 corruptions (NaN where any cell is
  missing, like the testbed's ``skipna=False``). The columns used are listed in the table's
  ``derived`` (and so in the effective-robustness protocol). With ``keep_unmapped=True`` the raw
  columns are kept under their own names.

Model roles: rows in :data:`~roz.metrics.effective.TESTBED_STANDARD_MODELS` are "standard",
``*clip_zeroshot`` rows are "zeroshot", everything else "testbed" (drawn grey).
"""

from __future__ import annotations

import io
import os
from importlib import resources
from pathlib import Path
from typing import Mapping

from roz.datasets.release_names import CORRUPTIONS, EXTRA_CORRUPTIONS, SEVERITIES
from roz.errors import DataError
from roz.metrics.effective import TESTBED_STANDARD_MODELS, AccuracyTable, key
from roz.metrics.shift_sets import IMAGENET_C_MEAN, corruption_key
from roz.metrics.testbed_pgd import TESTBED_PGD

#: The name that means the testbed table shipped with ROZ (``--baseline testbed``).
SHIPPED_NAME = "testbed"
#: The shipped copy: robustness_top1s.csv of modestyachts/imagenet-testbed (last changed in commit
#: f4083a2, 2021-09-15), gzip-compressed; credit and licence in roz/data/README.md.
SHIPPED_TABLE = "data/robustness_top1s.csv.gz"
#: Which ImageNet-C variant feeds the derived columns: ``in-memory`` (the testbed's default
#: here; glass blur falls back to ``on-disk``, its only variant) or ``on-disk`` (the released JPEGs).
CORRUPTION_VARIANTS = ("in-memory", "on-disk")

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
    "stylized_imagenet": key("stylized-imagenet"),
    "greyscale": key("greyscale"),
    **{a.column: key(a.shift) for a in TESTBED_PGD.values()},
}


def shipped_table_path() -> Path:
    """Path of the testbed table shipped as package data."""
    return Path(str(resources.files("roz").joinpath(SHIPPED_TABLE)))


def corruption_columns(columns, corruption: str, variant: str = "in-memory") -> list[str] | None:
    """The testbed columns of one corruption's five severities: ``variant`` if the table has all
    five, else the other variant (glass blur has only ``on-disk``); None if neither is complete."""
    for v in (variant, *[c for c in CORRUPTION_VARIANTS if c != variant]):
        cols = [f"imagenet-c.{corruption}.{s}_{v}" for s in SEVERITIES]
        if all(c in columns for c in cols):
            return cols
    return None


def _derive_corruptions(df, variant: str) -> tuple[dict, dict[str, list[str]]]:
    """ImageNet-C columns: per corruption the mean over severities, and their mean (skipna=False,
    as the testbed's ``aggregate_corruptions``: a model missing a cell gets NaN)."""
    values, used = {}, {}
    for c in CORRUPTIONS + EXTRA_CORRUPTIONS:
        cols = corruption_columns(df.columns, c, variant)
        if cols is None:
            continue
        k = key(corruption_key(c))
        values[k] = df[cols].mean(axis=1, skipna=False)
        used[k] = cols
    if len(values) == len(CORRUPTIONS + EXTRA_CORRUPTIONS):
        import pandas as pd

        k = key(IMAGENET_C_MEAN)
        values[k] = pd.concat(list(values.values()), axis=1).mean(axis=1, skipna=False)
        used[k] = [c for cols in list(used.values()) for c in cols]
    return values, used


def role_for_testbed_row(name: str) -> str:
    """Role of a testbed row: "standard", "zeroshot" (CLIP zero-shot rows) or "testbed"."""
    if name in TESTBED_STANDARD_MODELS:
        return "standard"
    if "clip_zeroshot" in name.lower():
        return "zeroshot"
    return "testbed"


def _open(source: str | os.PathLike):
    s = str(source)
    if s == SHIPPED_NAME:
        return shipped_table_path()
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


def read_testbed(source: str | os.PathLike = SHIPPED_NAME, columns: Mapping[str, str] | None = None, *,
                 keep_unmapped: bool = False, roles: Mapping[str, str] | None = None,
                 corruption_variant: str = "in-memory") -> AccuracyTable:
    """Read a testbed-format table (path, http(s) URL or ``"testbed"``: the shipped copy).

    ``columns`` replaces :data:`TESTBED_COLUMNS` (testbed column -> ROZ key; a value without
    ``:`` means metric top1); only with the default mapping are the ImageNet-C columns derived
    (``corruption_variant``: see :data:`CORRUPTION_VARIANTS`). Missing mapped columns are simply
    absent; empty cells are NaN. ``roles`` overrides the role of individual rows.
    """
    import pandas as pd

    if corruption_variant not in CORRUPTION_VARIANTS:
        raise DataError(f"unknown ImageNet-C variant {corruption_variant!r}", hint=f"use one of {CORRUPTION_VARIANTS}")
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
    derived: dict[str, list[str]] = {}
    if columns is None:
        values, derived = _derive_corruptions(df.apply(pd.to_numeric, errors="coerce"), corruption_variant)
        acc = pd.concat([acc, pd.DataFrame(values, index=acc.index)], axis=1)
    acc.index = acc.index.astype(str)
    acc.index.name = "model"
    rl = {m: role_for_testbed_row(m) for m in acc.index}
    rl.update(roles or {})
    shown = shipped_table_path() if str(source) == SHIPPED_NAME else source
    return AccuracyTable(acc=acc, roles=rl, n={}, source=str(shown), derived=derived)
