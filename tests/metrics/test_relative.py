"""Relative robustness: the paired bootstrap."""

import numpy as np
import pytest


def test_relative_robustness_without_bootstrap():
    """``roz report --bootstrap 0``: the paired difference with no interval, not a crash."""
    from roz.metrics.relative import paired_bootstrap

    r = paired_bootstrap([1, 1, 0, 1], [1, 0, 0, 0], n_boot=0)
    assert r["diff"] == pytest.approx(50.0) and np.isnan(r["lo"]) and np.isnan(r["hi"])
