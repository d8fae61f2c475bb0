"""ImageNet-C metrics: per-corruption errors, CE, mCE, relative mCE, unnormalised mean error.

Definitions (Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common
Corruptions and Perturbations", ICLR 2019, Sec. 3 / arXiv:1903.12261):

* ``E[c, s]``: top-1 error of the model on corruption ``c`` at severity ``s``.
* Corruption Error ``CE_c = sum_s E[c, s] / sum_s E_AlexNet[c, s]``; mCE = mean of CE_c over the
  15 benchmark corruptions. AlexNet's per-corruption errors ship in
  ``roz/data/alexnet_imagenet_c_errors.json`` (averages over severities, so the sum ratio equals
  the ratio of the means).
* Relative CE ``rCE_c = sum_s (E[c, s] - E_clean) / sum_s (E_AlexNet[c, s] - E_AlexNet_clean)``;
  relative mCE = mean over the 15.
* The unnormalised mean corruption error is the plain mean of ``E[c, s]`` over the 15 x 5 cells.

Input: a tidy ``pandas.DataFrame`` with columns ``corruption``, ``severity`` and one of ``error``
or ``top1`` (fractions in [0, 1]; ``error = 1 - top1``). Optional extra corruptions (gaussian_blur,
saturate, spatter, speckle_noise) are reported per corruption but have no published AlexNet error,
so no CE, and they never enter the means. Outputs are in percent with self-describing labels.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import pandas as pd

from roz.errors import RozError

BENCHMARK_CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
EXTRA_CORRUPTIONS: tuple[str, ...] = ("gaussian_blur", "saturate", "spatter", "speckle_noise")
SEVERITIES = (1, 2, 3, 4, 5)

ERROR = "error (%)"
CE = "CE (AlexNet-normalised, %)"
REL_CE = "relative CE (AlexNet-normalised, %)"
MCE = "mCE (AlexNet-normalised, %)"
REL_MCE = "relative mCE (AlexNet-normalised, %)"
MEAN_ERROR = "mean corruption error (unnormalised, %)"
MEAN_ACC = "mean corruption top-1 (unnormalised, %)"
CLEAN_ERROR = "clean error (%)"


@lru_cache(maxsize=1)
def alexnet_reference() -> dict:
    """The shipped AlexNet normalisers: ``{"errors": {corruption: fraction}, "clean_error": ...}``."""
    text = resources.files("roz").joinpath("data/alexnet_imagenet_c_errors.json").read_text()
    return json.loads(text)


def alexnet_errors() -> dict[str, float]:
    return dict(alexnet_reference()["errors"])


def alexnet_clean_error() -> float:
    return float(alexnet_reference()["clean_error"])


def _tidy(table: pd.DataFrame) -> pd.DataFrame:
    """Validate and normalise to columns corruption, severity, error (fraction)."""
    if not isinstance(table, pd.DataFrame):
        raise RozError(f"expected a pandas DataFrame, got {type(table).__name__}")
    missing = {"corruption", "severity"} - set(table.columns)
    if missing:
        raise RozError(f"corruption table lacks column(s) {sorted(missing)}; has {list(table.columns)}",
                       hint="columns: corruption, severity and error or top1 (fractions in [0, 1])")
    if "error" in table.columns:
        err = table["error"].astype(float)
    elif "top1" in table.columns:
        err = 1.0 - table["top1"].astype(float)
    else:
        raise RozError("corruption table has neither an 'error' nor a 'top1' column",
                       hint="give top-1 error or top-1 accuracy as fractions in [0, 1]")
    df = pd.DataFrame({"corruption": table["corruption"].astype(str),
                       "severity": table["severity"].astype(int), "error": err})
    if df["error"].isna().any() or not df["error"].between(0.0, 1.0).all():
        raise RozError("corruption errors must be fractions in [0, 1] (no NaN)",
                       hint="divide percentages by 100")
    known = set(BENCHMARK_CORRUPTIONS) | set(EXTRA_CORRUPTIONS)
    unknown = sorted(set(df["corruption"]) - known)
    if unknown:
        raise RozError(f"unknown corruption(s) {unknown} in table",
                       hint="valid: " + ", ".join(BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS))
    bad = sorted(set(df["severity"]) - set(SEVERITIES))
    if bad:
        raise RozError(f"severity values {bad} are out of range", hint="severities are 1..5")
    dup = df.duplicated(["corruption", "severity"])
    if dup.any():
        first = df[dup].iloc[0]
        raise RozError(f"duplicate row for {first['corruption']} severity {first['severity']}",
                       hint="give one error per (corruption, severity); average repeats first")
    return df


def _require_complete(df: pd.DataFrame) -> None:
    have = set(zip(df["corruption"], df["severity"]))
    need = [(c, s) for c in BENCHMARK_CORRUPTIONS for s in SEVERITIES if (c, s) not in have]
    if need:
        shown = ", ".join(f"{c}:{s}" for c, s in need[:8]) + (" ..." if len(need) > 8 else "")
        raise RozError(f"mCE needs all 15 corruptions x 5 severities; {len(need)} missing: {shown}",
                       hint="evaluate the missing cells, or use error_table() for partial results")


def error_table(table: pd.DataFrame) -> pd.DataFrame:
    """Errors in % as a corruption x severity grid (columns ``1..5``) plus their mean."""
    df = _tidy(table)
    grid = df.pivot(index="corruption", columns="severity", values="error") * 100.0
    order = [c for c in BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS if c in grid.index]
    grid = grid.loc[order]
    grid.columns = [f"{ERROR} severity {s}" for s in grid.columns]
    grid[f"{ERROR} mean over severities"] = grid.mean(axis=1)
    return grid


def corruption_errors(table: pd.DataFrame, clean_error: float | None = None) -> pd.DataFrame:
    """Per corruption: mean error (%), CE (%) and, with ``clean_error`` (fraction), relative CE (%).

    Rows for corruptions without all five severities, and for extra corruptions, get NaN CE.
    """
    df = _tidy(table)
    ref = alexnet_errors()
    rows = []
    for c in [c for c in BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS if c in set(df["corruption"])]:
        e = df[df["corruption"] == c]
        complete = len(e) == len(SEVERITIES)
        mean = float(e["error"].mean())
        row = {"corruption": c, ERROR: 100.0 * mean, CE: float("nan")}
        if c in ref and complete:
            row[CE] = 100.0 * mean / ref[c]
        if clean_error is not None:
            row[REL_CE] = float("nan")
            if c in ref and complete:
                denom = ref[c] - alexnet_clean_error()
                row[REL_CE] = 100.0 * (mean - clean_error) / denom
        rows.append(row)
    return pd.DataFrame(rows).set_index("corruption")


def mce(table: pd.DataFrame) -> float:
    """mCE (%) normalised by AlexNet over the 15 benchmark corruptions."""
    df = _tidy(table)
    _require_complete(df)
    return float(corruption_errors(df).loc[list(BENCHMARK_CORRUPTIONS), CE].mean())


def relative_mce(table: pd.DataFrame, clean_error: float) -> float:
    """Relative mCE (%): degradation from the model's own clean error, normalised by AlexNet's."""
    _check_fraction(clean_error, "clean_error")
    df = _tidy(table)
    _require_complete(df)
    return float(corruption_errors(df, clean_error).loc[list(BENCHMARK_CORRUPTIONS), REL_CE].mean())


def mean_corruption_error(table: pd.DataFrame) -> float:
    """Unnormalised mean error (%) over the 15 benchmark corruptions x 5 severities."""
    df = _tidy(table)
    _require_complete(df)
    return 100.0 * float(df[df["corruption"].isin(BENCHMARK_CORRUPTIONS)]["error"].mean())


def summary(table: pd.DataFrame, clean_error: float | None = None) -> pd.Series:
    """All headline numbers with unambiguous labels (percent)."""
    out = {MCE: mce(table), MEAN_ERROR: mean_corruption_error(table)}
    out[MEAN_ACC] = 100.0 - out[MEAN_ERROR]
    if clean_error is not None:
        out[REL_MCE] = relative_mce(table, clean_error)
        out[CLEAN_ERROR] = 100.0 * clean_error
    return pd.Series(out, name="ImageNet-C")


def _check_fraction(v: float, what: str) -> None:
    if not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
        raise RozError(f"{what}={v!r} must be a fraction in [0, 1]", hint="divide percentages by 100")


__all__ = ["BENCHMARK_CORRUPTIONS", "EXTRA_CORRUPTIONS", "alexnet_errors", "alexnet_clean_error",
           "error_table", "corruption_errors", "mce", "relative_mce", "mean_corruption_error", "summary",
           "CE", "REL_CE", "MCE", "REL_MCE", "MEAN_ERROR", "MEAN_ACC", "CLEAN_ERROR", "ERROR"]
