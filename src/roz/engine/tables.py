"""Tidy tables from unit records: the one place records become the inputs of :mod:`roz.metrics`.

The metrics package sits below the engine and takes plain tables (pandas) and mappings, never
unit records; these functions do the extraction. :class:`~roz.engine.store.ResultStore` exposes
them on its own records (``metrics_table``, ``natural_table``, ``perturbation_table``,
``accuracy_table``); the report calls them on the records it read once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from roz.engine.record import UnitRecord

IDENTITY_COLUMNS = ("unit_id", "model", "role", "dataset", "dataset_n")
PERTURBATION_COLUMNS = ("unit_id", "kind", "model", "role", "dataset", "perturbation", "difficulty", "n", "flip_prob",
                        "top5_dist")


def shift_label(d: Mapping | None) -> str:
    """``name(k=v,...)`` of a shift (scalar parameters, sorted; ``version`` left out); "" for none."""
    if not d:
        return ""
    name = d.get("name", "")
    rest = ",".join(f"{k}={v}" for k, v in sorted(d.items())
                    if k not in ("name", "version") and not isinstance(v, (Mapping, list, tuple)))
    return f"{name}({rest})" if rest else name


def attack_label(d: Mapping | None) -> str:
    if not d:
        return ""
    space = d.get("eps_space", "pixel")
    return d.get("name", "") + ("" if space == "pixel" else f"[{space}]")


def metrics_table(records: Sequence[UnitRecord], paper_order: bool = False):
    """One row per unit: identity columns + one column per numeric metric (pandas);
    ``paper_order``: datasets in the paper's order (then dataset, shift, attack, model)."""
    import pandas as pd

    rows, order = [], {}
    for u in records:
        order[u.dataset.name] = u.dataset.paper_order
        rows.append({
            "unit_id": u.unit_id, "kind": u.kind, "model": u.model.name, "role": u.model.role,
            "dataset": u.dataset.name, "shift": shift_label(u.shift), "attack": attack_label(u.attack),
            # booleans stay (as 0/1), as they always have in this table
            **{k: v for k, v in u.metrics.items() if isinstance(v, (int, float))},
        })
    df = pd.DataFrame(rows)
    if not paper_order or df.empty:
        return df
    df["_o"] = df["dataset"].map(order)
    return df.sort_values(["_o", "dataset", "shift", "attack", "model"]).drop(columns="_o").reset_index(drop=True)


def natural_table(records: Sequence[UnitRecord]):
    """Natural-shift accuracies: one row per eval unit without a synthetic shift, in record order
    (unit-id order from the store), columns ``unit_id, model, role, dataset, dataset_n`` (the
    dataset's size, ``None`` when unrecorded) + one column per numeric metric (NaN where a unit lacks it)."""
    import pandas as pd

    rows = [{**u.numeric_metrics(), "unit_id": u.unit_id, "model": u.model.name, "role": u.model.role,
             "dataset": u.dataset.name, "dataset_n": u.dataset.n} for u in records if u.is_natural_eval]
    return pd.DataFrame(rows, columns=None if rows else list(IDENTITY_COLUMNS))


def unit_perturbation(u: UnitRecord) -> tuple[str | None, int]:
    """(perturbation, difficulty) of a unit: on-the-fly shift, or released ImageNet-P."""
    for src in (u.shift or {}, u.protocol.get("sequence") or {}, u.dataset.protocol or {}):
        if src.get("perturbation"):
            return str(src["perturbation"]), int(src.get("difficulty", 1) or 1)
    return None, 1


def perturbation_table(records: Sequence[UnitRecord]):
    """ImageNet-P results: one row per unit with a ``flip_prob`` metric (the input of
    :func:`roz.metrics.perturbation.mfr_table`); ``perturbation`` is None where the unit names none."""
    import pandas as pd

    rows = []
    for u in records:
        m = u.metrics
        if "flip_prob" not in m:
            continue
        p, d = unit_perturbation(u)
        rows.append({"unit_id": u.unit_id, "kind": u.kind, "model": u.model.name, "role": u.model.role,
                     "dataset": u.dataset.name, "perturbation": p, "difficulty": d,
                     "n": float(m.get("n", 1) or 1), "flip_prob": float(m["flip_prob"]),
                     "top5_dist": float(m.get("top5_dist", math.nan))})
    return pd.DataFrame(rows, columns=list(PERTURBATION_COLUMNS))
