"""Tests for roz.metrics.corruption (CE, mCE, relative mCE, unnormalised mean error)."""

from __future__ import annotations

import json
from importlib import resources

import pandas as pd
import pytest

from roz.errors import RozError
from roz.metrics import corruption as m


def table(fn) -> pd.DataFrame:
    rows = [{"corruption": c, "severity": s, "error": fn(c, s)}
            for c in m.BENCHMARK_CORRUPTIONS for s in m.SEVERITIES]
    return pd.DataFrame(rows)


def test_shipped_alexnet_file_matches_published_values():
    d = json.loads(resources.files("roz").joinpath("data/alexnet_imagenet_c_errors.json").read_text())
    assert "Hendrycks" in d["citation"] and "1903.12261" in d["citation"]
    assert set(d["errors"]) == set(m.BENCHMARK_CORRUPTIONS)
    assert d["errors"]["gaussian_noise"] == pytest.approx(0.886428)
    assert d["errors"]["brightness"] == pytest.approx(0.564592)
    assert d["errors"]["jpeg_compression"] == pytest.approx(0.6065)
    assert m.alexnet_clean_error() == pytest.approx(0.4345)


def test_mce_hand_computation():
    alex = m.alexnet_errors()
    # half of AlexNet's error everywhere, except gaussian_noise equal to AlexNet's (on average)
    t = table(lambda c, s: alex[c] * (1.0 if c == "gaussian_noise" else 0.5) + (s - 3) * 0.01)
    expected = (100.0 + 14 * 50.0) / 15
    assert m.mce(t) == pytest.approx(expected)
    ce = m.corruption_errors(t)
    assert ce.loc["gaussian_noise", m.CE] == pytest.approx(100.0)
    assert ce.loc["fog", m.CE] == pytest.approx(50.0)
    assert ce.loc["fog", m.ERROR] == pytest.approx(100 * 0.5 * alex["fog"])
    # unnormalised mean error: the mean of all 75 cells (the +-0.01 severity offsets cancel)
    hand = (alex["gaussian_noise"] + 0.5 * sum(v for k, v in alex.items() if k != "gaussian_noise")) / 15
    assert m.mean_corruption_error(t) == pytest.approx(100 * hand)


def test_top1_column_and_sum_vs_mean():
    t = pd.DataFrame([{"corruption": c, "severity": s, "top1": 0.25}
                      for c in m.BENCHMARK_CORRUPTIONS for s in m.SEVERITIES])
    alex = m.alexnet_errors()
    assert m.mce(t) == pytest.approx(sum(100 * 0.75 / alex[c] for c in alex) / 15)
    assert m.mean_corruption_error(t) == pytest.approx(75.0)


def test_relative_mce_hand_computation():
    alex, a_clean = m.alexnet_errors(), m.alexnet_clean_error()
    clean = 0.2
    t = table(lambda c, s: clean + 0.25 * (alex[c] - a_clean))
    assert m.relative_mce(t, clean) == pytest.approx(25.0)
    s = m.summary(t, clean_error=clean)
    assert s[m.REL_MCE] == pytest.approx(25.0)
    assert s[m.CLEAN_ERROR] == pytest.approx(20.0)
    assert s[m.MEAN_ACC] == pytest.approx(100 - s[m.MEAN_ERROR])
    assert list(s.index)[:2] == ["mCE (AlexNet-normalised, %)", "mean corruption error (unnormalised, %)"]


def test_extras_reported_without_ce_and_excluded_from_means():
    t = table(lambda c, s: 0.5)
    extra = pd.DataFrame([{"corruption": "spatter", "severity": s, "error": 0.9} for s in m.SEVERITIES])
    both = pd.concat([t, extra])
    ce = m.corruption_errors(both)
    assert pd.isna(ce.loc["spatter", m.CE]) and ce.loc["spatter", m.ERROR] == pytest.approx(90.0)
    assert m.mce(both) == pytest.approx(m.mce(t))
    assert m.mean_corruption_error(both) == pytest.approx(50.0)
    grid = m.error_table(both)
    assert grid.shape == (16, 6) and grid.iloc[0, 0] == pytest.approx(50.0)


def test_bad_tables_are_roz_errors():
    t = table(lambda c, s: 0.5)
    with pytest.raises(RozError, match="missing"):
        m.mce(t[t["corruption"] != "fog"])
    with pytest.raises(RozError, match="fractions"):
        m.mce(t.assign(error=50.0))
    with pytest.raises(RozError, match="unknown corruption"):
        m.mce(pd.concat([t, pd.DataFrame([{"corruption": "rain", "severity": 1, "error": 0.1}])]))
    with pytest.raises(RozError, match="duplicate"):
        m.mce(pd.concat([t, t.iloc[:1]]))
    with pytest.raises(RozError, match="out of range"):
        m.mce(t.assign(severity=t["severity"] + 1))
    with pytest.raises(RozError, match="neither"):
        m.mce(t.rename(columns={"error": "err"}))
    with pytest.raises(RozError, match="clean_error"):
        m.relative_mce(t, 43.0)


# -- run tables (many models, percent, any subset of corruptions and severities) -----------------

def run_rows() -> pd.DataFrame:
    """Two models, two corruptions; model b has severity 3 of fog on a second dataset only."""
    rows = [("a", "d1", "fog", 1, 20.0), ("a", "d1", "fog", 3, 40.0), ("a", "d1", "snow", 1, 10.0),
            ("b", "d1", "fog", 1, 30.0), ("b", "d2", "fog", 3, 90.0), ("b", "d1", "snow", 1, 25.0)]
    return pd.DataFrame(rows, columns=["model", "dataset", "corruption", "severity", "error"])


def test_model_errors_mean_over_rows():
    per = m.model_errors(run_rows())
    assert per.loc["a", "fog"] == pytest.approx(30.0) and per.loc["b", "fog"] == pytest.approx(60.0)
    assert per.loc["b", "snow"] == pytest.approx(25.0)


def test_normalised_ce_only_covered_corruptions():
    ce = m.normalised_ce(m.model_errors(run_rows()), {"fog": 0.6})
    assert list(ce.columns) == ["fog"]  # snow has no normaliser: no CE
    assert ce.loc["a", "fog"] == pytest.approx(50.0) and ce.loc["b", "fog"] == pytest.approx(100.0)


def test_relative_ce_uses_shared_cells_only():
    rel = m.relative_ce(run_rows(), "a")
    assert rel.loc["a"].tolist() == pytest.approx([100.0, 100.0])
    # fog: the only (dataset, severity) cell a and b share is (d1, 1): 30 / 20
    assert rel.loc["b", "fog"] == pytest.approx(150.0) and rel.loc["b", "snow"] == pytest.approx(250.0)


def test_model_summary_tables():
    s = m.model_summary(run_rows(), {"fog": 0.6, "snow": 0.5}, baseline_model="b")
    t = s["table"].set_index("model")
    assert list(t.index) == ["a", "b"]  # best first
    assert t.loc["a", m.MCE_GIVEN] == pytest.approx((50.0 + 20.0) / 2)
    assert t.loc["b", m.MEAN_ERROR] == pytest.approx((60.0 + 25.0) / 2)
    assert t.loc["a", "mean CE relative to b (%)"] == pytest.approx((100 * 20 / 30 + 100 * 10 / 25) / 2)
    assert t.loc["a", "corruptions"] == 2 and "mCE" in s["label"]
    plain = m.model_summary(run_rows())
    assert m.MCE_GIVEN not in plain["table"].columns and plain["ce"] is None and plain["relative_ce"] is None
    assert plain["table"].set_index("model").loc["a", m.MEAN_ERROR] == pytest.approx(20.0)
    with pytest.raises(RozError, match="no corruption units"):
        m.model_summary(run_rows(), baseline_model="c")


def test_load_normalizer(tmp_path):
    assert m.load_normalizer(None) is None
    assert m.load_normalizer("alexnet") == m.alexnet_errors()
    p = tmp_path / "norm.json"
    p.write_text(json.dumps({"errors": {"fog": 60.0, "snow": 0.5, "note": "x"}}))
    assert m.load_normalizer(p) == {"fog": pytest.approx(0.6), "snow": 0.5}  # > 1 read as percent
    assert m.load_normalizer({"fog": 0.25}) == {"fog": 0.25}
    with pytest.raises(RozError, match="not found") as e:
        m.load_normalizer(tmp_path / "missing.json")
    assert "alexnet" in e.value.hint
