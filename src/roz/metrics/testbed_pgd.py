"""The ImageNet testbed's PGD columns and the ROZ attack units that match them.

The testbed (Taori et al. 2020, modestyachts/imagenet-testbed ``src/eval_settings/pgd_attack.py``)
ran cleverhans' ``projected_gradient_descent`` on ImageNet val with these settings, ε and step
size in [0, 1] pixel units (``pgd.linf.eps2`` has eps 0.007843137255 = 2/255; the L2 radii are
for 224 px images and the testbed scaled them by ``size / 224`` for other sizes):

=================  =====  ==========  =====  ===================
column             norm   ε           steps  step size
=================  =====  ==========  =====  ===================
pgd.linf.eps0.5    Linf   0.5/255     100    0.015/255 (0.03 ε)
pgd.linf.eps2      Linf   2/255       100    0.06/255 (0.03 ε)
pgd.l2.eps0.1      L2     0.1         100    0.01 (0.1 ε)
pgd.l2.eps0.5      L2     0.5         100    0.05 (0.1 ε)
=================  =====  ==========  =====  ===================

Untargeted, one random start (cleverhans' ``rand_init`` default), the last iterate. Two
differences remain with ROZ's PGD and are recorded by :func:`check_attack_unit`: cleverhans was
called without ``y``, so it attacked each model's own clean prediction rather than the true label,
and without ``clip_min``/``clip_max``, so adversarial images were not clipped to [0, 1] (ROZ's are).
ROZ has no L2 attack: the L2 columns have no ROZ counterpart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from roz.errors import RozError
from roz.metrics.shift_sets import ADVERSARIAL_SHIFTS

#: Differences every testbed PGD line keeps with ROZ's PGD (recorded with every match).
TESTBED_PGD_DIFFERENCES = (
    "testbed attacked each model's own clean prediction (cleverhans y=None); ROZ attacks the true label "
    "and attacks only clean-correct samples",
    "testbed did not clip adversarial images to [0, 1]; ROZ does",
)


@dataclass(frozen=True)
class PgdSetting:
    """One testbed PGD setting: ``norm``, ``eps`` and ``step_size`` in [0, 1] pixel units."""

    column: str
    shift: str
    norm: str
    eps: float
    steps: int = 100
    step_size: float = 0.0

    def roz_params(self) -> dict:
        """ROZ attack-unit parameters with the same norm, ε, steps and step size (L-inf only)."""
        if self.norm != "Linf":
            raise RozError(f"testbed column {self.column}: ROZ has no {self.norm} attack",
                           hint="ROZ's attacks are L-inf; compare L2 columns only with L2 results from elsewhere")
        return {"name": "pgd", "eps": [self.eps], "eps_space": "pixel", "steps": self.steps,
                "alpha_factor": round(self.step_size / self.eps, 12), "restarts": 1, "random_start": True,
                "early_stop": False, "loss": "ce"}


def _attack(column: str, shift: str, steps: int, step_size: float) -> PgdSetting:
    norm, eps = ADVERSARIAL_SHIFTS[shift]
    return PgdSetting(column, shift, norm, eps, steps, step_size)


#: Testbed column -> its setting (values from the testbed's ``pgd_attack_params``).
TESTBED_PGD: dict[str, PgdSetting] = {
    "pgd.linf.eps0.5": _attack("pgd.linf.eps0.5", "pgd-linf-0.5/255", 100, 5.88235294117647e-05),
    "pgd.linf.eps2": _attack("pgd.linf.eps2", "pgd-linf-2/255", 100, 0.0002352941176470588),
    "pgd.l2.eps0.1": _attack("pgd.l2.eps0.1", "pgd-l2-0.1", 100, 0.01),
    "pgd.l2.eps0.5": _attack("pgd.l2.eps0.5", "pgd-l2-0.5", 100, 0.05),
}


def pgd_setting(shift_or_column: str) -> PgdSetting:
    """The testbed setting of a shift name (``pgd-linf-2/255``) or testbed column (``pgd.linf.eps2``)."""
    for a in TESTBED_PGD.values():
        if shift_or_column in (a.shift, a.column):
            return a
    raise RozError(f"{shift_or_column!r} is not a testbed attack",
                   hint=f"known: {', '.join(a.shift for a in TESTBED_PGD.values())}")


def check_attack_unit(shift_or_column: str, attack: Mapping) -> tuple[str, list[str]]:
    """May a ROZ attack unit (its ``attack`` parameters) be placed on this testbed PGD line?

    Returns the unit's metric key holding its robust accuracy at the testbed's ε and the
    parameter differences that remain (steps, step size, label source, clipping). Raises
    :class:`RozError` when the norm, ε space or ε differ: such a point is not on this line.
    """
    from roz.attacks.base import eps_label  # here, not at the top: reading a baseline table needs no torch

    tb = pgd_setting(shift_or_column)
    norm = str(attack.get("norm", "Linf"))  # every ROZ attack is L-inf (Attack.params records it)
    if norm.lower() != tb.norm.lower():
        raise RozError(f"attack unit has norm {norm}, the testbed line {tb.shift} is {tb.norm}",
                       hint="compare a model only with the testbed line of its own norm")
    if attack.get("eps_space", "pixel") != "pixel":
        raise RozError(f"attack unit has eps_space={attack.get('eps_space')!r}; the testbed's ε are in [0, 1] pixels",
                       hint="run the attack with eps_space='pixel'")
    grid = attack.get("eps", [])
    grid = [float(e) for e in (grid if isinstance(grid, (list, tuple)) else [grid])]
    if not any(math.isclose(e, tb.eps, rel_tol=1e-6) for e in grid):
        raise RozError(f"attack unit ran at eps {[eps_label(e) for e in grid]}, the testbed line {tb.shift} is at "
                       f"eps {eps_label(tb.eps)}", hint=f"run the attack with eps={tb.eps!r} (see roz_params())")
    want = tb.roz_params()
    diffs = [f"{k}: unit {attack.get(k)!r}, testbed {want[k]!r}" for k in ("name", "steps", "alpha_factor")
             if attack.get(k) != want[k]]
    return f"robust_acc@{eps_label(tb.eps)}", diffs + list(TESTBED_PGD_DIFFERENCES)
