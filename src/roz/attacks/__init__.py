"""Adversarial attacks behind the model contract (pixels in [0, 1] -> logits). See docs/attacks.md."""

from roz.attacks.base import Attack, eps_label
from roz.attacks.defaults import DEFAULT_EPS_GRID, DEFAULT_MIN_EPS_GRID, DEFAULT_SURROGATE
from roz.attacks.evaluate import BOUNDS, evaluate_attack
from roz.attacks.registry import ATTACKS, PAPER_ATTACKS, create_attack

__all__ = ["ATTACKS", "BOUNDS", "DEFAULT_EPS_GRID", "DEFAULT_MIN_EPS_GRID", "DEFAULT_SURROGATE", "PAPER_ATTACKS",
           "Attack", "create_attack", "eps_label", "evaluate_attack"]
