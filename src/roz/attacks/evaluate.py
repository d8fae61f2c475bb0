"""``evaluate_attack``: robust accuracy, success rate and minimal eps of one attack on one model.

Only clean-correct samples are attacked (a clean mistake is non-robust at every eps). Every
adversarial batch is checked to lie in [0, 1] and inside the eps ball before it is scored.
Model forwards here run in the caller's autocast context; attack internals always use fp32.

Minimal eps (``min_eps=True``): per clean-correct sample, binary search over ``min_eps_grid``
(attack at a per-sample eps, success -> go lower, failure -> go higher), assuming success is
monotone in eps; the result is the smallest grid value where the attack succeeded, ``inf``
if none (0 for clean mistakes). DeepFool gives its minimal perturbation directly.
``median_min_eps`` is the median over clean-correct samples (inf counts as larger than all).
"""

from __future__ import annotations

import math
import statistics
from typing import Iterable

import torch

from roz.attacks.base import Attack, eps_label
from roz.attacks.registry import canonical, create_attack
from roz.errors import RozError

DEFAULT_EPS_GRID = (1 / 255, 2 / 255, 4 / 255, 8 / 255)
DEFAULT_MIN_EPS_GRID = tuple(k / 255 for k in (0.25, 0.5, 1, 1.5, 2, 3, 4, 6, 8, 12, 16))


def _check_ball(atk: Attack, x, x_adv, eps) -> None:
    e = atk.eps_tensor(x, eps)
    d = (x_adv - x).abs()
    if x_adv.shape != x.shape or x_adv.min() < 0 or x_adv.max() > 1 or bool((d > e + 1e-5).any()):
        raise AssertionError(f"bug: attack {atk.name} left the eps ball or [0, 1]")


def _pred(model, x) -> torch.Tensor:
    with torch.no_grad():
        return model(x).argmax(1)


def _min_eps_search(atk: Attack, model, x, y, idx, grid) -> torch.Tensor:
    n = len(grid)
    B = x.shape[0]
    lo = torch.full((B,), -1, dtype=torch.long)
    hi = torch.full((B,), n, dtype=torch.long)
    g = torch.tensor(grid, dtype=torch.float64)
    queries = torch.zeros(B, dtype=torch.int64)
    while True:
        todo = (hi - lo > 1).nonzero()[:, 0]
        if todo.numel() == 0:
            break
        mid = (lo[todo] + hi[todo]) // 2
        d = todo.to(x.device)
        x_adv = atk.perturb(x[d], y[d], idx[todo], eps=g[mid])
        _check_ball(atk, x[d], x_adv, g[mid])
        queries[todo] += atk.last_queries
        ok = (_pred(model, x_adv) != y[d]).cpu()
        hi[todo[ok]] = mid[ok]
        lo[todo[~ok]] = mid[~ok]
    out = torch.full((B,), math.inf, dtype=torch.float64)
    found = hi < n
    out[found] = g[hi[found]]
    return out, queries


def evaluate_attack(model: torch.nn.Module, batches: Iterable, attack: str,
                    eps_grid=DEFAULT_EPS_GRID, params: dict | None = None,
                    surrogate: torch.nn.Module | None = None, min_eps: bool = False,
                    seed: int = 0, prior_rows: Iterable[dict] = ()) -> tuple[list[dict], dict]:
    """Run ``attack`` on ``model`` over ``batches`` of (x, y, idx); returns (rows, metrics).

    ``params`` are the attack's parameters, plus ``eps_space`` ('pixel' | 'normalized') and
    ``min_eps_grid`` (grid for the minimal-eps search). Rows hold index, target, clean_pred,
    clean_correct, adv_pred@<eps>, robust@<eps>, queries@<eps>, queries (total), min_eps.
    ``prior_rows``: rows of earlier batches of the same attack (a resumed unit); they are returned
    first and count in the metrics.
    """
    params = dict(params or {})
    eps_space = params.pop("eps_space", "pixel")
    grid_min = tuple(float(v) for v in params.pop("min_eps_grid", DEFAULT_MIN_EPS_GRID))
    for k in ("eps", "seed"):
        if k in params:
            raise RozError(f"evaluate_attack: '{k}' is not an attack parameter here",
                           hint="use eps_grid=... and seed=... arguments")
    eps_grid = tuple(float(e) for e in eps_grid)
    if not eps_grid or any(e < 0 for e in eps_grid):
        raise RozError(f"evaluate_attack: bad eps grid {eps_grid}", hint="give eps values >= 0, e.g. (1/255, 8/255)")
    if min_eps and (not grid_min or list(grid_min) != sorted(grid_min)):
        raise RozError(f"evaluate_attack: min_eps_grid must be non-empty and increasing, got {grid_min}")
    name = canonical(attack)
    kw = dict(eps_space=eps_space, seed=seed, **params)
    if name.startswith("transfer-") and surrogate is None:
        from roz.attacks.transfer import default_surrogate

        surrogate = default_surrogate(next(iter(model.parameters()), torch.empty(0)).device)
    if surrogate is not None:
        kw["surrogate"] = surrogate
    atks = {e: create_attack(name, model, eps=e, **kw) for e in eps_grid}
    first = atks[eps_grid[0]]
    labels = [eps_label(e) for e in eps_grid]
    rows: list[dict] = [dict(r) for r in prior_rows]
    for x, y, idx in batches:
        x = torch.as_tensor(x).float()
        y = torch.as_tensor(y).long().to(x.device)
        idx = torch.as_tensor(idx).long().cpu()
        B = x.shape[0]
        clean = _pred(model, x)
        correct = (clean == y).cpu()
        c = correct.nonzero()[:, 0]
        cd = c.to(x.device)
        batch_rows = [{"index": int(idx[i]), "target": int(y[i]), "clean_pred": int(clean[i]),
                       "clean_correct": bool(correct[i]), "queries": 0} for i in range(B)]
        df = None
        if first.minimal and c.numel():
            x_df, norms = first.minimal_perturb(x[cd], y[cd], idx[c])
            df_pred = _pred(model, x_df).cpu()
            df_q = first.last_queries.clone()
        for e, lab in zip(eps_grid, labels):
            atk = atks[e]
            adv_pred = clean.cpu().clone()
            q = torch.zeros(B, dtype=torch.int64)
            if c.numel():
                if first.minimal:
                    within = norms <= e + 1e-9
                    adv_pred[c] = torch.where(within, df_pred, clean.cpu()[c])
                    q[c] = df_q if e == eps_grid[0] else 0
                else:
                    x_adv = atk.perturb(x[cd], y[cd], idx[c])
                    _check_ball(atk, x[cd], x_adv, None)
                    adv_pred[c] = _pred(model, x_adv).cpu()
                    q[c] = atk.last_queries
            for i in range(B):
                r = batch_rows[i]
                r[f"adv_pred@{lab}"] = int(adv_pred[i])
                r[f"robust@{lab}"] = bool(correct[i]) and int(adv_pred[i]) == int(y[i])
                r[f"queries@{lab}"] = int(q[i])
                r["queries"] += int(q[i])
        if min_eps:
            me = torch.zeros(B, dtype=torch.float64)
            if c.numel():
                if first.minimal:
                    me[c] = norms
                else:
                    atk = create_attack(name, model, eps=grid_min[-1], **kw)
                    me[c], qm = _min_eps_search(atk, model, x[cd], y[cd], idx[c], grid_min)
                    for j, i in enumerate(c.tolist()):
                        batch_rows[i]["queries"] += int(qm[j])
            for i in range(B):
                batch_rows[i]["min_eps"] = float(me[i])
        rows.extend(batch_rows)
    return rows, _metrics(rows, name, first, atks, eps_grid, labels, eps_space, seed, min_eps, grid_min)


def _metrics(rows, name, first, atks, eps_grid, labels, eps_space, seed, min_eps, grid_min) -> dict:
    n = len(rows)
    nc = sum(r["clean_correct"] for r in rows)
    m: dict = {"attack": name, "n": n, "clean_top1": nc / n if n else float("nan"), "eps_space": eps_space}
    for e, lab in zip(eps_grid, labels):
        rob = sum(r[f"robust@{lab}"] for r in rows)
        m[f"robust_acc@{lab}"] = rob / n if n else float("nan")
        m[f"success_rate@{lab}"] = (nc - rob) / nc if nc else float("nan")
        m[f"mean_queries@{lab}"] = (sum(r[f"queries@{lab}"] for r in rows if r["clean_correct"]) / nc
                                    if nc else float("nan"))
    m["mean_queries"] = sum(r["queries"] for r in rows if r["clean_correct"]) / nc if nc else float("nan")
    if min_eps:
        vals = [r["min_eps"] for r in rows if r["clean_correct"]]
        m["median_min_eps"] = statistics.median(vals) if vals else float("nan")
    unit = ("pixel: eps in [0, 1] pixel units" if eps_space == "pixel" else
            "normalized: eps after the model's normalisation (pixel radius eps * std per channel)")
    proto = {"attack": name, "eps_space": eps_space, "eps_unit": unit, "eps_grid": list(eps_grid),
             "eps_labels": labels, "seed": seed, "params": first.params(),
             "params_per_eps": {lab: atks[e].resolved() for e, lab in zip(eps_grid, labels)},
             "attacked": "clean-correct samples only", "gradients": "fp32, autocast disabled",
             "queries": "model evaluations per attacked sample (target model; 0 for transfer)"}
    if min_eps:
        proto["min_eps_grid"] = list(grid_min)
        proto["min_eps_method"] = ("DeepFool minimal perturbation" if first.minimal else
                                   "per-sample binary search over min_eps_grid (assumes monotone success)")
    m["protocol"] = proto
    return m
