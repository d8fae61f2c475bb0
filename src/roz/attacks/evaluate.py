"""``evaluate_attack``: robust accuracy, success rate and minimal eps of one attack on one model.

Only clean-correct samples are attacked (a clean mistake is non-robust at every eps). Every
adversarial batch is checked to lie in [0, 1] and inside the eps ball before it is scored.
Model forwards here run in the caller's autocast context; attack internals always use fp32.

Minimal eps (``min_eps=True``): per clean-correct sample, binary search over ``min_eps_grid``
(attack at a per-sample eps, success -> go lower, failure -> go higher), assuming success is
monotone in eps; the result is the smallest grid value where the attack succeeded, ``inf``
if none (0 for clean mistakes). DeepFool gives its minimal perturbation directly.
``median_min_eps`` is the median over clean-correct samples (inf counts as larger than all).
The search uses the evaluated attack unless ``min_eps_attack`` names another one (with
``min_eps_params``): a cross-entropy attack such as PGD-10 finds much larger minimal eps than a
margin-loss one (``loss='dlr'``, ``apgd-t``). ``min_eps_protocol='paper'`` instead reproduces the
official search (:data:`roz.attacks.defaults.PAPER_MIN_EPS_GRID_K`): grid k/1000 in normalised
units, 20 steps of 0.15 eps for BIM / NES / SPSA; the reported minimal eps is then in normalised
units whatever ``eps_space`` the robust accuracies use (recorded as ``min_eps_space``).

Bounds: every figure comes from an attack, so robust accuracy and minimal eps are *upper*
bounds on the model's true values and the success rate a *lower* bound; the protocol records
this (``bounds``) with the loss each attack maximised (``loss``, ``min_eps_loss``).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Iterable

import torch

from roz.attacks.base import Attack, eps_label
from roz.attacks.defaults import (DEFAULT_EPS_GRID, DEFAULT_MIN_EPS_GRID, PAPER_MIN_EPS_GRID_K,
                                  PAPER_MIN_EPS_STEPS, paper_min_eps_grid)
from roz.attacks.registry import canonical, create_attack
from roz.errors import RozError

__all__ = ["BOUNDS", "DEFAULT_EPS_GRID", "DEFAULT_MIN_EPS_GRID", "evaluate_attack"]

# metric (prefix) -> which side of the model's true value an attack's figure lies on
BOUNDS = {"robust_acc": "upper", "success_rate": "lower", "min_eps": "upper", "median_min_eps": "upper"}
BOUND_NOTE = ("attack figures are bounds: robust accuracy and minimal eps are upper bounds on the model's "
              "true values, the success rate a lower bound; cross-entropy attacks (loss 'ce') give the "
              "loosest minimal eps (use min_eps_attack='apgd-t' or loss='dlr' for tighter ones)")


@dataclass
class _Setup:
    """Everything fixed before the first batch."""

    name: str
    eps_space: str
    seed: int
    eps_grid: tuple[float, ...]
    labels: list[str]
    atks: dict
    min_eps: bool
    grid_min: tuple[float, ...] = ()
    min_atk: Attack | None = None
    min_name: str | None = None
    min_protocol: str = "roz"
    min_space: str = "pixel"
    kw: dict = field(default_factory=dict)

    @property
    def first(self) -> Attack:
        return self.atks[self.eps_grid[0]]


def _check_ball(atk: Attack, x, x_adv, eps) -> None:
    e = atk.eps_tensor(x, eps)
    d = (x_adv - x).abs()
    if x_adv.shape != x.shape or x_adv.min() < 0 or x_adv.max() > 1 or bool((d > e + 1e-5).any()):
        raise AssertionError(f"bug: attack {atk.name} left the eps ball or [0, 1]")


def _pred(model, x) -> torch.Tensor:
    with torch.no_grad():
        return model(x).argmax(1)


def _surrogate_for(name: str, model, surrogate):
    if name.startswith("transfer-") and surrogate is None:
        from roz.attacks.transfer import default_surrogate

        return default_surrogate(next(iter(model.parameters()), torch.empty(0)).device)
    return surrogate


def _setup(model, attack, eps_grid, params, surrogate, min_eps, seed) -> _Setup:
    params = dict(params or {})
    eps_space = params.pop("eps_space", "pixel")
    grid_given = params.get("min_eps_grid")
    grid_min = tuple(float(v) for v in params.pop("min_eps_grid", DEFAULT_MIN_EPS_GRID))
    min_name = params.pop("min_eps_attack", None)
    min_params = dict(params.pop("min_eps_params", None) or {})
    min_protocol = params.pop("min_eps_protocol", "roz")
    for k in ("eps", "seed"):
        if k in params:
            raise RozError(f"evaluate_attack: '{k}' is not an attack parameter here",
                           hint="use eps_grid=... and seed=... arguments")
    if (min_name is not None or min_params or min_protocol != "roz") and not min_eps:
        raise RozError("evaluate_attack: min_eps_attack/min_eps_params/min_eps_protocol are set but min_eps is off",
                       hint="set min_eps=True (min_eps: true in a run config) or drop them")
    eps_grid = tuple(float(e) for e in eps_grid)
    if not eps_grid or any(not e >= 0 for e in eps_grid):
        raise RozError(f"evaluate_attack: bad eps grid {eps_grid}", hint="give eps values >= 0, e.g. (1/255, 8/255)")
    name = canonical(attack)
    surrogate = _surrogate_for(name, model, surrogate)
    kw = dict(eps_space=eps_space, seed=seed, **params)
    if surrogate is not None:
        kw["surrogate"] = surrogate
    atks = {e: create_attack(name, model, eps=e, **kw) for e in eps_grid}
    s = _Setup(name, eps_space, seed, eps_grid, [eps_label(e) for e in eps_grid], atks, min_eps, kw=kw)
    if not min_eps:
        return s
    if min_protocol == "paper":
        if grid_given is not None or min_name is not None or min_params:
            raise RozError("evaluate_attack: min_eps_protocol='paper' fixes the search (grid, attack, steps)",
                           hint="drop min_eps_grid / min_eps_attack / min_eps_params, or use min_eps_protocol='roz'")
        _paper_min_setup(s, model, params, surrogate)
        return s
    if min_protocol != "roz":
        raise RozError(f"evaluate_attack: unknown min_eps_protocol {min_protocol!r}",
                       hint="'roz' (min_eps_grid, binary search with the attack's own settings) or 'paper'")
    s.first.check_eps(grid_min, "min_eps_grid")
    if not all(a < b for a, b in zip(grid_min, grid_min[1:])):
        raise RozError(f"evaluate_attack: min_eps_grid must be non-empty and increasing, got {grid_min}")
    s.grid_min, s.min_space = grid_min, eps_space
    s.min_name = name if min_name is None else canonical(min_name)
    if min_name is None:
        s.min_atk = s.first if s.first.minimal else create_attack(name, model, eps=grid_min[-1], **kw)
    else:
        mkw = dict(eps_space=eps_space, seed=seed, **min_params)
        sur = _surrogate_for(s.min_name, model, surrogate if s.min_name.startswith("transfer-") else None)
        if sur is not None:
            mkw["surrogate"] = sur
        s.min_atk = create_attack(s.min_name, model, eps=grid_min[-1], **mkw)
    return s


def _paper_min_setup(s: _Setup, model, params: dict, surrogate) -> None:
    """The official search: the same attack in normalised units on the paper's grid, 20 steps."""
    s.min_protocol, s.min_name, s.min_space = "paper", s.name, "normalized"
    if s.first.minimal:  # DeepFool: its own minimal perturbation, measured in normalised units
        s.min_atk = create_attack(s.name, model, eps=0.0, eps_space="normalized", seed=s.seed, **params)
        return
    if s.name not in PAPER_MIN_EPS_GRID_K:
        raise RozError(f"evaluate_attack: the paper has no minimal-eps search for {s.name!r}",
                       hint=f"min_eps_protocol='paper' covers {sorted(PAPER_MIN_EPS_GRID_K)} and deepfool")
    s.grid_min = paper_min_eps_grid(s.name)
    mp = dict(params)
    if s.name in ("bim", "transfer-bim", "nes", "spsa"):
        mp.update(steps=PAPER_MIN_EPS_STEPS, alpha=None, alpha_factor=0.15)
    if s.name in ("bim", "transfer-bim"):
        mp["schedule"] = "paper"
    if surrogate is not None:
        mp["surrogate"] = surrogate
    s.min_atk = create_attack(s.name, model, eps=s.grid_min[-1], eps_space="normalized", seed=s.seed, **mp)


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


def _grid_columns(s: _Setup, model, x, y, idx, clean, c, rows) -> torch.Tensor | None:
    """Adds adv_pred/robust/queries@<eps> to ``rows``; returns DeepFool's norms (or None)."""
    B, cd = x.shape[0], c.to(x.device)
    first, norms = s.first, None
    if first.minimal and c.numel():
        x_df, norms = first.minimal_perturb(x[cd], y[cd], idx[c])
        df_pred = _pred(model, x_df).cpu()
        df_q = first.last_queries.clone()
    for e, lab in zip(s.eps_grid, s.labels):
        atk = s.atks[e]
        adv_pred = clean.cpu().clone()
        q = torch.zeros(B, dtype=torch.int64)
        if c.numel():
            if first.minimal:
                within = norms <= e + 1e-9
                adv_pred[c] = torch.where(within, df_pred, clean.cpu()[c])
                q[c] = df_q if e == s.eps_grid[0] else 0
            else:
                x_adv = atk.perturb(x[cd], y[cd], idx[c])
                _check_ball(atk, x[cd], x_adv, None)
                adv_pred[c] = _pred(model, x_adv).cpu()
                q[c] = atk.last_queries
        for i, r in enumerate(rows):
            r[f"adv_pred@{lab}"] = int(adv_pred[i])
            r[f"robust@{lab}"] = r["clean_correct"] and int(adv_pred[i]) == int(y[i])
            r[f"queries@{lab}"] = int(q[i])
            r["queries"] += int(q[i])
    return norms


def _min_eps_column(s: _Setup, model, x, y, idx, c, rows, norms) -> None:
    me = torch.zeros(x.shape[0], dtype=torch.float64)
    if c.numel():
        cd = c.to(x.device)
        if s.min_atk is s.first and norms is not None:  # DeepFool evaluated: its norms are the answer
            me[c] = norms
        elif s.min_atk.minimal:
            _, me[c] = s.min_atk.minimal_perturb(x[cd], y[cd], idx[c])
            for j, i in enumerate(c.tolist()):
                rows[i]["queries"] += int(s.min_atk.last_queries[j])
        else:
            me[c], qm = _min_eps_search(s.min_atk, model, x[cd], y[cd], idx[c], s.grid_min)
            for j, i in enumerate(c.tolist()):
                rows[i]["queries"] += int(qm[j])
    for i, r in enumerate(rows):
        r["min_eps"] = float(me[i])


def evaluate_attack(model: torch.nn.Module, batches: Iterable, attack: str,
                    eps_grid=DEFAULT_EPS_GRID, params: dict | None = None,
                    surrogate: torch.nn.Module | None = None, min_eps: bool = False,
                    seed: int = 0, prior_rows: Iterable[dict] = ()) -> tuple[list[dict], dict]:
    """Run ``attack`` on ``model`` over ``batches`` of (x, y, idx); returns (rows, metrics).

    ``params`` are the attack's parameters, plus ``eps_space`` ('pixel' | 'normalized'),
    ``min_eps_grid`` (grid for the minimal-eps search) and ``min_eps_attack`` /
    ``min_eps_params`` (another attack for that search, e.g. 'apgd-t'). Rows hold index,
    target, clean_pred, clean_correct, adv_pred@<eps>, robust@<eps>, queries@<eps>, queries
    (total), min_eps. ``prior_rows``: rows of earlier batches of the same attack (a resumed
    unit); they are returned first and count in the metrics.
    """
    s = _setup(model, attack, eps_grid, params, surrogate, min_eps, seed)
    rows: list[dict] = [dict(r) for r in prior_rows]
    for x, y, idx in batches:
        x = torch.as_tensor(x).float()
        y = torch.as_tensor(y).long().to(x.device)
        idx = torch.as_tensor(idx).long().cpu()
        clean = _pred(model, x)
        correct = (clean == y).cpu()
        c = correct.nonzero()[:, 0]
        batch_rows = [{"index": int(idx[i]), "target": int(y[i]), "clean_pred": int(clean[i]),
                       "clean_correct": bool(correct[i]), "queries": 0} for i in range(x.shape[0])]
        norms = _grid_columns(s, model, x, y, idx, clean, c, batch_rows)
        if min_eps:
            _min_eps_column(s, model, x, y, idx, c, batch_rows, norms)
        rows.extend(batch_rows)
    return rows, _metrics(rows, s)


def _metrics(rows, s: _Setup) -> dict:
    n = len(rows)
    nc = sum(r["clean_correct"] for r in rows)
    m: dict = {"attack": s.name, "n": n, "clean_top1": nc / n if n else float("nan"), "eps_space": s.eps_space}
    for lab in s.labels:
        rob = sum(r[f"robust@{lab}"] for r in rows)
        m[f"robust_acc@{lab}"] = rob / n if n else float("nan")
        m[f"success_rate@{lab}"] = (nc - rob) / nc if nc else float("nan")
        m[f"mean_queries@{lab}"] = (sum(r[f"queries@{lab}"] for r in rows if r["clean_correct"]) / nc
                                    if nc else float("nan"))
    m["mean_queries"] = sum(r["queries"] for r in rows if r["clean_correct"]) / nc if nc else float("nan")
    if s.min_eps:
        vals = [r["min_eps"] for r in rows if r["clean_correct"]]
        m["median_min_eps"] = statistics.median(vals) if vals else float("nan")
    m["protocol"] = _protocol(s)
    return m


def _protocol(s: _Setup) -> dict:
    unit = ("pixel: eps in [0, 1] pixel units" if s.eps_space == "pixel" else
            "normalized: eps after the model's normalisation (pixel radius eps * std per channel)")
    first = s.first
    proto = {"attack": s.name, "eps_space": s.eps_space, "eps_unit": unit, "eps_grid": list(s.eps_grid),
             "eps_labels": s.labels, "seed": s.seed, "params": first.params(),
             "params_per_eps": {lab: s.atks[e].resolved() for e, lab in zip(s.eps_grid, s.labels)},
             "attacked": "clean-correct samples only", "gradients": "fp32, autocast disabled",
             "queries": "model evaluations per attacked sample (target model; 0 for transfer)",
             "loss": first.loss_name(),
             "bounds": {k: v for k, v in BOUNDS.items() if s.min_eps or "min_eps" not in k},
             "bound_note": BOUND_NOTE}
    if first.note():
        proto["note"] = first.note()
    if s.min_eps:
        proto["min_eps_protocol"] = s.min_protocol
        proto["min_eps_space"] = s.min_space
        proto["min_eps_grid"] = list(s.grid_min)
        proto["min_eps_attack"] = s.min_name
        proto["min_eps_loss"] = s.min_atk.loss_name()
        if s.min_atk is not first:
            proto["min_eps_params"] = s.min_atk.params()
        proto["min_eps_method"] = (f"{s.min_name} minimal perturbation" if s.min_atk.minimal else
                                   f"per-sample binary search over min_eps_grid with {s.min_name} "
                                   "(assumes monotone success)")
        if s.min_protocol == "paper":
            proto["min_eps_method"] += ("; min_eps_protocol 'paper': the official search (wang-research-lab/roz, "
                                        "search='binary'): grid k/1000 in normalised units, 20 steps of 0.15 eps "
                                        "for BIM/NES/SPSA")
    return proto
