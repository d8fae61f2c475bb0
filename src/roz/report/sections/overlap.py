"""Data overlap: near-duplicates of each test set in the pretraining corpus, and every model
re-scored on the full set, the clean part and the overlap only (Radford et al. 2021, Sec. 5)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from roz.errors import RozError
from roz.report import html
from roz.report.sections.base import Section, ci_text

OVERLAP_FILE = "overlap.json"
INTRO = ("<p>Near-duplicates of each test set in the pretraining corpus, and every model re-scored on the full test "
         "set, the clean part (near-duplicates removed) and the overlap only (Radford et al. 2021, Sec. 5). "
         "full − clean is the accuracy change attributable to overlap; its interval is a paired bootstrap over test "
         "samples, the overlap-only interval is Clopper–Pearson.</p>")


def read_overlap(run_dir) -> tuple[object | None, str | None]:
    """The run's overlap summary (``{split: {"detection", "accuracy", "n_duplicates", "protocol"}}``,
    as the demo writes from :func:`roz.overlap.report.overlap_report`): ``(data, None)``;
    ``(None, None)`` when there is none, ``(None, why)`` when it cannot be read.

    Read through the store (``ResultStore.read_overlap``), like every run-directory artefact."""
    from roz.engine.store import ResultStore

    try:
        return ResultStore(run_dir, create=False).read_overlap(), None
    except RozError as e:
        return None, f"the overlap results could not be read ({e.what})"


def overlap_splits(data) -> tuple[list[dict] | None, str | None]:
    """The summary -> ``(splits, None)`` or ``(None, why)``. Each split: ``{"split",
    "n_duplicates", "detection" (dict or None), "protocol" (dict), "accuracy" (DataFrame, one row
    per model, ``roz.overlap.analysis.rescore`` columns)}``; entries that are not objects are skipped."""
    import pandas as pd

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
        det, prot, n_dup = v.get("detection"), v.get("protocol"), v.get("n_duplicates")
        out.append({"split": str(split), "accuracy": df, "detection": det if isinstance(det, Mapping) else None,
                    "protocol": prot if isinstance(prot, Mapping) else {},
                    "n_duplicates": n_dup if isinstance(n_dup, (int, float)) and not isinstance(n_dup, bool) else None})
    return out, None


def _load(run_dir) -> tuple[list[dict] | None, str | None]:
    data, why = read_overlap(run_dir)
    return (None, why) if data is None else overlap_splits(data)


def overlap_table(splits: Sequence[dict]):
    """All splits' per-model accuracy rows in one long DataFrame (``split`` first)."""
    import pandas as pd

    frames = [sp["accuracy"].assign(split=sp["split"]) for sp in splits if len(sp["accuracy"])]
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    return df[["split"] + [c for c in df.columns if c != "split"]]


class Overlap(Section):
    sid = "overlap"
    title = "Data overlap"

    def collect(self, ctx):
        return _load(ctx.root)[0] or None

    def write(self, splits, ctx, files):
        tab = overlap_table(splits)
        if len(tab):
            files.table("overlap", tab)

    def render(self, splits, ctx, files):
        body = [INTRO]
        for sp in splits:
            body += split_html(sp, ctx.roles)
        if "overlap" in files.written:
            body.append(f"<p>Download (all splits): {files.links('overlap')}</p>")
        return "\n".join(body)

    def absent(self, ctx):
        why = _load(ctx.root)[1]  # read again: cheap, and only when absent
        return html.absent((why + "; " if why else "") + "run the overlap analysis (roz.overlap.overlap_report) and "
                        "store its summary with ResultStore(run_dir).write_overlap(summary)")

    def to_json(self, splits, ctx):
        return {"overlap": {sp["split"]: {"n_duplicates": sp["n_duplicates"],
                                          **{k: (sp["detection"] or {}).get(k) for k in ("precision", "recall")}}
                            for sp in splits or []}}


def _num(d: Mapping, k):
    v = d.get(k)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _count_line(sp: dict) -> str:
    prot = sp["protocol"]
    n_test = _num(prot, "n_test")
    n_dup = sp["n_duplicates"] if sp["n_duplicates"] is not None else _num(prot, "n_overlap")
    line = "near-duplicates found: " + ("?" if n_dup is None else html.fmt(n_dup))
    if n_test:
        line += f" of {html.fmt(n_test)} test images"
        if n_dup is not None:
            line += f" ({100.0 * n_dup / n_test:.1f} %)"
    how = [f"{k} {html.fmt(prot[k])}" for k in ("method", "verify", "threshold") if k in prot]
    if "n_corpus" in prot:
        how.append(f"corpus of {html.fmt(prot['n_corpus'])} images")
    if how:
        line += " (" + ", ".join(how) + ")"
    return line


def _detection_html(det: Mapping) -> list[str]:
    p, r = _num(det, "precision"), _num(det, "recall")
    txt = (f"Against the planted ground truth: precision {html.fmt(p, 3)}, recall {html.fmt(r, 3)}"
           + "".join(f", {k} {html.fmt(det[k])}" for k in ("tp", "fp", "fn", "n_true") if _num(det, k) is not None)
           + ".")
    body = [f"<p>{html.esc(txt)}</p>"]
    for key, what in (("false_positive_files", "false positives"), ("missed_files", "missed duplicates")):
        files = det.get(key) or []
        if isinstance(files, list) and files:
            shown = files[:25]
            body.append(f"<details><summary>{html.esc(f'{len(files)} {what}')}</summary><ul>"
                        + "".join(f"<li><code>{html.esc(f)}</code></li>" for f in shown) + "</ul>"
                        + (f'<p class="muted">{len(files) - len(shown)} more in {html.esc(OVERLAP_FILE)}.</p>'
                           if len(files) > len(shown) else "") + "</details>")
    return body


def _get(row: Mapping, key: str):
    return row.get(key, float("nan"))


def _accuracy_html(acc, prot: Mapping, roles: Mapping[str, str]) -> str:
    import pandas as pd

    cp = 100 * float(prot.get("clopper_pearson_level", 0.995))
    rows = []
    for r in acc.to_dict(orient="records"):
        g = functools.partial(_get, r)
        rows.append({"model": r.get("model"), "role": roles.get(str(r.get("model")), ""),
                     "n full / clean / overlap": f"{html.fmt(g('n_full'))} / {html.fmt(g('n_clean'))} / "
                                                 f"{html.fmt(g('n_overlap'))}",
                     "acc full": g("acc_full"), "full CI": ci_text(g("acc_full_lo"), g("acc_full_hi")),
                     "acc clean": g("acc_clean"), "clean CI": ci_text(g("acc_clean_lo"), g("acc_clean_hi")),
                     "acc overlap": g("acc_overlap"),
                     f"overlap CP {cp:g}%": ci_text(g("acc_overlap_cp_lo"), g("acc_overlap_cp_hi")),
                     "full − clean": g("delta_full_minus_clean"),
                     "full − clean CI": ci_text(g("delta_full_minus_clean_lo"), g("delta_full_minus_clean_hi"), 2, True),
                     "p (binomial, overlap > clean)": g("p_overlap_gt_clean")})
    return html.table_html(pd.DataFrame(rows), left=("model", "role", "n full / clean / overlap"),
                        signed=lambda c: c == "full − clean")


def split_html(sp: dict, roles: Mapping[str, str]) -> list[str]:
    prot, det, acc = sp["protocol"], sp["detection"], sp["accuracy"]
    body = [f"<h3>{html.esc(sp['split'])}</h3>", f"<p>{html.esc(_count_line(sp))}.</p>"]
    if det:
        body += _detection_html(det)
    else:
        body.append('<p class="muted">No ground truth for this split: detection precision/recall not measured.</p>')
    if len(acc) and "model" in acc.columns:
        body.append(_accuracy_html(acc, prot, roles))
    else:
        body.append('<p class="muted">No per-model accuracy rows for this split.</p>')
    if prot:
        body.append("<details><summary>Detection protocol</summary>" + html.pre_json(prot) + "</details>")
    return body
