"""Adversarial attacks: robust accuracy against the budget eps, and every attack metric."""

from __future__ import annotations

import re

from roz.report import figures as F
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
    clean = met.get("clean_acc", met.get("top1"))
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
    ``attack.eps``; ``clean_acc`` (or ``top1``) is the eps = 0 point."""
    import pandas as pd

    pts, flat = [], []
    for u in units:
        if u.kind != "attack":
            continue
        name = str(u.attack.get("name", "attack"))
        flat.append({"model": u.model, "role": u.role, "attack": name, "dataset": u.dataset, **u.metrics})
        pts += _curve_points(f"{name} on {u.dataset}", u.model, dict(u.metrics), u.attack)
    if not flat:
        return None
    curves = pd.DataFrame(pts, columns=["attack", "model", "eps", "robust_acc"]).drop_duplicates(
        ["attack", "model", "eps"], keep="last")
    tab = pd.DataFrame(flat)
    return {"curves": curves, "table": tab, "roles": dict(zip(tab.model, tab.role))}


def draw_attacks(att):
    return F.attack_figure(att["curves"], att["roles"]) if len(att["curves"]) else None


ATTACKS = FigureTableSection("attacks", "Adversarial attacks", data=attack_data, draw=draw_attacks,
                             left=("model", "role", "attack", "dataset"), alt="robust accuracy vs eps", units="attack")
