"""Data overlap: near-duplicates of each test set in the pretraining corpus, and every model
re-scored on the full set, the clean part and the overlap only (Radford et al. 2021, Sec. 5)."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

from roz.errors import RozError
from roz.report import html
from roz.report.sections.base import Section, ci_text

OVERLAP_FILE = "overlap.json"
# overlap.json keys that are not test sets (format roz-overlap/2, written by roz.overlap.runs; the
# report may not import roz.overlap — a sibling layer — so the names are repeated here)
RESERVED = ("format", "protocol", "er", "gallery", "comparisons")
_DATA_URI = re.compile(r"data:image/(jpeg|png);base64,[A-Za-z0-9+/]+={0,2}")
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
        if not isinstance(v, Mapping) or split in RESERVED:
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


def _extras(run_dir) -> dict:
    """The ``roz-overlap/2`` parts beside the test sets: ``er`` rows, ``gallery``, ``comparisons``."""
    data, _ = read_overlap(run_dir)
    data = data if isinstance(data, Mapping) else {}
    er = data.get("er") if isinstance(data.get("er"), Mapping) else {}
    rows = er.get("rows") if isinstance(er.get("rows"), list) else []
    gal = data.get("gallery") if isinstance(data.get("gallery"), list) else []
    comp = data.get("comparisons") if isinstance(data.get("comparisons"), Mapping) else {}
    return {"er_rows": [r for r in rows if isinstance(r, Mapping)], "er_skipped": er.get("skipped") or {},
            "er_protocol": er.get("protocol") or {}, "gallery": [g for g in gal if isinstance(g, Mapping)],
            "comparisons": comp}


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
        splits = _load(ctx.root)[0]
        return SplitList(splits, **_extras(ctx.root)) if splits else None

    def write(self, splits, ctx, files):
        import pandas as pd

        tab = overlap_table(splits)
        if len(tab):
            files.table("overlap", tab)
        if splits.er_rows:
            files.table("overlap-er", pd.DataFrame(splits.er_rows))

    def render(self, splits, ctx, files):
        body = [INTRO]
        for sp in splits:
            body += split_html(sp, ctx.roles)
        if splits.comparisons:
            body.append(comparisons_html(splits.comparisons))
        if splits.er_rows or splits.er_skipped:
            body.append(er_html(splits.er_rows, splits.er_skipped, splits.er_protocol, ctx.roles))
        if splits.gallery:
            body.append(gallery_html(splits.gallery))
        if "overlap" in files.written:
            body.append(f"<p>Download (all splits): {files.links('overlap')}</p>")
        if "overlap-er" in files.written:
            body.append(f"<p>Download (ER full vs clean): {files.links('overlap-er')}</p>")
        return "\n".join(body)

    def absent(self, ctx):
        why = _load(ctx.root)[1]  # read again: cheap, and only when absent
        return html.absent((why + "; " if why else "") + "run the overlap analysis (roz.overlap.overlap_report) and "
                        "store its summary with ResultStore(run_dir).write_overlap(summary), or run "
                        "`roz overlap detect RUN_DIR --test ... --corpus ...`")

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


class SplitList(list):
    """The test sets (a list, as before) plus the ER rows, gallery and detector comparisons."""

    def __init__(self, splits, er_rows=(), er_skipped=None, er_protocol=None, gallery=(), comparisons=None):
        super().__init__(splits)
        self.er_rows, self.er_skipped, self.er_protocol = list(er_rows), dict(er_skipped or {}), dict(er_protocol or {})
        self.gallery, self.comparisons = list(gallery), dict(comparisons or {})


def er_html(rows, skipped: Mapping, protocol: Mapping, roles: Mapping[str, str]) -> str:
    """Effective robustness on the full and the clean test set, side by side, per shift and model."""
    import pandas as pd

    out = []
    for r in rows:
        g = functools.partial(_get, r)
        out.append({"shift": r.get("shift"), "model": r.get("model"), "role": roles.get(str(r.get("model")), r.get("role", "")),
                    "n full / clean": f"{html.fmt(g('n_full'))} / {html.fmt(g('n_clean'))}",
                    "ER full": g("er_full"), "full CI": ci_text(g("er_full_lo"), g("er_full_hi"), 2, True),
                    "ER clean": g("er_clean"), "clean CI": ci_text(g("er_clean_lo"), g("er_clean_hi"), 2, True),
                    "full − clean": g("er_full_minus_clean"),
                    "full − clean CI": ci_text(g("er_full_minus_clean_lo"), g("er_full_minus_clean_hi"), 2, True)})
    body = ["<h3>Effective robustness: full vs clean test sets</h3>",
            "<p>How much of each model's effective robustness survives de-duplication: ER (percentage points above "
            "the baseline fit) on the full test set and on its clean part, the baseline refitted on clean accuracies; "
            "intervals are a paired bootstrap over test samples.</p>"]
    if out:
        body.append(html.table_html(pd.DataFrame(out), left=("shift", "model", "role", "n full / clean"),
                                    signed=lambda c: c in ("ER full", "ER clean", "full − clean")))
    for split, why in skipped.items():
        body.append(f'<p class="muted">{html.esc(split)}: no clean ER ({html.esc(why)}).</p>')
    if protocol:
        body.append("<details><summary>ER protocol</summary>" + html.pre_json(protocol) + "</details>")
    return "\n".join(body)


def _img(uri) -> str:
    if isinstance(uri, str) and _DATA_URI.fullmatch(uri):
        return f'<img src="{uri}" alt="" width="96">'
    return '<span class="muted">(no image)</span>'


def gallery_html(items) -> str:
    """The top matched pairs: test image beside its corpus neighbour, with the similarity."""
    cells = []
    for g in items:
        sim = _num(g, "similarity")
        cells.append("<figure>" + _img(g.get("test_thumb")) + _img(g.get("corpus_thumb"))
                     + f"<figcaption>{html.esc(g.get('split'))} · similarity {html.fmt(sim, 3)}<br>"
                     f"<code>{html.esc(g.get('test_file'))}</code> ↔ <code>{html.esc(g.get('corpus_key'))}</code>"
                     + (f"<br>{html.esc(g.get('caption'))}" if g.get("caption") else "") + "</figcaption></figure>")
    return "<h3>Top matched pairs</h3>" + '<div class="gallery">' + "".join(cells) + "</div>"


def comparisons_html(comp: Mapping) -> str:
    rows = []
    for det, per in comp.items():
        for split, d in (per or {}).items() if isinstance(per, Mapping) else []:
            d = d if isinstance(d, Mapping) else {}
            rows.append(f"<tr><td>{html.esc(det)}</td><td>{html.esc(split)}</td><td>{html.fmt(_num(d, 'precision'), 3)}"
                        f"</td><td>{html.fmt(_num(d, 'recall'), 3)}</td><td>{html.fmt(_num(d, 'threshold'), 3)}</td></tr>")
    return ("<h3>Detectors compared (against the planted ground truth)</h3><table><thead><tr><th>detector</th>"
            "<th>test set</th><th>precision</th><th>recall</th><th>threshold</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")
