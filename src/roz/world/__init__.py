"""ROZ-Mini, the embedded miniature world (build, train, demo).

The layers below the world know nothing of ROZ-Mini; :func:`register` adds the world's names to
their registries: the ``roz-mini`` class set (:mod:`roz.datasets.classes`) and the ``roz-mini``
shift set of effective robustness (:mod:`roz.metrics.shift_sets`). The api, the cli and the demo
call it; calling it again is harmless.
"""

from __future__ import annotations


def register() -> None:
    """Register ROZ-Mini's class set and shift set into the lower layers' registries."""
    from roz.datasets.classes import register_class_set
    from roz.metrics.shift_sets import register_shift_set
    from roz.world.concepts import CLASS_SET_NAME, MINI_SHIFTS, roz_mini

    register_class_set(CLASS_SET_NAME, roz_mini)
    register_shift_set(CLASS_SET_NAME, MINI_SHIFTS)
