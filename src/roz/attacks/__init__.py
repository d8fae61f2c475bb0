"""Adversarial attacks behind the model contract (pixels in [0, 1] -> logits). See docs/attacks.md."""

from roz.attacks.base import Attack, eps_label
from roz.attacks.evaluate import DEFAULT_EPS_GRID, evaluate_attack
from roz.attacks.registry import ATTACKS, PAPER_ATTACKS, create_attack

__all__ = ["ATTACKS", "PAPER_ATTACKS", "Attack", "DEFAULT_EPS_GRID", "create_attack", "eps_label", "evaluate_attack"]
