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

Run tables (:func:`model_errors`, :func:`normalised_ce`, :func:`relative_ce`, :func:`model_summary`)
work on the long rows of a whole run instead: columns ``model``, ``dataset``, ``corruption``,
``severity`` and ``error`` in **percent**, any corruption, any subset of severities (what the
report shows). There the per-corruption error is the mean over the evaluated severities, the CE
divides it by a given normaliser (:func:`load_normalizer`), and the CE relative to a model of the
run is the ratio of error sums over the (dataset, severity) cells both models have.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd

from roz.datasets.release_names import CORRUPTIONS as BENCHMARK_CORRUPTIONS
from roz.datasets.release_names import EXTRA_CORRUPTIONS, SEVERITIES  # noqa: F401  (re-exported)
from roz.errors import RozError

ERROR = "error (%)"
CE = "CE (AlexNet-normalised, %)"
REL_CE = "relative CE (AlexNet-normalised, %)"
MCE = "mCE (AlexNet-normalised, %)"
REL_MCE = "relative mCE (AlexNet-normalised, %)"
MEAN_ERROR = "mean corruption error (unnormalised, %)"
MEAN_ACC = "mean corruption top-1 (unnormalised, %)"
CLEAN_ERROR = "clean error (%)"
MCE_GIVEN = "mCE (normalised by the given errors, %)"


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


# -- run tables: many models, percent, any subset of corruptions and severities ----------------------

def load_normalizer(spec) -> dict[str, float] | None:
    """CE normaliser (per-corruption error, fractions) from a mapping or a JSON file
    (``{"errors": {corruption: error}}`` or a flat mapping; values > 1 are read as percent), or
    ``"alexnet"``: the packaged AlexNet ImageNet-C errors (:func:`alexnet_errors`)."""
    if spec is None:
        return None
    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec)
        if not path.is_file() and str(spec).strip().lower() == "alexnet":
            return alexnet_errors()
        if not path.is_file():
            raise RozError(f"CE normaliser file {path} not found",
                           hint="pass a JSON {corruption: error} file, or 'alexnet' for the packaged AlexNet errors")
        spec = json.loads(path.read_text())
    errors = spec.get("errors", spec) if isinstance(spec, Mapping) else spec
    out = {str(k): float(v) for k, v in errors.items() if isinstance(v, (int, float))}
    return {k: (v / 100.0 if v > 1.0 else v) for k, v in out.items()}


def model_errors(rows: pd.DataFrame) -> pd.DataFrame:
    """Model x corruption: the error (%) averaged over every evaluated (dataset, severity) row."""
    return rows.groupby(["model", "corruption"])["error"].mean().unstack("corruption")


def normalised_ce(per_corruption: pd.DataFrame, normalizer: Mapping[str, float]) -> pd.DataFrame:
    """CE (%) per model and corruption: ``100 * error(%) / (100 * normaliser_c)``, only for the
    corruptions the normaliser covers."""
    cols = [c for c in per_corruption.columns if c in normalizer]
    return per_corruption[cols].div(pd.Series({c: 100.0 * normalizer[c] for c in cols})) * 100.0


def relative_ce(rows: pd.DataFrame, baseline_model: str) -> pd.DataFrame:
    """Per model x corruption: CE relative to ``baseline_model`` in percent,
    ``100 * sum_s err(c, s) / sum_s err_baseline(c, s)`` over the (dataset, severity) cells both
    models have; NaN where they share none or the baseline's error sum is 0."""
    cells = (rows.assign(severity=rows.severity.fillna(-1))
             .groupby(["model", "dataset", "corruption", "severity"])["error"].mean())
    base = cells.xs(baseline_model, level="model")
    out = {}
    for model in cells.index.get_level_values("model").unique():
        err = cells.xs(model, level="model")
        common = err.index.intersection(base.index)
        pair = pd.DataFrame({"e": err.reindex(common), "b": base.reindex(common)}).dropna()
        sums = pair.groupby(level="corruption").sum()
        out[model] = 100.0 * sums.e / sums.b.where(sums.b > 0)
    return pd.DataFrame(out).T.sort_index(axis=1)


def model_summary(rows: pd.DataFrame, normalizer: Mapping[str, float] | None = None,
                  baseline_model: str | None = None) -> dict:
    """A run's corruption summary, one row per model sorted best first.

    ``table``: ``model``, then the mCE over the normaliser's corruptions (:data:`MCE_GIVEN`) and
    the unnormalised mean error when a normaliser is given, else the unnormalised mean error
    (:data:`MEAN_ERROR`, mean over corruptions of the per-corruption error); with
    ``baseline_model`` the mean CE relative to it; ``corruptions`` (how many the model has).
    Also ``per_corruption`` (:func:`model_errors`, rows in table order), ``ce``
    (:func:`normalised_ce` or None), ``summary`` (the sorted first metric), ``label`` and
    ``relative_ce`` (:func:`relative_ce` or None)."""
    if baseline_model is not None and baseline_model not in set(rows.model):
        raise RozError(f"CE baseline model {baseline_model!r} has no corruption units in this run",
                       hint="models with corruption units: " + ", ".join(sorted(set(rows.model))))
    per = model_errors(rows)
    ce = normalised_ce(per, normalizer) if normalizer else None
    if ce is not None:
        ranked = ce.mean(axis=1).rename("mCE")
        label = "mCE (CE normalised by the given per-corruption errors)"
    else:
        ranked = per.mean(axis=1).rename("mean corruption error")
        label = "mean corruption error (unnormalised)"
    ranked = ranked.sort_values()
    per = per.loc[ranked.index]
    table = pd.DataFrame({"model": ranked.index, (MCE_GIVEN if ce is not None else MEAN_ERROR): ranked.to_numpy()})
    if ce is not None:
        table[MEAN_ERROR] = per.mean(axis=1).to_numpy()
    rel = None
    if baseline_model is not None:
        rel = relative_ce(rows, baseline_model).reindex(ranked.index)
        table[f"mean CE relative to {baseline_model} (%)"] = rel.mean(axis=1).to_numpy()
    table["corruptions"] = per.notna().sum(axis=1).to_numpy()
    return {"table": table, "per_corruption": per, "ce": ce, "summary": ranked, "label": label,
            "relative_ce": rel}


__all__ = [
    "BENCHMARK_CORRUPTIONS",
    "CE",
    "CLEAN_ERROR",
    "ERROR",
    "EXTRA_CORRUPTIONS",
    "MCE",
    "MCE_GIVEN",
    "MEAN_ACC",
    "MEAN_ERROR",
    "REL_CE",
    "REL_MCE",
    "alexnet_clean_error",
    "alexnet_errors",
    "corruption_errors",
    "error_table",
    "load_normalizer",
    "mce",
    "mean_corruption_error",
    "model_errors",
    "model_summary",
    "normalised_ce",
    "relative_ce",
    "relative_mce",
    "summary",
]
