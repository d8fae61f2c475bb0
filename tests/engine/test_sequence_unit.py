"""ImageNet-P through the engine: sequences generated on the fly and released videos."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import roz.api as api
from roz.engine.plan import plan_units
from roz.engine.runner import RunOptions
from roz.engine.store import ResultStore
from roz.errors import RozError
from roz.metrics.perturbation import mfr_table
from roz.shifts.perturbations import PERTURBATIONS
from roz.shifts.registry import create_shift, parse_shift

from support.videofixtures import write_video


def _hand_fp(seqs, noise: bool) -> float:
    per = []
    for ft in seqs:
        top1 = [f[0] for f in ft]
        ref = [top1[0]] * (len(top1) - 1) if noise else top1[:-1]
        per.append(np.mean([a != b for a, b in zip(ref, top1[1:])]))
    return float(np.mean(per))


def _eval(fx, out, shift, batch_size=64, part_size=2048, model=None, name=None):
    return api.evaluate(model or fx["model"], "imagefolder", fx["data"], out=out, shift=shift, name=name,
                        options=RunOptions(batch_size=batch_size, part_size=part_size))


def test_parse_perturbation_shift():
    d1 = parse_shift("perturbation:gaussian_noise")
    assert d1 == [{"name": "perturbation", "perturbation": "gaussian_noise", "difficulty": 1}]
    assert parse_shift("perturbation:perturbation=gaussian_noise,difficulty=1") == d1
    assert [d["perturbation"] for d in parse_shift("perturbation:all")] == list(PERTURBATIONS)
    assert [(d["perturbation"], d["difficulty"]) for d in parse_shift("perturbation:rotate,shot_noise:2")] == \
        [("rotate", 2), ("shot_noise", 2)]
    assert create_shift(d1[0]).params()["comparison"] == "first-frame"
    for bad in ("perturbation:fog", "perturbation:rotate:4", "perturbation:perturbation=rotate,sev=2"):
        with pytest.raises(RozError):
            parse_shift(bad)


@pytest.mark.parametrize("pert", ["gaussian_noise", "rotate"])
def test_on_the_fly_sequences(seqfx, tmp_path, pert):
    (rec,) = _eval(seqfx, tmp_path / "a", f"perturbation:{pert}", batch_size=31)
    assert rec.kind == "perturbation"
    assert rec.shift == {"name": "perturbation", "perturbation": pert, "difficulty": 1}
    seq = rec.protocol["sequence"]
    T = 31
    assert seq["n_frames"] == T and seq["perturbation"] == pert and seq["difficulty"] == 1
    assert seq["comparison"].startswith("first-frame" if pert == "gaussian_noise" else "consecutive")
    df = ResultStore(tmp_path / "a").samples(rec.unit_id)
    assert len(df) == 8 and df["ok"].all()
    seqs = [[list(map(int, f)) for f in ft] for ft in df["frame_top5"]]
    assert all(len(s) == T and all(len(f) == 4 for f in s) for s in seqs)  # 4 labels: top-"5" has 4
    assert (df["n_frames"] == T).all()
    assert list(df["pred"]) == [s[0][0] for s in seqs]
    m = rec.metrics
    assert m["flip_prob"] == pytest.approx(_hand_fp(seqs, noise=pert == "gaussian_noise"))
    assert 0.0 <= m["flip_prob"] <= 1.0 and m["n"] == 8 and m["n_skipped"] == 0
    assert m["top1"] == pytest.approx(100.0 * float((df["pred"] == df["target"]).mean()))
    assert m["top5_dist"] >= 0
    if pert == "gaussian_noise":  # unquantised, frame 0 of a noise sequence is the clean image
        (clean,) = _eval(seqfx, tmp_path / "clean", None)
        cdf = ResultStore(tmp_path / "clean").samples(clean.unit_id)
        (raw,) = _eval(seqfx, tmp_path / "raw", "perturbation:perturbation=gaussian_noise,quantize=false")
        assert raw.shift["quantize"] is False and raw.unit_id != rec.unit_id
        rdf = ResultStore(tmp_path / "raw").samples(raw.unit_id)
        assert list(cdf["pred"]) == list(rdf["pred"]) and list(cdf["top5"].map(list)) == list(rdf["top5"].map(list))
    # deterministic: a second run, other batch sizes, several resumable parts
    (rec2,) = _eval(seqfx, tmp_path / "b", f"perturbation:{pert}", batch_size=200, part_size=62)
    df2 = ResultStore(tmp_path / "b").samples(rec2.unit_id)
    assert rec2.unit_id == rec.unit_id
    assert [[list(map(int, f)) for f in ft] for ft in df2["frame_top5"]] == seqs
    assert rec2.metrics["flip_prob"] == m["flip_prob"] and rec2.metrics["top5_dist"] == m["top5_dist"]


def test_released_videos_and_mfr(seqfx, tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "imagenet-p"
    for p in ("gaussian_noise", "rotate"):
        for c, w in enumerate(seqfx["wnids"][:2]):
            for k, T in enumerate((4, 5)):  # differing frame counts in one batch
                frames = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(T)]
                write_video(root / p / w / f"ILSVRC2012_val_{c * 2 + k:08d}.mp4", frames)
    recs = {}
    for model, name in ((seqfx["model"], "tiny-a"), (seqfx["model_b"], "tiny-b")):
        for p in ("gaussian_noise", "rotate"):
            (rec,) = api.evaluate(model, "imagenet-p", root, out=tmp_path / "run", name=name,
                                  dataset_options={"perturbation": p}, options=RunOptions(batch_size=64))
            recs[(name, p)] = rec
    rec = recs[("tiny-a", "rotate")]
    assert rec.kind == "perturbation" and rec.shift is None
    assert rec.protocol["sequence"]["source"].startswith("released")
    df = ResultStore(tmp_path / "run").samples(rec.unit_id)
    assert len(df) == 4 and sorted(df["n_frames"]) == [4, 4, 5, 5]
    seqs = [[list(map(int, f)) for f in ft] for ft in df["frame_top5"]]
    assert all(len(s) == t for s, t in zip(seqs, df["n_frames"]))
    assert rec.metrics["flip_prob"] == pytest.approx(_hand_fp(seqs, noise=False))
    nrec = recs[("tiny-a", "gaussian_noise")]
    ndf = ResultStore(tmp_path / "run").samples(nrec.unit_id)
    assert nrec.metrics["flip_prob"] == pytest.approx(
        _hand_fp([[list(map(int, f)) for f in ft] for ft in ndf["frame_top5"]], noise=True))
    # report-level mFR from the store's ImageNet-P table
    records = ResultStore(tmp_path / "run").perturbation_table()
    t = mfr_table(records)
    assert set(t["model"]) == {"tiny-a", "tiny-b"} and list(t.columns[:3]) == ["model", "FP/gaussian_noise", "FP/rotate"]
    row = t.set_index("model").loc["tiny-a"]
    fp = {p: recs[("tiny-a", p)].metrics["flip_prob"] for p in ("gaussian_noise", "rotate")}
    assert row["mFR"] == pytest.approx(100 * np.mean(list(fp.values())))
    assert row["FP/rotate"] == pytest.approx(100 * fp["rotate"])
    tb = mfr_table(records, baseline_model="tiny-b").set_index("model")
    bfp = {p: recs[("tiny-b", p)].metrics["flip_prob"] for p in fp}
    if all(bfp.values()):
        assert tb.loc["tiny-b", "mFR_norm"] == pytest.approx(100.0)
        assert tb.loc["tiny-a", "mFR_norm"] == pytest.approx(100 * np.mean([fp[p] / bfp[p] for p in fp]))
    with pytest.raises(ValueError):
        mfr_table(records, baseline_model="nope")


def test_mfr_table_from_records():
    from roz.engine.record import UnitRecord
    from roz.engine.tables import perturbation_table

    def rec(model, p, fp, t5, n=10, shift=True):
        base = {"unit_id": f"{model}-{p}", "model": {"name": model}, "dataset": {"name": "d"},
                "metrics": {"flip_prob": fp, "top5_dist": t5, "n": n}}
        if shift:
            return UnitRecord.from_json({**base, "shift": {"name": "perturbation", "perturbation": p, "difficulty": 1}})
        return UnitRecord.from_json({**base, "shift": None, "protocol": {"sequence": {"perturbation": p, "difficulty": 1}}})

    records = [rec("m", "rotate", 0.1, 1.0), rec("m", "snow", 0.3, 2.0, shift=False),
               rec("base", "rotate", 0.2, 2.0), rec("base", "snow", 0.3, 4.0),
               UnitRecord.from_json({"unit_id": "x", "model": {"name": "m"}, "dataset": {"name": "d"},
                                     "metrics": {"top1": 50.0}, "shift": None})]  # not ImageNet-P: ignored
    t = mfr_table(perturbation_table(records), baseline_model="base").set_index("model")
    assert t.loc["m", "mFR"] == pytest.approx(20.0) and t.loc["base", "mFR"] == pytest.approx(25.0)
    assert t.loc["m", "mFR_norm"] == pytest.approx(100 * (0.5 + 1.0) / 2)
    assert t.loc["m", "mT5D"] == pytest.approx(1.5) and t.loc["m", "mT5D_norm"] == pytest.approx(50.0)
    assert list(t.index) == ["m", "base"]  # sorted by mFR


def test_unit_kind_and_plan(tmp_path):
    cfg = {"models": ["timm:x"], "datasets": [{"name": "imagefolder", "root": str(tmp_path)},
                                               {"name": "imagenet-p", "root": str(tmp_path),
                                                "options": {"perturbation": "rotate"}}],
           "shifts": ["none", "perturbation:rotate", "corruption:fog:1"],
           "attacks": [{"name": "pgd"}]}
    units = plan_units(cfg)
    kinds = sorted((u.dataset.name, u.kind, (u.shift_dict() or {}).get("name", "")) for u in units)
    assert kinds == [("imagefolder", "attack", ""), ("imagefolder", "eval", ""), ("imagefolder", "eval", "corruption"),
                     ("imagefolder", "perturbation", "perturbation"), ("imagenet-p", "perturbation", "")]
    assert pd.Series([u.unit_id for u in units]).is_unique
