"""Shape bias on cue-conflict images (Geirhos et al. 2019): the metric, and the report's number on
a real (tiny) run over a cue-conflict folder laid out as ROZ-Mini's mini-cueconflict."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from roz import api
from roz.engine.options import RunOptions
from roz.engine.store import ResultStore
from roz.metrics.shape_bias import shape_bias
from roz.report import build_report
from support import tinymodels


def test_shape_bias_counts_only_cue_decisions():
    # shape, texture, other class, shape, same-cue image (left out), unknown texture (left out)
    got = shape_bias([0, 1, 3, 2, 1, 0], [0, 0, 0, 2, 1, 0], [1, 1, 1, 3, 1, -1])
    assert got == {"shape_bias": pytest.approx(100 * 2 / 3), "shape_decisions": 2, "texture_decisions": 1,
                   "cue_decisions": 3, "n": 4, "n_same_cue": 1}
    assert math.isnan(shape_bias([3], [0], [1])["shape_bias"])
    with pytest.raises(ValueError):
        shape_bias([0], [0, 1], [1])


def test_report_gives_the_shape_bias_of_a_cue_conflict_run(fx, tmp_path):
    root = tinymodels.make_imagefolder(tmp_path / "cue", n=3, ext="png")
    wnids = tinymodels.WNIDS
    images = [{"file": f"{w}/img_{i:03d}.png", "shape": w, "texture": wnids[(k + 1 + i) % len(wnids)]}
              for k, w in enumerate(wnids) for i in range(3)]
    (root / "cueconflict.json").write_text(json.dumps({"label": "shape", "images": images}))
    api.evaluate(fx["timm"], "imagefolder", root, out=tmp_path / "run", label="mini-cueconflict",
                 options=RunOptions(batch_size=12))
    store = ResultStore(tmp_path / "run", create=False)
    (rec,) = store.records()
    rows = store.samples(rec.unit_id)
    texture = {im["file"]: wnids.index(im["texture"]) for im in images}
    shape_hits = int((rows["pred"] == rows["target"]).sum())
    texture_hits = int(sum(p == texture[f] for p, f in zip(rows["pred"], rows["path"])))
    out = build_report(tmp_path / "run", tmp_path / "report").parent
    table = pd.read_csv(out / "tables" / "shape_bias.csv")
    assert table.loc[0, "shape_decisions"] == shape_hits and table.loc[0, "texture_decisions"] == texture_hits
    assert shape_hits and texture_hits  # the tiny random model makes both kinds of decision: not vacuous
    assert table.loc[0, "shape_bias"] == pytest.approx(100 * shape_hits / (shape_hits + texture_hits))
    assert "Cue conflict: shape bias" in (out / "index.html").read_text()
    assert json.loads((out / "report.json").read_text())["shape_bias"][0]["n"] == 12
