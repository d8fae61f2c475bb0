"""The report's figures (matplotlib, Agg backend; PNG and SVG, byte-stable across runs).

* :func:`shift_figure` — accuracy under one shift against reference accuracy on logit axes
  with percent tick labels: baseline models red with the fit line and its bootstrap band,
  zero-shot CLIP blue, CLIP-Auto purple, other models grey, dashed y = x.
* :func:`grid_figure` — the same for every natural shift, one panel each.
* :func:`corruption_figure` — mean corruption error (or mCE) per model and per-corruption error.
* :func:`attack_figure` — robust accuracy against the budget eps, one panel per attack.
* :func:`typographic_figure` — accuracy / success rate under typographic attacks.

Colours follow the model role; text drawn on a figure is passed through :func:`safe_text`
(no mathtext, so any model name renders literally).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

ROLE_COLORS = {"standard": "#d62728", "zeroshot": "#1f77b4", "zeroshot-auto": "#9467bd"}
OTHER_COLOR = "#7f7f7f"
ROLE_LABELS = {"standard": "standard (ImageNet)", "zeroshot": "zero-shot CLIP", "zeroshot-auto": "CLIP-Auto"}
ROLE_ORDER = ("standard", "zeroshot", "zeroshot-auto")
MAX_LABELS = 24  # with labels="run", annotate at most this many non-baseline points per panel
LABEL_CHOICES = ("run", "all", "none")  # which points a figure names (report option label_points)
_TICKS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 98, 99, 99.5, 99.8, 99.9)


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.hashsalt"] = "roz"
    matplotlib.rcParams["svg.fonttype"] = "none"  # text as <text> (XML-escaped by matplotlib): small, fast
    matplotlib.rcParams["text.usetex"] = False
    return plt


def role_color(role: str) -> str:
    return ROLE_COLORS.get(role, OTHER_COLOR)


def safe_text(s) -> str:
    """A string matplotlib draws literally (``$`` would start mathtext)."""
    return str(s).replace("$", r"\$")


def _logit(p):
    p = np.clip(np.asarray(p, float) / 100.0, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def _ticks(lo: float, hi: float) -> list[float]:
    """Percent ticks inside [lo, hi] (percent): the logit-friendly set when it gives 4-9 ticks,
    else multiples of the smallest nice step giving at most 8."""
    t = [v for v in _TICKS if lo <= v <= hi]
    if 4 <= len(t) <= 9:
        return t
    if len(t) > 9:
        return t[:: int(np.ceil(len(t) / 9))]
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20):
        m = np.arange(np.ceil(lo / step), np.floor(hi / step) + 1) * step
        if len(m) <= 8:
            return [float(np.round(v, 3)) for v in m] if len(m) >= 2 else t or [float(np.round((lo + hi) / 2, 1))]
    return t


def _set_logit_axes(ax, xlim, ylim):
    xt, yt = _ticks(*xlim), _ticks(*ylim)
    ax.set_xticks(_logit(xt))
    ax.set_xticklabels([f"{v:g}" for v in xt])
    ax.set_yticks(_logit(yt))
    ax.set_yticklabels([f"{v:g}" for v in yt])
    ax.set_xlim(_logit(xlim[0]), _logit(xlim[1]))
    ax.set_ylim(_logit(ylim[0]), _logit(ylim[1]))
    ax.grid(True, color="#dddddd", linewidth=0.6)


def _limits(vals: Sequence[float], pad: float = 0.15) -> tuple[float, float]:
    v = np.asarray([x for x in vals if np.isfinite(x)], float)
    v = np.clip(v, 0.05, 99.95)
    if not len(v):
        return (1.0, 99.0)
    z = _logit(v)
    span = max(z.max() - z.min(), 0.5)
    lo, hi = z.min() - pad * span, z.max() + pad * span
    return (float(100 / (1 + np.exp(-lo))), float(100 / (1 + np.exp(-hi))))


def _error_bars(ax, points, small: bool) -> None:
    """Clopper–Pearson bars (:mod:`roz.report.intervals`, 99.5 % as in the testbed's plots) on
    both axes of every point with sample counts ``x_n`` / ``y_n``."""
    from roz.report.intervals import clopper_pearson

    for p in points:
        xlo, xhi = clopper_pearson(p["x"], p.get("x_n"))
        ylo, yhi = clopper_pearson(p["y"], p.get("y_n"))
        if not (np.isfinite(xlo) or np.isfinite(ylo)):
            continue
        zx, zy = float(_logit(p["x"])), float(_logit(p["y"]))
        xerr = [[zx - float(_logit(xlo))], [float(_logit(xhi)) - zx]] if np.isfinite(xlo) else None
        yerr = [[zy - float(_logit(ylo))], [float(_logit(yhi)) - zy]] if np.isfinite(ylo) else None
        ax.errorbar([zx], [zy], xerr=xerr, yerr=yerr, fmt="none", ecolor=role_color(p["role"]),
                    elinewidth=0.6 if small else 0.8, alpha=0.7, zorder=3.5)


def check_labels(labels: str) -> None:
    """A :class:`~roz.errors.RozError` unless ``labels`` is one of :data:`LABEL_CHOICES`."""
    if labels not in LABEL_CHOICES:
        from roz.errors import RozError

        raise RozError(f"unknown point labels {labels!r}", hint=f"use one of {', '.join(LABEL_CHOICES)}")


def _annotate(ax, points, labels: str) -> None:
    """Name the points: ``"run"`` the run's models (not the baseline), ``"all"`` every point, ``"none"``."""
    check_labels(labels)
    chosen = [] if labels == "none" else [p for p in points if labels == "all" or not p["baseline"]]
    for p in chosen[: None if labels == "all" else MAX_LABELS]:
        ax.annotate(safe_text(p["model"]), (float(_logit(p["x"])), float(_logit(p["y"]))), xytext=(4, 3),
                    textcoords="offset points", fontsize=6.5 if not p["baseline"] else 5.5, color="#222222", zorder=7)


def _panel(ax, points, fit=None, *, title="", xlabel="", ylabel="", labels="run", small=False):
    """Draw one shift panel. ``points``: list of dicts (model, role, x, y, baseline; optional
    x_n / y_n: sample counts, drawn as Clopper–Pearson bars); ``labels``: :func:`_annotate`."""
    xs = [p["x"] for p in points]
    ys = [p["y"] for p in points]
    xlim, ylim = _limits(xs), _limits(ys)
    _set_logit_axes(ax, xlim, ylim)
    zx = np.linspace(_logit(xlim[0]), _logit(xlim[1]), 120)
    ax.plot(zx, zx, ls="--", color="black", lw=0.9, label="y = x", zorder=2)
    if fit is not None:
        grid = 100 / (1 + np.exp(-zx))
        ax.plot(zx, _logit(fit.predict(grid)), color=ROLE_COLORS["standard"], lw=1.6, zorder=3,
                label=f"baseline fit (R²={fit.r2:.3f})")
        if fit.boot_slope is not None:
            blo, bhi = fit.band(grid)
            ax.fill_between(zx, _logit(blo), _logit(bhi), color=ROLE_COLORS["standard"], alpha=0.18, lw=0,
                            zorder=2, label=f"{fit.level:.0%} bootstrap band")
    ms = 10 if small else 18
    # baseline models first (one batch; small and translucent when from an external table) ...
    base = [p for p in points if p["baseline"]]
    if base:
        ext = all(p.get("external", False) for p in base)
        ax.scatter(_logit([p["x"] for p in base]), _logit([p["y"] for p in base]), s=ms if ext else ms * 2,
                   color=ROLE_COLORS["standard"], alpha=0.45 if ext else 0.75, lw=0, zorder=4,
                   label="baseline (standard)")
    # ... then the run's models on top, one batch per role, labelled by name
    rest = [p for p in points if not p["baseline"]]
    roles = sorted({p["role"] for p in rest}, key=lambda r: ROLE_ORDER.index(r) if r in ROLE_ORDER else 9)
    for role in roles:
        grp = [p for p in rest if p["role"] == role]
        ax.scatter(_logit([p["x"] for p in grp]), _logit([p["y"] for p in grp]), s=ms * 2.6, color=role_color(role),
                   edgecolor="black", lw=0.5, zorder=6, marker="o" if role != "zeroshot-auto" else "D",
                   label=ROLE_LABELS.get(role, "other"))
    _error_bars(ax, points, small)
    _annotate(ax, points, labels)
    ax.set_title(safe_text(title), fontsize=9 if small else 11)
    ax.set_xlabel(safe_text(xlabel), fontsize=8 if small else 9)
    ax.set_ylabel(safe_text(ylabel), fontsize=8 if small else 9)
    ax.tick_params(labelsize=7 if small else 8)


def points_for(per_shift, shift: str, baseline_table=None, fit=None, counts=None) -> list[dict]:
    """Points of one shift: the baseline models (when drawn from another table) + the run's models;
    ``counts``: ``(model, key) -> samples`` (:func:`roz.report.intervals.sample_counts`) gives the
    run's points ``x_n`` / ``y_n`` (their Clopper–Pearson bars)."""
    counts = counts or {}
    pts = []
    if fit is not None and baseline_table is not None:
        for m in fit.models:
            pts.append({"model": m, "role": "standard", "x": baseline_table.value(m, fit.x_key),
                        "y": baseline_table.value(m, fit.y_key), "baseline": True, "external": True})
    df = per_shift[per_shift["shift"] == shift]
    for r in df.itertuples(index=False):
        pts.append({"model": r.model, "role": r.role, "x": r.acc_ref, "y": r.acc_shift,
                    "baseline": bool(r.baseline_member) and r.role == "standard" and baseline_table is None,
                    "x_n": counts.get((r.model, r.x_key)), "y_n": counts.get((r.model, r.y_key))})
    return pts


def shift_figure(points, fit=None, *, title="", xlabel="", ylabel="", labels="run"):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    _panel(ax, points, fit, title=title, xlabel=xlabel, ylabel=ylabel, labels=labels)
    h, lab = ax.get_legend_handles_labels()
    fig.legend(h, lab, loc="lower center", ncol=3, fontsize=7, frameon=False)
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.22, top=0.94)
    return fig


def _shared(labels: Sequence[str]) -> str | None:
    """The one label every panel has, or None when they differ."""
    return labels[0] if labels and len(set(labels)) == 1 and labels[0] else None


def grid_figure(panels: Sequence[dict], ncols: int = 3, labels: str = "none"):
    """``panels``: dicts with points, fit, title, xlabel, ylabel. An axis label every panel shares
    is drawn once for the figure, not on every panel; the y label (the shift's accuracy) is said
    once and each panel's title names its shift (and its metric when not top-1)."""
    plt = _plt()
    n = max(1, len(panels))
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    height = 3.3 * nrows + 0.7
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, height), squeeze=False)
    xshared = _shared([p.get("xlabel", "") for p in panels])
    for ax, p in zip(axes.flat, panels):
        title = p.get("title", "")
        metric = p.get("ylabel", "").removeprefix(title).replace("(%)", "").strip()
        if metric and metric != "top1" and p.get("ylabel", "").startswith(title):
            title = f"{title} ({metric})"
        _panel(ax, p["points"], p.get("fit"), title=title, xlabel="" if xshared else p.get("xlabel", ""),
               ylabel="", labels=labels, small=True)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if xshared:
        fig.supxlabel(safe_text(xshared), fontsize=9, y=0.75 / height)
    fig.supylabel("accuracy under the shift (%)", fontsize=9)
    handles = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in handles and not lab.startswith("baseline fit"):
                handles[lab] = h
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(6, len(handles)), fontsize=8,
               frameon=False)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=1.3 / height, top=1 - 0.3 / height, wspace=0.28, hspace=0.38)
    return fig


def _bar_colors(models, roles):
    return [role_color(roles.get(m, "other")) for m in models]


def corruption_figure(summary, per_corruption, roles: Mapping[str, str], metric_label: str = "mean corruption error"):
    """``summary``: Series model -> (m)CE; ``per_corruption``: DataFrame model x corruption error."""
    plt = _plt()
    models = list(summary.index)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1, 2.4]})
    a1.barh(range(len(models)), summary.values, color=_bar_colors(models, roles))
    a1.set_yticks(range(len(models)))
    a1.set_yticklabels([safe_text(m) for m in models], fontsize=7)
    a1.invert_yaxis()
    a1.set_xlabel(safe_text(metric_label + " (%, lower is better)"), fontsize=8)
    a1.set_title("Corruptions: summary", fontsize=10)
    cors = list(per_corruption.columns)
    k = len(models)
    width = 0.8 / max(k, 1)
    for i, m in enumerate(models):
        a2.bar(np.arange(len(cors)) + (i - (k - 1) / 2) * width, per_corruption.loc[m].values, width,
               color=role_color(roles.get(m, "other")), alpha=0.35 + 0.65 * (i + 1) / k, label=safe_text(m))
    a2.set_xticks(range(len(cors)))
    a2.set_xticklabels([safe_text(c) for c in cors], rotation=45, ha="right", fontsize=7)
    a2.set_ylabel("error (%), mean over severities", fontsize=8)
    a2.set_title("Per-corruption error", fontsize=10)
    if k <= 12:
        a2.legend(fontsize=6, ncol=2, frameon=False)
    fig.subplots_adjust(left=0.14, right=0.99, bottom=0.25, top=0.92, wspace=0.15)
    return fig


def attack_figure(curves, roles: Mapping[str, str]):
    """``curves``: DataFrame with attack, model, eps, robust_acc (eps in pixel units [0, 1]).

    A curve with a single point (one eps, no clean accuracy) is drawn as a marker; the eps axis
    always starts at 0 and ends past the largest eps. The axis labels, the same for every panel,
    are drawn once."""
    plt = _plt()
    attacks = list(dict.fromkeys(curves["attack"]))
    n = max(1, len(attacks))
    ncols = min(3, n)
    nrows = int(np.ceil(n / ncols))
    width, height = 4.4 * ncols, 3.4 * nrows + 0.4
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    styles = ("-", "--", ":", "-.")
    markers = ("o", "s", "^", "v", "D", "P", "X")
    for ax, a in zip(axes.flat, attacks):
        d = curves[curves["attack"] == a]
        for i, m in enumerate(dict.fromkeys(d["model"])):
            dm = d[d["model"] == m].sort_values("eps")
            ax.plot(dm["eps"] * 255.0, dm["robust_acc"], marker=markers[i % len(markers)],
                    ms=3.5 if len(dm) > 1 else 6, lw=1.2, ls=styles[i % len(styles)],
                    color=role_color(roles.get(m, "other")), label=safe_text(m))
        top = float(d["eps"].max()) * 255.0 if len(d) else 1.0
        ax.set_xlim(-0.05 * max(top, 1e-9), 1.08 * top if top > 0 else 1.0)
        ax.set_title(safe_text(a), fontsize=10)
        ax.set_ylim(-2, 102)
        ax.grid(True, color="#dddddd", lw=0.6)
        if d["model"].nunique() <= 10:
            ax.legend(fontsize=6, frameon=False)
    for ax in list(axes.flat)[len(attacks):]:
        ax.axis("off")
    fig.supxlabel("eps (x/255, L-inf)", fontsize=9)
    fig.supylabel("robust accuracy (%)", fontsize=9)
    fig.subplots_adjust(left=0.85 / width, right=1 - 0.15 / width, bottom=0.75 / height, top=1 - 0.3 / height,
                        wspace=0.3, hspace=0.45)
    return fig


TYPOGRAPHIC_BARS = (("clean", "clean accuracy", "#bbbbbb"), ("attacked", "accuracy under the attack", None))


def typographic_figure(table, roles: Mapping[str, str]):
    """``table``: indexed by model, columns ``clean`` (accuracy without the written words; NaN when
    the run has no clean unit, e.g. a dataset of real typographic photos), ``attacked`` (accuracy
    with them) and ``success`` (attack success rate), percent. Left: clean vs attacked accuracy,
    two bars per model; right: the success rate."""
    plt = _plt()
    models = list(table.index)
    y = np.arange(len(models))
    has_success = "success" in table.columns and bool(table["success"].notna().any())
    ncols = 2 if has_success else 1
    fig, axes = plt.subplots(1, ncols, figsize=(4.6 * ncols, 0.42 * len(models) + 1.8), squeeze=False)  # height below
    ax = axes[0][0]
    for j, (col, label, color) in enumerate(TYPOGRAPHIC_BARS):
        vals = table[col].to_numpy(float) if col in table.columns else np.full(len(models), np.nan)
        ax.barh(y + (j - 0.5) * 0.4, np.nan_to_num(vals), 0.4, label=label,
                color=color or _bar_colors(models, roles), edgecolor="black", lw=0.3)
    ax.set_yticks(y)
    ax.set_yticklabels([safe_text(m) for m in models], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("top-1 accuracy (%)", fontsize=8)
    ax.set_title("Clean vs typographic attack", fontsize=10)
    ax.legend(fontsize=6, frameon=False, loc="lower right")
    if has_success:
        ax2 = axes[0][1]
        ax2.barh(y, np.nan_to_num(table["success"].to_numpy(float)), color=_bar_colors(models, roles))
        ax2.set_yticks(y)
        ax2.set_yticklabels([])
        ax2.invert_yaxis()
        ax2.set_xlim(0, 100)
        ax2.set_xlabel("predicts the written word (%)", fontsize=8)
        ax2.set_title("Attack success rate", fontsize=10)
    height = 0.42 * len(models) + 1.8
    fig.subplots_adjust(left=0.25 if ncols == 1 else 0.14, right=0.98, bottom=0.75 / height, top=1 - 0.45 / height,
                        wspace=0.08)
    return fig


def save(fig, stem: Path, formats: Sequence[str] = ("png", "svg"), dpi: int = 100) -> tuple[dict[str, Path], bytes]:
    """Write ``stem.<fmt>`` for each format; returns (paths, PNG bytes for inlining)."""
    plt = _plt()
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = {}
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    png = buf.getvalue()
    if "png" in formats:
        (stem.with_suffix(".png")).write_bytes(png)
        paths["png"] = stem.with_suffix(".png")
    if "svg" in formats:
        fig.savefig(stem.with_suffix(".svg"), format="svg", metadata={"Date": None, "Creator": None})
        paths["svg"] = stem.with_suffix(".svg")
    plt.close(fig)
    return paths, png
