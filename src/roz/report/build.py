"""``build_report``: render a run directory's results into a self-contained HTML report.

Reads only the result store (no model runs): unit records and, for relative-robustness
intervals, the per-sample parquet files. Writes under ``out`` (default ``RUN_DIR/report``)::

    index.html                     # the report (inline PNG figures, escaped text, no network)
    summary.txt                    # the headline table as plain text (what the CLI prints)
    report.json                    # protocol, fits, ER, relative robustness (machine-readable)
    figures/<name>.png|.svg        # every figure
    tables/<name>.csv|.parquet     # headline, effective_robustness, er_average, fits, relative,
                                   # metrics (all units), corruptions, perturbations, attacks,
                                   # typographic
    tables/headline.tex            # the headline table in LaTeX (booktabs)
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from roz.errors import RozError
from roz.metrics.effective import (DEFAULT_LEVEL, DEFAULT_N_BOOT, DEFAULT_SEED, AccuracyTable,
                                   accuracy_table_from_store, compute_effective_robustness)
from roz.report import figures as F
from roz.report import html as H
from roz.report import tables as T


# -- section data --------------------------------------------------------------------------------

def _shift_name(u) -> str:
    return str((u.get("shift") or {}).get("name", ""))


def _is_typographic(u) -> bool:
    return ("typographic" in _shift_name(u).lower() or "typographic" in u["dataset"]["name"].lower()
            or "typographic" in str(u.get("kind", "")).lower())


def _numeric(d: Mapping) -> dict[str, float]:
    return {k: float(v) for k, v in (d or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def load_ce_normalizer(spec) -> dict[str, float] | None:
    """CE normaliser (per-corruption error, fractions) from a mapping or a JSON file
    (``{"errors": {corruption: error}}`` or a flat mapping; values > 1 are read as percent), or
    ``"alexnet"``: the packaged AlexNet ImageNet-C errors (:func:`roz.metrics.corruption.alexnet_errors`)."""
    if spec is None:
        return None
    if isinstance(spec, (str, os.PathLike)):
        p = Path(spec)
        if not p.is_file() and str(spec).strip().lower() == "alexnet":
            from roz.metrics.corruption import alexnet_errors

            return alexnet_errors()
        if not p.is_file():
            raise RozError(f"CE normaliser file {p} not found",
                           hint="pass a JSON {corruption: error} file, or 'alexnet' for the packaged AlexNet errors")
        spec = json.loads(p.read_text())
    d = spec.get("errors", spec) if isinstance(spec, Mapping) else spec
    out = {str(k): float(v) for k, v in d.items() if isinstance(v, (int, float))}
    return {k: (v / 100.0 if v > 1.0 else v) for k, v in out.items()}


def corruption_data(units: Sequence[dict], normalizer: Mapping[str, float] | None = None,
                    baseline_model: str | None = None) -> dict | None:
    """Corruption units (``shift.name == 'corruption'``) -> long rows, per-corruption error
    (mean over severities) and a per-model summary: mCE when a normaliser is given
    (CE_c = mean_s err / normaliser_c, percent), else the unnormalised mean corruption error.

    ``baseline_model``: a model of the run; adds, per model, the mean CE relative to it
    (CE_c = sum_s err / sum_s err_baseline over the (dataset, corruption, severity) cells both
    have, percent; 100 = as robust as the baseline) and the per-corruption relative CE."""
    import pandas as pd

    from roz.metrics.corruption import MEAN_ERROR

    rows = []
    for u in units:
        sh = u.get("shift") or {}
        if u.get("kind", "eval") != "eval" or sh.get("name") != "corruption":
            continue
        met = _numeric(u.get("metrics", {}))
        top1 = met.get("top1")
        err = met.get("error", 100.0 - top1 if top1 is not None else float("nan"))
        rows.append({"model": u["model"]["name"], "role": u["model"].get("role", "standard"),
                     "dataset": u["dataset"]["name"], "corruption": str(sh.get("corruption", "?")),
                     "severity": sh.get("severity"), "top1": top1 if top1 is not None else float("nan"),
                     "error": err, **{k: v for k, v in met.items() if k not in ("top1", "error", "n")}})
    if not rows:
        return None
    df = pd.DataFrame(rows)
    if baseline_model is not None and baseline_model not in set(df.model):
        raise RozError(f"CE baseline model {baseline_model!r} has no corruption units in this run",
                       hint="models with corruption units: " + ", ".join(sorted(set(df.model))))
    per = df.groupby(["model", "corruption"])["error"].mean().unstack("corruption")
    if normalizer:
        cols = [c for c in per.columns if c in normalizer]
        ce = per[cols].div(pd.Series({c: 100.0 * normalizer[c] for c in cols})) * 100.0
        summary = ce.mean(axis=1).rename("mCE")
        label = "mCE (CE normalised by the given per-corruption errors)"
    else:
        ce = None
        summary = per.mean(axis=1).rename("mean corruption error")
        label = "mean corruption error (unnormalised)"
    summary = summary.sort_values()
    per = per.loc[summary.index]
    roles = dict(zip(df.model, df.role))
    table = pd.DataFrame({"model": summary.index, "role": [roles.get(m, "") for m in summary.index],
                          (MCE_GIVEN if normalizer else MEAN_ERROR): summary.to_numpy()})
    if normalizer:
        table[MEAN_ERROR] = per.mean(axis=1).reindex(summary.index).to_numpy()
    rel = rel_per = None
    if baseline_model is not None:
        rel_per = relative_ce(df, baseline_model).reindex(summary.index)
        rel = rel_per.mean(axis=1)
        table[f"mean CE relative to {baseline_model} (%)"] = rel.to_numpy()
    table["corruptions"] = per.notna().sum(axis=1).to_numpy()
    sev = sorted({int(s) for s in df.severity.dropna()})
    return {"rows": df, "per_corruption": per, "ce": ce, "summary": summary, "label": label,
            "roles": roles, "table": table, "baseline_model": baseline_model,
            "relative_ce": rel_per, "severities": sev, "corruptions": sorted(set(df.corruption)),
            "datasets": sorted(set(df.dataset))}


MCE_GIVEN = "mCE (normalised by the given errors, %)"


def relative_ce(rows, baseline_model: str):
    """Per model x corruption: CE relative to ``baseline_model`` in percent,
    ``100 * sum_s err(c, s) / sum_s err_baseline(c, s)`` over the (dataset, severity) cells both
    models have; NaN where they share none or the baseline's error sum is 0."""
    import pandas as pd

    d = rows.assign(severity=rows.severity.fillna(-1))
    cells = d.groupby(["model", "dataset", "corruption", "severity"])["error"].mean()
    base = cells.xs(baseline_model, level="model")
    out = {}
    for m in cells.index.get_level_values("model").unique():
        e = cells.xs(m, level="model")
        common = e.index.intersection(base.index)
        j = pd.DataFrame({"e": e.reindex(common), "b": base.reindex(common)}).dropna()
        g = j.groupby(level="corruption").sum()
        out[m] = (100.0 * g.e / g.b.where(g.b > 0))
    return pd.DataFrame(out).T.sort_index(axis=1)


_EPS_RE = re.compile(r"^(robust_acc|robust_accuracy|acc)@(.+)$")


def _parse_eps(s) -> float:
    s = str(s).strip()
    if "/" in s:
        a, b = s.split("/", 1)
        return float(a) / float(b)
    return float(s)


def attack_data(units: Sequence[dict]) -> dict | None:
    """Attack units -> robust-accuracy curves (attack, model, eps, robust_acc) and a flat table.

    Reads ``robust_acc@<eps>`` metrics (eps as ``8/255`` or a float), or ``robust_acc`` with
    ``attack.eps``; ``clean_acc`` (or ``top1``) is the eps = 0 point."""
    import pandas as pd

    pts, flat = [], []
    for u in units:
        if u.get("kind") != "attack":
            continue
        att = u.get("attack") or {}
        name = str(att.get("name", "attack"))
        ds = u["dataset"]["name"]
        model = u["model"]["name"]
        met = _numeric(u.get("metrics", {}))
        flat.append({"model": model, "role": u["model"].get("role", "standard"), "attack": name, "dataset": ds,
                     **{k: v for k, v in met.items()}})
        label = f"{name} on {ds}"
        clean = met.get("clean_acc", met.get("top1"))
        if clean is not None:
            pts.append({"attack": label, "model": model, "eps": 0.0, "robust_acc": clean})
        for k, v in met.items():
            m = _EPS_RE.match(k)
            if m:
                try:
                    pts.append({"attack": label, "model": model, "eps": _parse_eps(m.group(2)), "robust_acc": v})
                except ValueError:
                    continue
            elif k in ("robust_acc", "robust_accuracy") and "eps" in att:
                try:
                    pts.append({"attack": label, "model": model, "eps": _parse_eps(att["eps"]), "robust_acc": v})
                except ValueError:
                    continue
    if not flat:
        return None
    curves = pd.DataFrame(pts, columns=["attack", "model", "eps", "robust_acc"]).drop_duplicates(
        ["attack", "model", "eps"], keep="last")
    tab = pd.DataFrame(flat)
    return {"curves": curves, "table": tab, "roles": dict(zip(tab.model, tab.role))}


def typographic_data(units: Sequence[dict]) -> dict | None:
    import pandas as pd

    rows = []
    for u in units:
        if not _is_typographic(u):
            continue
        met = {k: v for k, v in _numeric(u.get("metrics", {})).items() if k != "n"}
        rows.append({"model": u["model"]["name"], "role": u["model"].get("role", "standard"),
                     "dataset": u["dataset"]["name"], "kind": u.get("kind", "eval"), **met})
    if not rows:
        return None
    df = pd.DataFrame(rows)
    label = df.model if not df.model.duplicated().any() else df.model + " [" + df.dataset + "]"
    metrics = [c for c in df.columns if c not in ("model", "role", "dataset", "kind")]
    keep = [c for c in metrics if c in ("top1",) or "success" in c or "acc" in c] or metrics
    fig_table = df.set_index(label)[keep]
    fig_table.index.name = "model"
    roles = dict(zip(label, df.role))
    return {"table": df, "fig_table": fig_table, "roles": roles}


PERTURBATIONS_ABSENT = "run perturbation:... shifts or the imagenet-p dataset"


def perturbation_data(units: Sequence[dict], baseline_model: str | None = None) -> dict | None:
    """ImageNet-P units (``kind == "perturbation"``) -> the per-model FP / mFR / T5D / mT5D table
    (:func:`roz.metrics.perturbation.mfr_table`, FP and mFR in percent), or None when the run has none.

    Difficulty 1 when the run has it, else every difficulty averaged per perturbation.
    ``baseline_model`` (the report's ``ce_baseline``): adds the normalised ``mFR_norm`` /
    ``mT5D_norm`` (baseline = 100) when that model has perturbation results, else the table stays
    un-normalised and ``baseline_missing`` says so."""
    from roz.metrics.perturbation import _record_perturbation, mfr_table

    recs = [u for u in units if u.get("kind") == "perturbation" and "flip_prob" in (u.get("metrics") or {})]
    if not recs:
        return None
    difficulties = sorted({_record_perturbation(u)[1] for u in recs if _record_perturbation(u)[0] is not None})
    if not difficulties:
        return None
    difficulty = 1 if 1 in difficulties else None
    models = {(u.get("model") or {}).get("name", "?") for u in recs
              if difficulty is None or _record_perturbation(u)[1] == difficulty}
    base = baseline_model if baseline_model is not None and baseline_model in models else None
    df = mfr_table(recs, baseline_model=base, difficulty=difficulty)
    if not len(df):
        return None
    roles = {u["model"]["name"]: u["model"].get("role", "standard") for u in recs}
    df.insert(1, "role", [roles.get(m, "") for m in df.model])
    return {"table": df, "baseline_model": base,
            "baseline_missing": baseline_model if baseline_model is not None and base is None else None,
            "perturbations": list(df.attrs.get("perturbations", [])), "difficulty": difficulty,
            "difficulties": difficulties, "datasets": sorted({u["dataset"]["name"] for u in recs})}


OVERLAP_FILE = "overlap.json"


def overlap_data(run_dir: str | os.PathLike) -> tuple[list[dict] | None, str | None]:
    """``RUN_DIR/overlap.json`` (``{split: {"detection", "accuracy", "n_duplicates", "protocol"}}``,
    as the demo writes from :func:`roz.overlap.report.overlap_report`) -> ``(splits, None)``;
    ``(None, None)`` when the file is absent, ``(None, why)`` when it cannot be read.
    Each split: ``{"split", "n_duplicates", "detection" (dict or None), "protocol" (dict),
    "accuracy" (DataFrame, one row per model, ``roz.overlap.analysis.rescore`` columns)}``."""
    import pandas as pd

    p = Path(run_dir) / OVERLAP_FILE
    if not p.is_file():
        return None, None
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        return None, f"{OVERLAP_FILE} could not be read ({e})"
    if not isinstance(data, Mapping):
        return None, f"{OVERLAP_FILE} is not a JSON object {{split: ...}}"
    out = []
    for split, v in data.items():
        if not isinstance(v, Mapping):
            continue
        acc = v.get("accuracy")
        try:
            df = pd.DataFrame(acc) if isinstance(acc, (list, Mapping)) and len(acc) else pd.DataFrame()
        except (ValueError, TypeError):
            df = pd.DataFrame()
        det = v.get("detection")
        prot = v.get("protocol")
        n_dup = v.get("n_duplicates")
        out.append({"split": str(split), "accuracy": df, "detection": det if isinstance(det, Mapping) else None,
                    "protocol": prot if isinstance(prot, Mapping) else {},
                    "n_duplicates": n_dup if isinstance(n_dup, (int, float)) and not isinstance(n_dup, bool) else None})
    return out, None


def overlap_table(splits: Sequence[dict]):
    """All splits' per-model accuracy rows in one long DataFrame (``split`` first)."""
    import pandas as pd

    frames = [sp["accuracy"].assign(split=sp["split"]) for sp in splits if len(sp["accuracy"])]
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    return df[["split"] + [c for c in df.columns if c != "split"]]


# -- baseline --------------------------------------------------------------------------------------

def resolve_baseline(baseline, columns=None) -> AccuracyTable | None:
    """``"run"``/``None`` -> None (use the run); an AccuracyTable as is; else a testbed path/URL."""
    if baseline is None or (isinstance(baseline, str) and baseline == "run"):
        return None
    if isinstance(baseline, AccuracyTable):
        return baseline
    from roz.metrics.testbed import read_testbed

    return read_testbed(baseline, columns)


# -- the report ------------------------------------------------------------------------------------

def build_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, baseline: Any = "run", *,
                 baseline_models=None, shifts=None, protocol: str = "standard", testbed_columns=None,
                 n_boot: int = DEFAULT_N_BOOT, seed: int | None = DEFAULT_SEED, level: float = DEFAULT_LEVEL,
                 pairs: Sequence[tuple[str, str]] | None = None, ce_normalizer=None,
                 ce_baseline: str | None = None, formats: Sequence[str] = ("png", "svg"),
                 title: str | None = None) -> Path:
    """Render ``run_dir`` into ``out`` (default ``run_dir/report``); returns the ``index.html`` path.

    ``baseline``: ``"run"`` (fit on the run's own baseline models) or the path/URL of a
    testbed-format table (``robustness_top1s.csv``), or an AccuracyTable. ``baseline_models``:
    the baseline selector (default role "standard"; see
    :func:`roz.metrics.effective.select_baseline`). ``shifts``: ``{shift: reference}`` mapping
    or list of Shift (default by dataset names: ImageNet or ROZ-Mini). ``protocol``:
    "standard" or "class-restricted". ``pairs``: (intervention, base) model pairs for relative
    robustness (default: each CLIP-Auto model vs its CLIP). ``ce_normalizer``: per-corruption
    normalising errors (mapping, JSON path, or ``"alexnet"`` for the packaged AlexNet ImageNet-C
    errors) for mCE. ``ce_baseline``: a model of the run; the corruption section then also gives
    each model's mean CE relative to it. ``RUN_DIR/overlap.json`` (train/test overlap analysis),
    when present, is rendered in the "Data overlap" section.
    """
    from roz.engine.store import ResultStore
    from roz.metrics.relative import default_pairs, relative_table

    t0 = time.perf_counter()
    store = ResultStore(run_dir, create=False)
    out = Path(out) if out is not None else store.root / "report"
    fig_dir, tab_dir = out / "figures", out / "tables"
    fig_dir.mkdir(parents=True, exist_ok=True)
    tab_dir.mkdir(parents=True, exist_ok=True)
    units = store.units()
    if not units:
        raise RozError(f"{store.root} holds no finished unit", hint="run `roz eval` / `roz run` first")
    # cheap, and may reject a bad option before any work
    ce_norm = load_ce_normalizer(ce_normalizer)
    cor = corruption_data(units, ce_norm, ce_baseline)
    table = accuracy_table_from_store(store)
    btab = resolve_baseline(baseline, testbed_columns)
    metrics_df = store.metrics_table()

    written: dict[str, dict[str, Path]] = {}
    figs: dict[str, tuple[bytes, dict]] = {}

    def add_fig(name, fig, alt):
        paths, png = F.save(fig, fig_dir / name, formats)
        figs[name] = (png, {k: os.path.relpath(p, out) for k, p in paths.items()}, alt)

    # effective robustness
    er = None
    er_error = None
    if len(table.acc):
        try:
            er = compute_effective_robustness(table, baseline_table=btab, baseline=baseline_models, shifts=shifts,
                                              protocol=protocol, n_boot=n_boot, seed=seed, level=level)
        except RozError as e:
            er_error = e.what + (f" ({e.hint})" if e.hint else "")
    headline = None
    if er is not None and er.fits:
        headline = T.headline_table(er, table)
        written["headline"] = T.write_table(headline, tab_dir / "headline")
        (tab_dir / "headline.tex").write_text(T.headline_latex(
            headline, {s.name: s.label for s in er.shifts},
            caption=f"Accuracy (%) and effective robustness (pp, in parentheses) on natural shifts; protocol {protocol}."))
        written["headline"]["tex"] = tab_dir / "headline.tex"
        written["effective_robustness"] = T.write_table(er.per_shift, tab_dir / "effective_robustness")
        written["er_average"] = T.write_table(er.average, tab_dir / "er_average")
        fits_df = _fits_frame(er)
        written["fits"] = T.write_table(fits_df, tab_dir / "fits")
        panels = []
        for s in er.shifts:
            if s.name not in er.fits:
                continue
            fit = er.fits[s.name]
            pts = F.points_for(er.per_shift, s.name, btab, fit)
            if not pts:
                continue
            kw = {"title": f"{s.label}", "xlabel": f"{fit.x_key.replace(':', ' ')} accuracy (%)",
                  "ylabel": f"{s.label} {s.metric} (%)"}
            add_fig(f"shift_{_slug(s.name)}", F.shift_figure(pts, fit, **kw), f"{s.label} vs reference accuracy")
            if s.natural:
                panels.append({"points": pts, "fit": fit, **kw})
        if panels:
            add_fig("grid_natural_shifts", F.grid_figure(panels), "all natural shifts")
    written["metrics"] = T.write_table(metrics_df, tab_dir / "metrics")

    # relative robustness
    roles = dict(table.roles)
    for u in units:
        roles.setdefault(u["model"]["name"], u["model"].get("role", "standard"))
    pairs = list(pairs) if pairs is not None else default_pairs(roles)
    rel = relative_table(store, pairs, n_boot=n_boot, seed=seed, level=level) if pairs else None
    if rel is not None and len(rel):
        written["relative"] = T.write_table(rel, tab_dir / "relative")

    # corruptions / attacks / typographic
    if cor:
        written["corruptions"] = T.write_table(cor["rows"], tab_dir / "corruptions")
        add_fig("corruptions", F.corruption_figure(cor["summary"], cor["per_corruption"], cor["roles"], cor["label"]),
                "corruption errors")
    pert = perturbation_data(units, ce_baseline)
    if pert:
        written["perturbations"] = T.write_table(pert["table"], tab_dir / "perturbations")
    att = attack_data(units)
    if att:
        written["attacks"] = T.write_table(att["table"], tab_dir / "attacks")
        if len(att["curves"]):
            add_fig("attacks", F.attack_figure(att["curves"], att["roles"]), "robust accuracy vs eps")
    ovl, ovl_error = overlap_data(store.root)
    if ovl:
        ovl_tab = overlap_table(ovl)
        if len(ovl_tab):
            written["overlap"] = T.write_table(ovl_tab, tab_dir / "overlap")
    typ = typographic_data(units)
    if typ:
        written["typographic"] = T.write_table(typ["table"], tab_dir / "typographic")
        if typ["fig_table"].shape[1]:
            add_fig("typographic", F.typographic_figure(typ["fig_table"], typ["roles"]), "typographic attacks")

    why = "; ".join(f"{k}: {v}" for k, v in er.skipped.items()) if er is not None and er.skipped else ""
    summary = T.to_console(headline) if headline is not None else "(no effective-robustness table: " + (
        er_error or f"no shift with a baseline fit{': ' + why if why else ''}") + ")"
    (out / "summary.txt").write_text(summary + "\n")
    report_json = {"run_dir": str(store.root), "protocol": er.protocol if er else None,
                   "fits": {k: f.to_dict() for k, f in er.fits.items()} if er else {},
                   "skipped_shifts": er.skipped if er else {}, "error": er_error,
                   "average_er": er.average.to_dict(orient="records") if er else [],
                   "relative": rel.to_dict(orient="records") if rel is not None else [],
                   "perturbations": pert["table"].to_dict(orient="records") if pert else [],
                   "overlap": {sp["split"]: {"n_duplicates": sp["n_duplicates"],
                                             **{k: (sp["detection"] or {}).get(k) for k in ("precision", "recall")}}
                               for sp in ovl or []}}
    (out / "report.json").write_text(json.dumps(report_json, indent=2, sort_keys=True, default=_jsonable) + "\n")

    html_text = _render(store, units, table, btab, er, er_error, headline, rel, pairs, cor, att, typ, metrics_df,
                        figs, written, out, protocol, title, time.perf_counter() - t0,
                        roles=roles, ovl=ovl, ovl_error=ovl_error, normalized=bool(ce_norm), pert=pert)
    index = out / "index.html"
    tmp = out / ".index.html.tmp"
    tmp.write_text(html_text, encoding="utf-8")
    os.replace(tmp, index)
    return index


def _jsonable(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("_") or "x"


def _fits_frame(er):
    import pandas as pd

    rows = []
    for s in er.shifts:
        f = er.fits.get(s.name)
        if f is None:
            continue
        lo, hi = f.ci("slope")
        ilo, ihi = f.ci("intercept")
        rows.append({"shift": s.name, "reference": f.x_key, "target": f.y_key, "natural": s.natural,
                     "slope": f.slope, "slope lo": lo, "slope hi": hi, "intercept": f.intercept,
                     "intercept lo": ilo, "intercept hi": ihi, "R2": f.r2, "n_models": f.n_models,
                     "dropped": "; ".join(f"{m} ({why})" for m, why in f.dropped)})
    return pd.DataFrame(rows)


def _links(written: dict, name: str, out: Path) -> str:
    d = written.get(name) or {}
    return " ".join(f'<a href="{H.href(os.path.relpath(p, out))}">{H.esc(k.upper())}</a>' for k, p in d.items())


def _corruption_notes(cor: dict, normalized: bool) -> str:
    from roz.metrics.corruption import BENCHMARK_CORRUPTIONS, SEVERITIES

    parts = []
    if normalized:
        parts.append("mCE: per corruption, the error averaged over the evaluated severities divided by the given "
                     "normaliser's error (percent), averaged over the corruptions the normaliser covers.")
    else:
        parts.append("Mean corruption error (unnormalised, %): per corruption, the top-1 error averaged over the "
                     "evaluated severities, then averaged over corruptions — not an mCE.")
    full = set(BENCHMARK_CORRUPTIONS) <= set(cor["corruptions"]) and set(SEVERITIES) <= set(cor["severities"])
    parts.append(f"This run: {len(cor['corruptions'])} corruption(s) ({', '.join(cor['corruptions'])}), severities "
                 f"{', '.join(map(str, cor['severities'])) or '?'}, on {', '.join(cor['datasets'])}"
                 + ("." if full else " — not the full ImageNet-C grid (15 corruptions × 5 severities), so not "
                    "comparable with published mCE values."))
    if not normalized:
        parts.append("AlexNet-normalised mCE (Hendrycks & Dietterich 2019) is not shown: it needs a CE normaliser, "
                     "roz report --ce-normalizer FILE (JSON {corruption: error}), or --ce-normalizer alexnet "
                     "(build_report(..., ce_normalizer=\"alexnet\")) for the packaged AlexNet errors "
                     "(src/roz/data/alexnet_imagenet_c_errors.json, roz.metrics.corruption.alexnet_errors); those "
                     "are ImageNet-C errors on the ImageNet validation set and only meaningful for that data.")
    b = cor.get("baseline_model")
    if b is not None:
        parts.append(f"CE relative to {b}: per corruption 100 · Σ_s error / Σ_s error of {b} over the (dataset, "
                     f"severity) cells both models have, averaged over corruptions; 100 = as robust as {b}, "
                     "lower is better.")
    else:
        parts.append("CE relative to a model of this run: pass ce_baseline=MODEL to build_report.")
    return "\n".join(f'<p class="muted">{H.esc(t)}</p>' for t in parts)


def _perturbation_notes(pert: dict) -> str:
    from roz.shifts.perturbations import NOISE_PERTURBATIONS, PERTURBATIONS

    d = pert["difficulty"]
    parts = ["Stability under ImageNet-P perturbation sequences (Hendrycks & Dietterich 2019). FP/<p>: flip "
             "probability, the fraction (%) of compared frame pairs whose top-1 prediction changes; T5D/<p>: mean "
             "top-5 distance between the rankings of the compared frames (not a percentage). Comparison rule: noise "
             f"perturbations ({', '.join(NOISE_PERTURBATIONS)}) compare every frame with frame 0 (i.i.d. draws, not a "
             "temporal ramp); the others compare consecutive frames (at stride = difficulty).",
             ("Difficulty 1." if d == 1 else
              f"Difficulties {', '.join(map(str, pert['difficulties']))} averaged per perturbation (no difficulty-1 "
              "units in this run).")
             + f" Data: {', '.join(pert['datasets'])}; several units of one (model, perturbation) are weighted by "
             "their sample counts."]
    b = pert["baseline_model"]
    if b is not None:
        parts.append(f"mFR / mT5D: the un-normalised means over perturbations; mFR_norm / mT5D_norm: normalised by "
                     f"{b} (the ce_baseline model), the mean over perturbations of FP_model(p) / FP_{b}(p) (× 100, "
                     f"so {b} scores 100; lower is more stable).")
    else:
        parts.append("mFR (%) and mT5D are un-normalised: means over the perturbations of FP and T5D, not the "
                     "paper's AlexNet-normalised mFR. Pass ce_baseline=MODEL to build_report to also normalise by a "
                     "model of this run."
                     + (f" The ce_baseline model {pert['baseline_missing']} has no perturbation units, so no "
                        "normalisation." if pert["baseline_missing"] else ""))
    missing = [p for p in PERTURBATIONS if p not in pert["perturbations"]]
    if missing:
        parts.append(f"This run: {len(pert['perturbations'])} perturbation(s) ({', '.join(pert['perturbations'])}) — "
                     f"not the 10 ImageNet-P test perturbations, so not comparable with published mFR values. "
                     "A model without every perturbation has no mFR (–).")
    return "\n".join(f'<p class="muted">{H.esc(t)}</p>' for t in parts)


def _ci_text(lo, hi, nd: int = 1, sign: bool = False) -> str:
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        return "–"
    if np.isnan(lo) or np.isnan(hi):
        return "–"
    return f"[{lo:+.{nd}f},\u00a0{hi:+.{nd}f}]" if sign else f"[{lo:.{nd}f},\u00a0{hi:.{nd}f}]"  # no-break space


def _num(d: Mapping, k):
    v = d.get(k)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _overlap_html(splits: Sequence[dict], roles: Mapping[str, str], written: dict, out: Path) -> str:
    import pandas as pd

    body = ["<p>Near-duplicates of each test set in the pretraining corpus, and every model re-scored on the full "
            "test set, the clean part (near-duplicates removed) and the overlap only (Radford et al. 2021, Sec. 5). "
            "full − clean is the accuracy change attributable to overlap; its interval is a paired bootstrap over "
            "test samples, the overlap-only interval is Clopper–Pearson.</p>"]
    for sp in splits:
        prot, det = sp["protocol"], sp["detection"]
        n_test = _num(prot, "n_test")
        n_dup = sp["n_duplicates"] if sp["n_duplicates"] is not None else _num(prot, "n_overlap")
        line = "near-duplicates found: " + ("?" if n_dup is None else H.fmt(n_dup))
        if n_test:
            line += f" of {H.fmt(n_test)} test images"
            if n_dup is not None:
                line += f" ({100.0 * n_dup / n_test:.1f} %)"
        how = [f"{k} {H.fmt(prot[k])}" for k in ("method", "verify", "threshold") if k in prot]
        if "n_corpus" in prot:
            how.append(f"corpus of {H.fmt(prot['n_corpus'])} images")
        if how:
            line += " (" + ", ".join(how) + ")"
        body += [f"<h3>{H.esc(sp['split'])}</h3>", f"<p>{H.esc(line)}.</p>"]
        if det:
            p, r = _num(det, "precision"), _num(det, "recall")
            txt = (f"Against the planted ground truth: precision {H.fmt(p, 3)}, recall {H.fmt(r, 3)}"
                   + "".join(f", {k} {H.fmt(det[k])}" for k in ("tp", "fp", "fn", "n_true") if _num(det, k) is not None)
                   + ".")
            body.append(f"<p>{H.esc(txt)}</p>")
            for key, what in (("false_positive_files", "false positives"), ("missed_files", "missed duplicates")):
                files = det.get(key) or []
                if isinstance(files, list) and files:
                    shown = files[:25]
                    body.append(f"<details><summary>{H.esc(f'{len(files)} {what}')}</summary><ul>"
                                + "".join(f"<li><code>{H.esc(f)}</code></li>" for f in shown) + "</ul>"
                                + (f'<p class="muted">{len(files) - len(shown)} more in {H.esc(OVERLAP_FILE)}.</p>'
                                   if len(files) > len(shown) else "") + "</details>")
        else:
            body.append('<p class="muted">No ground truth for this split: detection precision/recall not measured.</p>')
        acc = sp["accuracy"]
        if len(acc) and "model" in acc.columns:
            cp = 100 * float(prot.get("clopper_pearson_level", 0.995))
            g = lambda r, k: r.get(k, float("nan"))  # noqa: E731
            rows = []
            for r in acc.to_dict(orient="records"):
                rows.append({"model": r.get("model"), "role": roles.get(str(r.get("model")), ""),
                             "n full / clean / overlap": f"{H.fmt(g(r, 'n_full'))} / {H.fmt(g(r, 'n_clean'))} / "
                                                         f"{H.fmt(g(r, 'n_overlap'))}",
                             "acc full": g(r, "acc_full"),
                             "full CI": _ci_text(g(r, "acc_full_lo"), g(r, "acc_full_hi")),
                             "acc clean": g(r, "acc_clean"),
                             "clean CI": _ci_text(g(r, "acc_clean_lo"), g(r, "acc_clean_hi")),
                             "acc overlap": g(r, "acc_overlap"),
                             f"overlap CP {cp:g}%": _ci_text(g(r, "acc_overlap_cp_lo"), g(r, "acc_overlap_cp_hi")),
                             "full − clean": g(r, "delta_full_minus_clean"),
                             "full − clean CI": _ci_text(g(r, "delta_full_minus_clean_lo"),
                                                         g(r, "delta_full_minus_clean_hi"), 2, True),
                             "p (binomial, overlap > clean)": g(r, "p_overlap_gt_clean")})
            show = pd.DataFrame(rows)
            body.append(H.table_html(show, left=("model", "role", "n full / clean / overlap"),
                                     signed=lambda c: c == "full − clean"))
        else:
            body.append('<p class="muted">No per-model accuracy rows for this split.</p>')
        if prot:
            body.append("<details><summary>Detection protocol</summary>" + H.pre_json(prot) + "</details>")
    if "overlap" in written:
        body.append(f"<p>Download (all splits): {_links(written, 'overlap', out)}</p>")
    return "\n".join(body)


def _headline_html(headline, er) -> str:
    cols = list(headline.columns)
    nat = [s for s in er.shifts if s.natural and s.name in er.fits]
    ref = [c for c in cols if c not in ("model", "role", "avg ER", "avg ER lo", "avg ER hi", "n_shifts")
           and c not in [s.name for s in nat] and not c.endswith(" ER")]
    h1 = ('<tr><th class="l" rowspan="2">model</th><th class="l" rowspan="2">role</th>'
          + "".join(f'<th rowspan="2">{H.esc(r)}</th>' for r in ref)
          + "".join(f'<th colspan="2">{H.esc(s.label)}</th>' for s in nat)
          + '<th colspan="2">average over natural shifts</th></tr>')
    h2 = "<tr>" + "<th>acc</th><th>ER</th>" * len(nat) + f"<th>ER</th><th>{er.protocol['level']:.0%} CI</th></tr>"
    out = ["<table>", h1, h2]
    for r in headline.to_dict(orient="records"):
        tds = [f'<td class="l">{H.esc(r["model"])}</td>', f'<td class="l">{H.esc(r["role"])}</td>']
        tds += [f"<td>{H.esc(H.fmt(r[c], 1))}</td>" for c in ref]
        for s in nat:
            e = r[f"{s.name} ER"]
            k = "" if not isinstance(e, float) or np.isnan(e) else ("pos" if e > 0 else "neg")
            tds.append(f"<td>{H.esc(H.fmt(r[s.name], 1))}</td><td class=\"{k}\">{H.esc(H.fmt(e, 1, True))}</td>")
        a = r["avg ER"]
        k = "" if np.isnan(a) else ("pos" if a > 0 else "neg")
        ci = "–" if np.isnan(r["avg ER lo"]) else f"[{r['avg ER lo']:+.1f}, {r['avg ER hi']:+.1f}]"
        part = "" if int(r["n_shifts"]) >= len(nat) or np.isnan(a) else f" ({int(r['n_shifts'])}/{len(nat)})"
        tds.append(f'<td class="{k}">{H.esc(H.fmt(a, 1, True) + part)}</td><td>{H.esc(ci)}</td>')
        out.append(f'<tr class="role-{H.esc(r["role"])}">' + "".join(tds) + "</tr>")
    out.append("</table>")
    out.append('<p class="muted">(k/n): average over the k of n natural shifts the model was evaluated on — '
               'not comparable with full averages.</p>')
    return "\n".join(out)


def _render(store, units, table, btab, er, er_error, headline, rel, pairs, cor, att, typ, metrics_df, figs, written,
            out, protocol, title, elapsed, *, roles=None, ovl=None, ovl_error=None, normalized=False,
            pert=None) -> str:
    secs = []
    meta = store.meta
    roles = roles or {}
    kinds = Counter(u.get("kind", "eval") for u in units)
    intro = (f"<p>Run <code>{H.esc(store.root)}</code>: ROZ {H.esc(meta.get('roz_version'))}, "
             f"store format {H.esc(meta.get('store_format'))}, created {H.esc(meta.get('created'))}; "
             f"{len(units)} finished units ({H.esc(', '.join(f'{k}: {v}' for k, v in sorted(kinds.items())))}), "
             f"{len(set(u['model']['name'] for u in units))} models, "
             f"{len(set(u['dataset']['name'] for u in units))} datasets. "
             f'Configuration and environment: <a href="#config">below</a>.</p>')

    # headline
    if headline is not None and er is not None:
        pr = er.protocol
        body = [f"<p>Accuracy (%) per natural shift and effective robustness ER (percentage points above the "
                f"baseline fit). Protocol: <b>{H.esc(protocol)}</b>. Baseline: {H.esc(pr['baseline_rule'])}, "
                f"{len(pr['baseline_models'])} models from <code>{H.esc(pr['baseline_source'])}</code>. "
                f"Bootstrap: B={pr['n_boot']}, seed={H.esc(pr['seed'])}, {pr['level']:.0%} percentile intervals "
                f"over baseline models.</p>", _headline_html(headline, er),
                f"<p>Download: {_links(written, 'headline', out)} · per shift: {_links(written, 'effective_robustness', out)}"
                f" · averages: {_links(written, 'er_average', out)}</p>"]
        if er.skipped:
            body.append("<p>Shifts without a fit: " + H.esc("; ".join(f"{k}: {v}" for k, v in er.skipped.items())) + "</p>")
        for k, v in er.missing.items():
            body.append(f"<p>{H.esc(k)}: no reference accuracy ({H.esc(er.fits[k].x_key if k in er.fits else '?')}) for "
                        f"{H.esc(', '.join(v))} — not scored.</p>")
        secs.append(("headline", "Headline: accuracy and effective robustness", "\n".join(body)))
    else:
        secs.append(("headline", "Headline: accuracy and effective robustness",
                     H.absent(er_error or "no natural-shift result with a baseline fit in this run"
                              + (" (" + "; ".join(f"{k}: {v}" for k, v in er.skipped.items()) + ")"
                                 if er is not None and er.skipped else ""))))

    # figures
    if er is not None and er.fits:
        body = []
        if "grid_natural_shifts" in figs:
            png, links, alt = figs["grid_natural_shifts"]
            body += ["<h3>All natural shifts</h3>", H.img_html(png, alt, links)]
        for s in er.shifts:
            name = f"shift_{_slug(s.name)}"
            if name in figs:
                png, links, alt = figs[name]
                body += [f"<h3>{H.esc(s.label)}</h3>", H.img_html(png, alt, links)]
        secs.append(("figures", "Effective robustness figures", "\n".join(body)))
        fits_df = _fits_frame(er)
        body = ["<p>Linear fit of logit(shift accuracy) on logit(reference accuracy) over the baseline models, "
                "accuracies as fractions; intervals by bootstrap over models.</p>",
                H.table_html(fits_df, nd=4, left=("shift", "reference", "target", "dropped"), role_col=None),
                f"<p>Download: {_links(written, 'fits', out)}</p>",
                "<details><summary>Baseline models</summary><p>"
                + H.esc(", ".join(er.protocol["baseline_models"])) + "</p></details>"]
        secs.append(("fits", "Baseline fits", "\n".join(body)))
    else:
        secs.append(("figures", "Effective robustness figures", H.absent("no baseline fit")))
        secs.append(("fits", "Baseline fits", H.absent("no baseline fit")))

    # relative robustness
    auto_note = ""
    if not any(r == "zeroshot-auto" for r in roles.values()):
        auto_note = H.absent("CLIP-Auto is absent from this run: no model has role zeroshot-auto (the "
                             "prompt-search capability is not part of this run), so CLIP vs CLIP-Auto is not reported.")
    if rel is not None and len(rel):
        show = rel[["model", "model0", "dataset", "metric", "acc", "acc0", "rr", "lo", "hi", "paired", "method"]]
        body = ["<p>Relative robustness RR = acc(f) − acc(f₀) in percentage points, paired bootstrap over test "
                "samples where per-sample results exist.</p>",
                H.table_html(show, left=("model", "model0", "dataset", "metric", "method"), role_col=None,
                             signed=lambda c: c == "rr"),
                f"<p>Download: {_links(written, 'relative', out)}</p>", auto_note]
        secs.append(("relative", "Relative robustness", "\n".join(body)))
    else:
        secs.append(("relative", "Relative robustness",
                     H.absent("no intervention pair (a CLIP-Auto model with its CLIP model) in this run") + auto_note))

    # corruptions
    if cor:
        png, links, alt = figs["corruptions"]
        body = [H.img_html(png, alt, links), f"<h3>{H.esc(cor['label'])} per model</h3>",
                _corruption_notes(cor, normalized), H.table_html(cor["table"]),
                "<h3>Per-corruption error (%, mean over severities)</h3>",
                H.table_html(cor["per_corruption"].reset_index(), role_col=None)]
        if cor["relative_ce"] is not None:
            body += [f"<h3>Per-corruption CE relative to {H.esc(cor['baseline_model'])} (%)</h3>",
                     H.table_html(cor["relative_ce"].rename_axis("model").reset_index(), role_col=None)]
        body.append(f"<p>Download: {_links(written, 'corruptions', out)}</p>")
        secs.append(("corruptions", "Corruptions", "\n".join(body)))
    else:
        secs.append(("corruptions", "Corruptions", H.absent("no corruption units in this run")))

    # perturbations (ImageNet-P)
    if pert:
        body = [_perturbation_notes(pert), H.table_html(pert["table"]),
                f"<p>Download: {_links(written, 'perturbations', out)}</p>"]
        secs.append(("perturbations", "Perturbations (ImageNet-P)", "\n".join(body)))
    else:
        secs.append(("perturbations", "Perturbations (ImageNet-P)", H.absent(PERTURBATIONS_ABSENT)))

    # attacks
    if att:
        body = []
        if "attacks" in figs:
            png, links, alt = figs["attacks"]
            body.append(H.img_html(png, alt, links))
        body += [H.table_html(att["table"], left=("model", "role", "attack", "dataset")),
                 f"<p>Download: {_links(written, 'attacks', out)}</p>"]
        secs.append(("attacks", "Adversarial attacks", "\n".join(body)))
    else:
        secs.append(("attacks", "Adversarial attacks", H.absent("no attack units in this run")))

    # typographic
    if typ:
        body = []
        if "typographic" in figs:
            png, links, alt = figs["typographic"]
            body.append(H.img_html(png, alt, links))
        body += [H.table_html(typ["table"], left=("model", "role", "dataset", "kind")),
                 f"<p>Download: {_links(written, 'typographic', out)}</p>"]
        secs.append(("typographic", "Typographic attacks", "\n".join(body)))
    else:
        secs.append(("typographic", "Typographic attacks", H.absent("no typographic units in this run")))

    # data overlap
    if ovl:
        secs.append(("overlap", "Data overlap", _overlap_html(ovl, roles, written, out)))
    else:
        secs.append(("overlap", "Data overlap", H.absent(
            (ovl_error + "; " if ovl_error else "") + "run the overlap analysis (roz.overlap.overlap_report) and "
            f"write its summary to {OVERLAP_FILE} in the run directory")))

    # per-dataset details
    body = []
    if len(metrics_df):
        for ds in sorted(metrics_df["dataset"].unique()):
            d = metrics_df[metrics_df["dataset"] == ds].dropna(axis=1, how="all")
            d = d.drop(columns=[c for c in ("dataset",) if c in d.columns])
            first = [c for c in ("model", "role", "kind", "shift", "attack") if c in d.columns]
            d = d[first + [c for c in d.columns if c not in first and c != "unit_id"] + ["unit_id"]]
            d = d.sort_values(["role", "model"], kind="stable")
            body += [f"<h3>{H.esc(ds)}</h3>",
                     H.table_html(d, left=("model", "role", "kind", "shift", "attack", "unit_id"))]
    body.append(f"<p>All units: {_links(written, 'metrics', out)}</p>")
    secs.append(("datasets", "Per-dataset details", "\n".join(body)))

    # configuration and environment (collapsed: long)
    envs = Counter(json.dumps(u.get("env", {}), sort_keys=True, default=str) for u in units)
    protos = Counter(json.dumps(u.get("protocol", {}), sort_keys=True, default=str) for u in units)
    body = [f"<p>Run directory: <code>{H.esc(store.root)}</code>.</p>",
            "<details><summary>Run configuration (JSON)</summary>", H.pre_json(meta.get("config", {})), "</details>",
            f"<details><summary>Environment ({len(envs)} distinct)</summary>"]
    for e, n in envs.most_common():
        body.append(f'<p class="muted">{n} unit(s):</p>' + H.pre_json(json.loads(e)))
    body.append("</details>")
    body.append(f"<details><summary>Evaluation protocols ({len(protos)} distinct)</summary>")
    for p, n in protos.most_common():
        body.append(f'<p class="muted">{n} unit(s):</p>' + H.pre_json(json.loads(p)))
    body.append("</details>")
    secs.append(("config", "Configuration and environment", "\n".join(body)))

    # downloads
    items = []
    for name in ("headline", "effective_robustness", "er_average", "fits", "relative", "metrics", "corruptions",
                 "perturbations", "attacks", "typographic", "overlap"):
        if name in written:
            items.append(f"<li>{H.esc(name)}: {_links(written, name, out)}</li>")
    items.append(f'<li>machine-readable: <a href="{H.href("report.json")}">report.json</a>, '
                 f'<a href="{H.href("summary.txt")}">summary.txt</a></li>')
    secs.append(("downloads", "Downloads (CSV, Parquet, LaTeX)", "<ul>" + "\n".join(items) + "</ul>"))

    # protocol
    if er is not None:
        body = [H.pre_json(er.protocol)]
        secs.append(("protocol", "Metric protocol", "\n".join(body)))
    sub = (f"Rendered from the result store in {elapsed:.2f} s (no model re-run)"
           + (f"; baseline table: {btab.source}" if btab is not None else ""))
    return H.page(title or f"ROZ report: {store.root.name}", secs, sub, intro=intro)
