"""Tidy tables from unit records: the one place records become the inputs of :mod:`roz.metrics`.

The metrics package sits below the engine and takes plain tables (pandas) and mappings, never
unit records; these functions do the extraction. :class:`~roz.engine.store.ResultStore` exposes
them on its own records (``metrics_table``, ``natural_table``, ``perturbation_table``,
``accuracy_table``); the report calls them on the records it read once.

:func:`accuracy_table` also turns what a run measures on a reference dataset ``D`` into shift
axes against ``D``'s clean top-1 (:func:`shift_axis_columns`; percent, dataset keys
``<D>~<axis>``, their shifts :func:`roz.metrics.shift_sets.derived_shift`):

* ``D~corruption-mean``: corruption units on ``D`` (shift ``corruption``), the mean top-1 over
  every (corruption, severity) cell the run has on ``D``; ``D~corruption-<name>``: the mean over
  the run's severities of that corruption; ``D~severity-<s>``: the mean over the run's
  corruptions at that severity (only when the run has several severities on ``D``: with one it
  would repeat the corruption mean). A model lacking any cell that the mean covers for another model
  gets NaN (no mean over fewer cells); the cells averaged are recorded in ``derived``.
* ``D~typographic``: typographic units on ``D`` (``D~typographic#<i>``, i = 1.., in the order
  of the settings' labels, when the run holds several typographic settings on ``D``).
* ``D~<attack>@<eps>``: attack units on ``D``, the metric ``robust_acc@<eps>`` (percent).
* ``D~flip-mean`` and ``D~flip-<perturbation>`` (metric ``1-fr``, :data:`~roz.metrics.shift_sets.
  FLIP_METRIC`): ImageNet-P units (kind ``perturbation``) generated on the fly on ``D``, as
  ``100 * (1 - flip_prob)`` -- the percent of compared frame pairs whose top-1 does *not* flip, so
  that, like an accuracy, higher is better and it lives in [0, 100] for the logit axes. ``flip-<p>``
  averages the run's difficulties of ``p``; ``flip-mean`` every (perturbation, difficulty) cell the
  run has (1 - the un-normalised mean flip rate), with the same completeness rule as the
  corruption means. Released ImageNet-P videos (dataset ``imagenet-p``) are frames of ImageNet
  val images, so their axes are ``imagenet-val~flip-...`` against ImageNet val's clean top-1.

Several units for one cell: the last one (unit-id order) wins, as for natural accuracies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from roz.engine.record import UnitRecord
from roz.metrics.effective import AccuracyTable, accuracy_table_from_rows, key
from roz.metrics.shift_sets import AXIS_SEP, FLIP_METRIC

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


def _complete_means(cells: Mapping[str, Mapping[tuple, float]], group, what: str = "corruption") -> tuple[dict, dict]:
    """Per model, the mean over each group of the (corruption, severity) cells the run has; NaN
    (absent) when the model lacks a cell another model has. ``group(cell) -> axis``; the cells
    averaged are listed as ``<what>:<name>:<level>``."""
    wanted: dict[str, set] = {}
    for per in cells.values():
        for c in per:
            wanted.setdefault(group(c), set()).add(c)
    out: dict[str, dict[str, float]] = {}
    for m, per in cells.items():
        for axis, need in wanted.items():
            if need <= per.keys():
                out.setdefault(m, {})[axis] = sum(per[c] for c in sorted(need)) / len(need)  # fixed order: bit-reproducible
    return out, {axis: [f"{what}:{c}:{s}" for c, s in sorted(need)] for axis, need in wanted.items()}


def _corruption_columns(records: Sequence[UnitRecord], cols: dict, derived: dict) -> None:
    cells: dict[str, dict[str, dict[tuple, float]]] = {}  # dataset -> model -> (corruption, severity) -> top1
    for u in records:
        sh = u.shift or {}
        if u.kind == "eval" and sh.get("name") == "corruption" and isinstance(u.metrics.get("top1"), (int, float)):
            cell = (str(sh.get("corruption")), int(sh.get("severity", 0) or 0))
            cells.setdefault(u.dataset.name, {}).setdefault(u.model.name, {})[cell] = float(u.metrics["top1"])
    groups = {"corruption-mean": lambda c: "corruption-mean", "corruption": lambda c: f"corruption-{c[0]}",
              "severity": lambda c: f"severity-{c[1]}"}
    for ds, per_model in cells.items():
        severities = {c[1] for per in per_model.values() for c in per}
        for name, group in groups.items():
            if name == "severity" and len(severities) == 1:
                continue  # one severity: its axis would be the corruption mean again
            means, covered = _complete_means(per_model, group)
            for m, vals in means.items():
                for axis, v in vals.items():
                    cols.setdefault(m, {})[key(f"{ds}{AXIS_SEP}{axis}")] = v
            derived.update({key(f"{ds}{AXIS_SEP}{axis}"): c for axis, c in covered.items()})


def _typographic_and_attack_columns(records: Sequence[UnitRecord], cols: dict, derived: dict) -> None:
    typo = [u for u in records if u.kind == "eval" and (u.shift or {}).get("name") == "typographic"
            and isinstance(u.metrics.get("top1"), (int, float))]
    settings: dict[str, list[str]] = {}
    for u in typo:
        settings.setdefault(u.dataset.name, [])
        if shift_label(u.shift) not in settings[u.dataset.name]:
            settings[u.dataset.name].append(shift_label(u.shift))
    for u in typo:
        labels = sorted(settings[u.dataset.name])
        axis = "typographic" if len(labels) == 1 else f"typographic#{labels.index(shift_label(u.shift)) + 1}"
        k = key(f"{u.dataset.name}{AXIS_SEP}{axis}")
        cols.setdefault(u.model.name, {})[k] = float(u.metrics["top1"])
        derived[k] = [shift_label(u.shift)]
    for u in records:
        if u.kind != "attack":
            continue
        for name, v in u.metrics.items():
            if name.startswith("robust_acc@") and isinstance(v, (int, float)) and not isinstance(v, bool):
                k = key(f"{u.dataset.name}{AXIS_SEP}{attack_label(u.attack)}@{name.removeprefix('robust_acc@')}")
                cols.setdefault(u.model.name, {})[k] = float(v)
                derived[k] = [f"{name} of attack units on {u.dataset.name}"]


#: The reference dataset of released ImageNet-P units (their videos are made from ImageNet val images).
RELEASED_P_REFERENCE = "imagenet-val"


def _flip_columns(records: Sequence[UnitRecord], cols: dict, derived: dict) -> None:
    """``<ref>~flip-mean`` / ``<ref>~flip-<p>`` columns (metric ``1-fr``): 100 * (1 - flip_prob)."""
    cells: dict[str, dict[str, dict[tuple, float]]] = {}  # reference -> model -> (perturbation, difficulty) -> %
    for u in records:
        fp = u.metrics.get("flip_prob")
        if u.kind != "perturbation" or not isinstance(fp, (int, float)) or isinstance(fp, bool) or math.isnan(fp):
            continue
        p, d = unit_perturbation(u)
        if p is None:
            continue
        ref = u.dataset.name if (u.shift or {}).get("name") == "perturbation" else RELEASED_P_REFERENCE
        cells.setdefault(ref, {}).setdefault(u.model.name, {})[(p, d)] = 100.0 * (1.0 - float(fp))
    groups = (lambda c: "flip-mean", lambda c: f"flip-{c[0]}")
    for ref, per_model in cells.items():
        for group in groups:
            means, covered = _complete_means(per_model, group, what="perturbation")
            for m, vals in means.items():
                for axis, v in vals.items():
                    cols.setdefault(m, {})[key(f"{ref}{AXIS_SEP}{axis}", FLIP_METRIC)] = v
            derived.update({key(f"{ref}{AXIS_SEP}{axis}", FLIP_METRIC): c for axis, c in covered.items()})


def shift_axis_columns(records: Sequence[UnitRecord]) -> tuple[dict[str, dict[str, float]], dict[str, str],
                                                               dict[str, list[str]]]:
    """The derived shift-axis accuracies of a run (module docstring): ``(model -> {column key:
    percent}, model -> role, column key -> the cells it is made from)``."""
    cols: dict[str, dict[str, float]] = {}
    derived: dict[str, list[str]] = {}
    _corruption_columns(records, cols, derived)
    _typographic_and_attack_columns(records, cols, derived)
    _flip_columns(records, cols, derived)
    roles = {u.model.name: u.model.role for u in records if u.model.name in cols}
    return cols, roles, derived


def accuracy_table(records: Sequence[UnitRecord], source: str = "") -> AccuracyTable:
    """The run's accuracies for effective robustness: natural-shift accuracies
    (:func:`natural_table`) and the derived shift axes (:func:`shift_axis_columns`) after them."""
    import pandas as pd

    table = accuracy_table_from_rows(natural_table(records), source=source)
    cols, roles, derived = shift_axis_columns(records)
    if not cols:
        return table
    extra = pd.DataFrame.from_dict(cols, orient="index").sort_index(axis=1)
    acc = table.acc.reindex(index=list(table.acc.index) + [m for m in extra.index if m not in table.acc.index])
    acc = pd.concat([acc, extra.reindex(acc.index)], axis=1)
    acc.index.name = "model"
    for m, r in roles.items():
        table.roles.setdefault(m, r or "standard")
    table.acc, table.derived = acc, {**table.derived, **derived}
    return table
