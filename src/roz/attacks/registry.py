"""Attack registry: name -> class, and ``create_attack`` with actionable errors."""

from __future__ import annotations

import torch

from roz.attacks.apgd import APGD, APGDT
from roz.attacks.autoattack import AutoAttack
from roz.attacks.base import Attack
from roz.attacks.bim import BIM
from roz.attacks.deepfool import DeepFool
from roz.attacks.dim import DIM
from roz.attacks.fab import FABT
from roz.attacks.fgsm import FGSM
from roz.attacks.mim import MIM
from roz.attacks.pgd import PGD
from roz.attacks.score_based import NES, SPSA
from roz.attacks.square import Square
from roz.attacks.transfer import TransferBIM, TransferDIM, TransferFGSM, TransferMIM
from roz.errors import RozError

ATTACKS: dict[str, type[Attack]] = {c.name: c for c in (
    FGSM, BIM, MIM, DIM, DeepFool, TransferFGSM, TransferBIM, TransferMIM, TransferDIM, NES, SPSA,
    PGD, APGD, APGDT, FABT, Square, AutoAttack)}

# The eleven attacks of Wang et al. (2024), in the paper's order.
PAPER_ATTACKS = ("fgsm", "bim", "mim", "dim", "deepfool", "transfer-fgsm", "transfer-bim", "transfer-mim",
                 "transfer-dim", "nes", "spsa")


def canonical(name: str) -> str:
    n = str(name).strip().lower().replace("_", "-")
    return {"apgd": "apgd-ce", "apgdt": "apgd-t", "fab": "fab-t", "aa": "autoattack", "auto-attack": "autoattack"}.get(n, n)


def create_attack(name: str, model: torch.nn.Module, **params) -> Attack:
    """Build attack ``name`` on ``model``; ``params`` may include eps, eps_space, seed and, for
    ``transfer-*`` attacks, ``surrogate`` (a model; default ``DEFAULT_SURROGATE``, torchvision ResNet-152 V1)."""
    n = canonical(name)
    cls = ATTACKS.get(n)
    if cls is None:
        raise RozError(f"unknown attack '{name}'", hint=f"choose one of: {', '.join(sorted(ATTACKS))}")
    if "surrogate" in params and not n.startswith("transfer-"):
        if params["surrogate"] is not None:
            raise RozError(f"attack '{n}' does not use a surrogate",
                           hint="surrogates are for transfer-fgsm/-bim/-mim/-dim")
        params.pop("surrogate")
    return cls(model, **params)
