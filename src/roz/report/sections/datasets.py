"""Per-dataset details: every unit's metrics, one table per dataset; the shape bias of the units
on cue-conflict images (a dataset root with ``cueconflict.json``, as ROZ-Mini's mini-cueconflict)."""

from __future__ import annotations

import json
from pathlib import Path

from roz.errors import StoreError
from roz.report import html
from roz.report.sections.base import Section, notes_html

LEFT = ("model", "role", "kind", "shift", "attack", "unit_id")
CUE_CONFLICT_FILE = "cueconflict.json"  # {"label": "shape", "images": [{"file", "shape", "texture"}]}
SHAPE_BIAS_NOTE = ("Shape bias (Geirhos et al. 2019): among the cue-conflict images where the model predicts the "
                   "shape class or the texture class, the percentage predicting the shape; predictions of any other "
                   "class and images whose shape and texture agree are left out. Texture labels: the dataset's "
                   "cueconflict.json.")


def _cue_conflict_textures(root) -> dict[str, str] | None:
    """``{image file (relative to root): texture wnid}`` from ``root/cueconflict.json``; None without one."""
    if not root:
        return None
    path = Path(root) / CUE_CONFLICT_FILE
    try:
        meta = json.loads(path.read_text())
        return {str(im["file"]): str(im["texture"]) for im in meta["images"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no such file here (or not this format): not a cue-conflict set


def shape_bias_rows(units, samples) -> list[dict]:
    """One row per clean eval unit on a cue-conflict set: :func:`roz.metrics.shape_bias.shape_bias`
    of its per-sample predictions. The shape class is the image's label; its texture class the
    label whose folder (WordNet ID) the json names."""
    from roz.metrics.shape_bias import shape_bias

    rows = []
    for u in units:
        textures = _cue_conflict_textures(u.root) if u.kind == "eval" and not u.shift else None
        if not textures:
            continue
        try:
            df = samples(u.unit_id)
        except StoreError:
            continue
        if "ok" in df.columns:
            df = df[df["ok"].astype(bool)]
        folder_label = {str(p).split("/", 1)[0]: int(t) for p, t in zip(df["path"], df["target"])}
        tex = [folder_label.get(textures.get(str(p), ""), -1) for p in df["path"]]
        res = shape_bias(df["pred"].astype(int).tolist(), df["target"].astype(int).tolist(), tex)
        rows.append({"model": u.model, "role": u.role, "dataset": u.dataset, **res, "unit_id": u.unit_id})
    return rows


class Datasets(Section):
    sid = "datasets"
    title = "Per-dataset details"

    def collect(self, ctx):
        import pandas as pd

        rows = shape_bias_rows(ctx.units, ctx.store.samples)
        return {"metrics": ctx.metrics_table, "shape_bias": pd.DataFrame(rows) if rows else None}  # always present

    def write(self, data, ctx, files):
        files.table("metrics", data["metrics"])
        if data["shape_bias"] is not None:
            files.table("shape_bias", data["shape_bias"])

    def render(self, data, ctx, files):
        metrics, body = data["metrics"], []
        if data["shape_bias"] is not None:
            body += ["<h3>Cue conflict: shape bias</h3>",
                     html.table_html(data["shape_bias"], left=("model", "role", "dataset", "unit_id")),
                     notes_html([SHAPE_BIAS_NOTE]), f"<p>Download: {files.links('shape_bias')}</p>"]
        if len(metrics):
            for ds in sorted(metrics["dataset"].unique()):
                d = metrics[metrics["dataset"] == ds].dropna(axis=1, how="all")
                d = d.drop(columns=[c for c in ("dataset",) if c in d.columns])
                first = [c for c in ("model", "role", "kind", "shift", "attack") if c in d.columns]
                d = d[first + [c for c in d.columns if c not in first and c != "unit_id"] + ["unit_id"]]
                d = d.sort_values(["role", "model"], kind="stable")
                body += [f"<h3>{html.esc(ds)}</h3>", html.table_html(d, left=LEFT)]
        body.append(f"<p>All units: {files.links('metrics')}</p>")
        return "\n".join(body)

    def to_json(self, data, ctx):
        if data is None or data["shape_bias"] is None:
            return {}
        return {"shape_bias": data["shape_bias"].to_dict(orient="records")}
