"""The ``attack`` unit kind: a white-box, transfer or score-based attack on one model × dataset.

The attacked module is the model *with the dataset's label map* (``MappedModel``), so attacks see
logits over exactly the labels being scored (masks and merges included) and act on pixels in
[0, 1] after the model's resize/crop — no gradient passes through non-differentiable
preprocessing. Attacks are seeded per sample (seed + dataset index), so a unit computed in parts
(checkpointed through :class:`roz.engine.parts.PartLedger`, one loader per part) gives the rows
of an uninterrupted run; the metrics are computed once, over every row.
"""

from __future__ import annotations

import pyarrow as pa
import torch

from roz.attacks.defaults import DEFAULT_EPS_GRID, DEFAULT_SURROGATE
from roz.engine.batches import make_loader
from roz.engine.kinds import UnitContext, UnitResult
from roz.engine.labelspace import LabelMap, MappedModel
from roz.errors import RozError


def _surrogate(name: str, spec, ds, device):
    if not name.startswith("transfer"):
        return None, spec
    from roz.models.adapters import create_model

    spec = spec or DEFAULT_SURROGATE  # the paper's (needs its weights)
    s = create_model(spec, device=device)
    return MappedModel(s, LabelMap(s.wnids, ds.labels, what=f"surrogate {spec}").to(device)).eval(), spec


def run(ctx: UnitContext) -> UnitResult:
    from roz.attacks.evaluate import evaluate_attack

    unit, ds, opts = ctx.unit, ctx.ds, ctx.opts
    params = dict(unit.attack_dict() or {})
    name = params.pop("name")
    eps = params.pop("eps", DEFAULT_EPS_GRID)
    eps = tuple(float(e) for e in (eps if isinstance(eps, (list, tuple)) else [eps]))
    min_eps = bool(params.pop("min_eps", False))
    device = torch.device(opts.device)
    ds.transform = ctx.model.transform()
    target = MappedModel(ctx.model.to(device).eval(), ctx.label_map.to(device)).eval()
    if name.startswith("transfer") and "label_map" in params:
        raise RozError(f"attack {name}: label_map is not a run option",
                       hint="roz run maps the surrogate to the dataset's labels by WordNet IDs itself")
    surrogate, surrogate_spec = _surrogate(name, params.pop("surrogate", None), ds, device)
    if surrogate is not None:
        params["label_map"] = "identity"  # both sides are mapped to the dataset's labels in _surrogate

    def batches(part):
        for x, y, idx, ok in make_loader(ds, part, opts.batch_size, opts.workers, device):
            if not bool(ok.all()):
                raise RozError(f"{ds.name}: unreadable images in an attack unit",
                               hint="attacks run on readable images only; fix or remove them")
            yield x.to(device), y.to(device), idx

    def attack(batch_iter, prior=()):
        return evaluate_attack(target, batch_iter, name, eps_grid=eps, params=params, surrogate=surrogate,
                               min_eps=min_eps, seed=unit.seed, prior_rows=prior)

    ledger = ctx.ledger(opts.part_size)
    for part in ledger.remaining_parts():
        rows, _ = attack(batches(part))
        for r in rows:
            r["path"] = ds.stored_path(r["index"])
        ledger.add(rows)
    table = ledger.finish()
    _, metrics = attack(iter(()), prior=table.to_pylist())  # metrics over every row, reused parts included
    protocol = dict(metrics.pop("protocol", {}) or {})
    protocol.update({"name": name, "eps": list(eps), "surrogate": surrogate_spec, "min_eps": min_eps})
    flat = {k: (100.0 * v if isinstance(v, float) and (k.startswith(("robust_acc", "success_rate", "clean_top1"))) else v)
            for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return UnitResult(table if table.num_rows else pa.table({}), flat, attack=protocol)
