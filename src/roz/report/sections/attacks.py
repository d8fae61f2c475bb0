"""Adversarial attacks: robust accuracy against the budget eps, and every attack metric."""

from __future__ import annotations

import re

from roz.report import figures
from roz.report.sections.base import FigureTableSection

_EPS_RE = re.compile(r"^(robust_acc|robust_accuracy|acc)@(.+)$")


def parse_eps(s) -> float:
    """``"8/255"`` or ``"0.03"`` -> a float (ValueError when it is neither)."""
    s = str(s).strip()
    if "/" in s:
        a, b = s.split("/", 1)
        return float(a) / float(b)
    return float(s)


def _curve_points(label: str, model: str, met: dict, att: dict) -> list[dict]:
    pts = []
    # the eps = 0 point: attack units record ``clean_top1`` (older fixtures ``clean_acc`` / ``top1``)
    clean = next((met[k] for k in ("clean_top1", "clean_acc", "top1") if k in met), None)
    if clean is not None:
        pts.append({"attack": label, "model": model, "eps": 0.0, "robust_acc": clean})
    for k, v in met.items():
        m = _EPS_RE.match(k)
        eps = m.group(2) if m else att["eps"] if k in ("robust_acc", "robust_accuracy") and "eps" in att else None
        if eps is None:
            continue
        try:
            pts.append({"attack": label, "model": model, "eps": parse_eps(eps), "robust_acc": v})
        except ValueError:
            continue
    return pts


def attack_data(units) -> dict | None:
    """Attack units -> robust-accuracy curves (attack, model, eps, robust_acc) and a flat table.

    Reads ``robust_acc@<eps>`` metrics (eps as ``8/255`` or a float), or ``robust_acc`` with
    ``attack.eps``; ``clean_top1`` (or ``clean_acc`` / ``top1``) is the eps = 0 point."""
    import pandas as pd

    pts, flat = [], []
    for u in units:
        if u.kind != "attack":
            continue
        name = str(u.attack.get("name", "attack"))
        bounds = u.attack.get("bounds") or {}
        flat.append({"model": u.model, "role": u.role, "attack": name, "dataset": u.dataset,
                     "loss": u.attack.get("loss", ""),  # what the attack maximised: ce is the loosest bound
                     "robust_acc is": f"{bounds['robust_acc']} bound" if "robust_acc" in bounds else "",
                     "min_eps is": f"{bounds['min_eps']} bound" if "min_eps" in bounds else "",
                     **u.metrics})
        pts += _curve_points(f"{name} on {u.dataset}", u.model, dict(u.metrics), u.attack)
    if not flat:
        return None
    curves = pd.DataFrame(pts, columns=["attack", "model", "eps", "robust_acc"]).drop_duplicates(
        ["attack", "model", "eps"], keep="last")
    tab = pd.DataFrame(flat)
    return {"curves": curves, "table": tab, "roles": dict(zip(tab.model, tab.role))}


def attack_notes(att) -> list[str]:
    """Robust accuracy and minimal eps found by an attack bound the true values from above."""
    notes = ["Robust accuracy and minimal eps are upper bounds: a stronger attack can only lower them. "
             "Attacks that maximise cross-entropy (loss = ce, e.g. PGD-10) are the loosest; for a tighter "
             "minimal eps search with a margin loss (loss: dlr) or min_eps_attack: apgd-t."]
    tab = att["table"]
    if "loss" in tab.columns and (tab["loss"].astype(str).str.startswith("ce")).any():
        notes.append("Rows with loss = ce come from cross-entropy attacks: read their robust accuracy and "
                     "minimal eps as upper bounds, not values.")
    return notes


def draw_attacks(att):
    return figures.attack_figure(att["curves"], att["roles"]) if len(att["curves"]) else None


ATTACKS = FigureTableSection("attacks", "Adversarial attacks", data=attack_data, draw=draw_attacks,
                             left=("model", "role", "attack", "dataset", "loss", "robust_acc is", "min_eps is"),
                             alt="robust accuracy vs eps", units="attack", notes=attack_notes)
