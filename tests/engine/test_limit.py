"""``limit=N``: a seeded, class-stratified random draw (not evenly spaced positions, which alias
with any structure repeating along the sample order)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

from roz import api
from roz.engine.positions import positions_for
from roz.engine.runner import RunOptions


class _Folder:
    """Samples sorted by class, as a folder loader gives them; ``style`` cycles every 3 files."""

    def __init__(self, per_class):
        self.samples = [(f"c{c}/img_{i:03d}.png", c) for c, n in enumerate(per_class) for i in range(n)]
        self.style = [int(p.split("_")[1][:3]) % 3 for p, _ in self.samples]

    def __len__(self):
        return len(self.samples)


def test_draw_does_not_alias_with_a_period_3_attribute():
    ds = _Folder([90, 90])
    for seed in range(5):
        pos = positions_for(ds, (0, 1), 30, seed=seed)
        assert len(pos) == 30 == len(set(pos)) and pos == sorted(pos)
        styles = Counter(ds.style[p] for p in pos)
        assert set(styles) == {0, 1, 2} and min(styles.values()) >= 5, (seed, styles)  # ~10 each
    # pooled over seeds, every style is drawn in proportion (1/3 each)
    pooled = Counter(ds.style[p] for seed in range(20) for p in positions_for(ds, (0, 1), 30, seed=seed))
    assert all(abs(v / 600 - 1 / 3) < 0.05 for v in pooled.values()), pooled


def test_draw_is_stratified_per_class_and_deterministic():
    ds = _Folder([100, 50, 30])
    pos = positions_for(ds, (0, 1), 18, seed=3)
    assert Counter(ds.samples[p][1] for p in pos) == {0: 10, 1: 5, 2: 3}
    odd = positions_for(ds, (0, 1), 7, seed=3)  # 7 * (100, 50, 30) / 180 = 3.9, 1.9, 1.2 -> 4, 2, 1
    assert Counter(ds.samples[p][1] for p in odd) == {0: 4, 1: 2, 2: 1}
    assert positions_for(ds, (0, 1), 18, seed=3) == pos
    assert positions_for(ds, (0, 1), 18, seed=4) != pos
    assert positions_for(ds, (0, 1), 500, seed=3) == list(range(180))
    shard = positions_for(ds, (1, 2), 9, seed=3)  # drawn inside the shard only
    assert len(shard) == 9 and all(90 <= p < 180 for p in shard)


def test_limited_unit_records_its_draw(seqfx, tmp_path):
    (rec,) = api.evaluate(seqfx["model"], "imagefolder", seqfx["data"], out=tmp_path / "r", limit=4,
                          options=RunOptions(batch_size=4))
    from roz.engine.store import ResultStore

    df = ResultStore(tmp_path / "r").samples(rec.unit_id)
    assert sorted(df["target"]) == [0, 1, 2, 3]  # 4 classes x 2 images, limit 4: one of each class
    pos = rec.protocol["positions"]
    assert pos["n"] == 4 and pos["of"] == 8 and "stratified" in pos["limit_draw"]
    assert pos["sha256"] == hashlib.sha256(json.dumps(list(df["index"])).encode()).hexdigest()
    assert rec.protocol["limit"] == 4 and rec.metrics["n"] == 4
