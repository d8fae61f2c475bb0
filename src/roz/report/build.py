"""``build_report``: render a run directory's results into a self-contained HTML report.

Reads only the result store (no model runs): unit records and, for relative-robustness
intervals, the per-sample parquet files. Writes under ``out`` (default ``RUN_DIR/report``)::

    index.html                     # the report (inline PNG figures, escaped text, no network)
    summary.txt                    # the headline table as plain text (what the CLI prints)
    report.json                    # protocol, fits, ER, relative robustness (machine-readable)
    figures/<name>.png|.svg        # every figure
    tables/<name>.csv|.parquet     # headline, effective_robustness, er_average, fits, relative,
                                   # metrics (all units), corruptions, attacks, typographic
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
    (``{"errors": {corruption: error}}`` or a flat mapping; values > 1 are read as percent)."""
    if spec is None:
        return None
    if isinstance(spec, (str, os.PathLike)):
        p = Path(spec)
        if not p.is_file():
            raise RozError(f"CE normaliser file {p} not found", hint="pass a JSON {corruption: error} file")
        spec = json.loads(p.read_text())
    d = spec.get("errors", spec) if isinstance(spec, Mapping) else spec
    out = {str(k): float(v) for k, v in d.items() if isinstance(v, (int, float))}
    return {k: (v / 100.0 if v > 1.0 else v) for k, v in out.items()}


def corruption_data(units: Sequence[dict], normalizer: Mapping[str, float] | None = None) -> dict | None:
    """Corruption units (``shift.name == 'corruption'``) -> long rows, per-corruption error
    (mean over severities) and a per-model summary: mCE when a normaliser is given
    (CE_c = mean_s err / normaliser_c, percent), else the unnormalised mean corruption error."""
    import pandas as pd

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
    return {"rows": df, "per_corruption": per, "ce": ce, "summary": summary, "label": label,
            "roles": dict(zip(df.model, df.role))}


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
                 formats: Sequence[str] = ("png", "svg"), title: str | None = None) -> Path:
    """Render ``run_dir`` into ``out`` (default ``run_dir/report``); returns the ``index.html`` path.

    ``baseline``: ``"run"`` (fit on the run's own baseline models) or the path/URL of a
    testbed-format table (``robustness_top1s.csv``), or an AccuracyTable. ``baseline_models``:
    the baseline selector (default role "standard"; see
    :func:`roz.metrics.effective.select_baseline`). ``shifts``: ``{shift: reference}`` mapping
    or list of Shift (default by dataset names: ImageNet or ROZ-Mini). ``protocol``:
    "standard" or "class-restricted". ``pairs``: (intervention, base) model pairs for relative
    robustness (default: each CLIP-Auto model vs its CLIP). ``ce_normalizer``: per-corruption
    normalising errors (mapping or JSON path) for mCE.
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
    cor = corruption_data(units, load_ce_normalizer(ce_normalizer))
    if cor:
        written["corruptions"] = T.write_table(cor["rows"], tab_dir / "corruptions")
        add_fig("corruptions", F.corruption_figure(cor["summary"], cor["per_corruption"], cor["roles"], cor["label"]),
                "corruption errors")
    att = attack_data(units)
    if att:
        written["attacks"] = T.write_table(att["table"], tab_dir / "attacks")
        if len(att["curves"]):
            add_fig("attacks", F.attack_figure(att["curves"], att["roles"]), "robust accuracy vs eps")
    typ = typographic_data(units)
    if typ:
        written["typographic"] = T.write_table(typ["table"], tab_dir / "typographic")
        if typ["fig_table"].shape[1]:
            add_fig("typographic", F.typographic_figure(typ["fig_table"], typ["roles"]), "typographic attacks")

    summary = T.to_console(headline) if headline is not None else "(no effective-robustness table: " + (
        er_error or "no shift with a baseline fit") + ")"
    (out / "summary.txt").write_text(summary + "\n")
    report_json = {"run_dir": str(store.root), "protocol": er.protocol if er else None,
                   "fits": {k: f.to_dict() for k, f in er.fits.items()} if er else {},
                   "skipped_shifts": er.skipped if er else {}, "error": er_error,
                   "average_er": er.average.to_dict(orient="records") if er else [],
                   "relative": rel.to_dict(orient="records") if rel is not None else []}
    (out / "report.json").write_text(json.dumps(report_json, indent=2, sort_keys=True, default=_jsonable) + "\n")

    html_text = _render(store, units, table, btab, er, er_error, headline, rel, pairs, cor, att, typ, metrics_df,
                        figs, written, out, protocol, title, time.perf_counter() - t0)
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
            out, protocol, title, elapsed) -> str:
    secs = []
    meta = store.meta
    # configuration and environment
    envs = Counter(json.dumps(u.get("env", {}), sort_keys=True, default=str) for u in units)
    kinds = Counter(u.get("kind", "eval") for u in units)
    protos = Counter(json.dumps(u.get("protocol", {}), sort_keys=True, default=str) for u in units)
    body = [f"<p>Run directory: <code>{H.esc(store.root)}</code><br>ROZ {H.esc(meta.get('roz_version'))}, "
            f"store format {H.esc(meta.get('store_format'))}, created {H.esc(meta.get('created'))}; "
            f"{len(units)} finished units ({H.esc(', '.join(f'{k}: {v}' for k, v in sorted(kinds.items())))}), "
            f"{len(set(u['model']['name'] for u in units))} models, "
            f"{len(set(u['dataset']['name'] for u in units))} datasets.</p>",
            "<h3>Configuration</h3>", H.pre_json(meta.get("config", {})),
            f"<h3>Environment ({len(envs)} distinct)</h3>"]
    for e, n in envs.most_common():
        body.append(f'<p class="muted">{n} unit(s):</p>' + H.pre_json(json.loads(e)))
    body.append(f"<details><summary>Evaluation protocols ({len(protos)} distinct)</summary>")
    for p, n in protos.most_common():
        body.append(f'<p class="muted">{n} unit(s):</p>' + H.pre_json(json.loads(p)))
    body.append("</details>")
    secs.append(("config", "Configuration and environment", "\n".join(body)))

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
    if rel is not None and len(rel):
        show = rel[["model", "model0", "dataset", "metric", "acc", "acc0", "rr", "lo", "hi", "paired", "method"]]
        body = ["<p>Relative robustness RR = acc(f) − acc(f₀) in percentage points, paired bootstrap over test "
                "samples where per-sample results exist.</p>",
                H.table_html(show, left=("model", "model0", "dataset", "metric", "method"), role_col=None,
                             signed=lambda c: c == "rr"),
                f"<p>Download: {_links(written, 'relative', out)}</p>"]
        secs.append(("relative", "Relative robustness", "\n".join(body)))
    else:
        secs.append(("relative", "Relative robustness",
                     H.absent("no intervention pair (a CLIP-Auto model with its CLIP model) in this run")))

    # corruptions
    if cor:
        png, links, alt = figs["corruptions"]
        summ = cor["summary"].reset_index().rename(columns={"index": "model"})
        summ.insert(1, "role", summ["model"].map(lambda m: cor["roles"].get(m, "")))
        body = [H.img_html(png, alt, links), f"<h3>{H.esc(cor['label'])}</h3>", H.table_html(summ),
                "<h3>Per-corruption error (%)</h3>",
                H.table_html(cor["per_corruption"].reset_index(), role_col=None),
                f"<p>Download: {_links(written, 'corruptions', out)}</p>"]
        secs.append(("corruptions", "Corruptions", "\n".join(body)))
    else:
        secs.append(("corruptions", "Corruptions", H.absent("no corruption units in this run")))

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

    # downloads
    items = []
    for name in ("headline", "effective_robustness", "er_average", "fits", "relative", "metrics", "corruptions",
                 "attacks", "typographic"):
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
    return H.page(title or f"ROZ report: {store.root.name}", secs, sub)
