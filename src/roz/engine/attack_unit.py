"""Attack units: a white-box, transfer or score-based attack on one model × dataset.

The attacked module is the model *with the dataset's label map* (``MappedModel``), so attacks see
logits over exactly the labels being scored (masks and merges included) and act on pixels in
[0, 1] after the model's resize/crop — no gradient passes through non-differentiable
preprocessing.
"""

from __future__ import annotations

import pyarrow as pa
import torch

from roz.attacks.defaults import DEFAULT_EPS_GRID, DEFAULT_SURROGATE
from roz.engine.evaluate import make_loader, positions_for
from roz.engine.labelspace import LabelMap, MappedModel
from roz.errors import RozError


def run_attack_unit(model, ds, label_map: LabelMap, unit, opts):
    """Returns (per-sample table, metrics, protocol)."""
    from roz.attacks.evaluate import evaluate_attack

    params = dict(unit.attack_dict() or {})
    name = params.pop("name")
    eps = params.pop("eps", DEFAULT_EPS_GRID)
    eps = tuple(float(e) for e in (eps if isinstance(eps, (list, tuple)) else [eps]))
    min_eps = bool(params.pop("min_eps", False))
    surrogate_spec = params.pop("surrogate", None)
    device = torch.device(opts.device)
    ds.transform = model.transform()
    target = MappedModel(model.to(device).eval(), label_map.to(device)).eval()
    surrogate = None
    if name.startswith("transfer"):
        from roz.models.adapters import create_model

        if "label_map" in params:
            raise RozError(f"attack {name}: label_map is not a run option",
                           hint="roz run maps the surrogate to the dataset's labels by WordNet IDs itself")
        surrogate_spec = surrogate_spec or DEFAULT_SURROGATE  # the paper's (needs its weights)
        s = create_model(surrogate_spec, device=device)
        surrogate = MappedModel(s, LabelMap(s.wnids, ds.labels, what=f"surrogate {surrogate_spec}").to(device)).eval()
        params["label_map"] = "identity"  # both sides are mapped to the dataset's labels above
    positions = positions_for(len(ds), unit.shard, unit.limit)

    def batches():
        for x, y, idx, ok in make_loader(ds, positions, opts.batch_size, opts.workers, device):
            if not bool(ok.all()):
                raise RozError(f"{ds.name}: unreadable images in an attack unit",
                               hint="attacks run on readable images only; fix or remove them")
            yield x.to(device), y.to(device), idx

    rows, metrics = evaluate_attack(target, batches(), name, eps_grid=eps, params=params, surrogate=surrogate,
                                    min_eps=min_eps, seed=unit.seed)
    protocol = dict(metrics.pop("protocol", {}) or {})
    protocol.update({"name": name, "eps": list(eps), "surrogate": surrogate_spec, "min_eps": min_eps})
    for r in rows:
        r["path"] = ds.samples[r["index"]][0]
    flat = {k: (100.0 * v if isinstance(v, float) and (k.startswith(("robust_acc", "success_rate", "clean_top1"))) else v)
            for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return pa.Table.from_pylist(rows), flat, protocol
