"""Work units: one (model × dataset × shift/attack × parameters × shard) evaluation.

A unit's id is a readable slug plus a hash of its canonical JSON, so the same unit always maps to
the same file in the store (which is how re-runs skip finished work), and any change to a
parameter that affects results gives a new unit.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from enum import StrEnum


class Head(StrEnum):
    """Zero-shot head on a class-restricted dataset: the full class set + a mask, or a subset head."""

    FULL = "full"
    SUBSET = "subset"


# 2: a library model's pixels come from the library's own eval transform minus Normalize
# (roz.models.transforms); results computed with ROZ's earlier tensor transform are not reused.
# ROZ checkpoints (``local:``) keep the transform their sidecar states, so their ids do not change.
LIBRARY_PREPROCESS_VERSION = 2


@dataclass(frozen=True)
class ModelRef:
    spec: str
    name: str | None = None
    classes: str | None = None  # class set (zero-shot heads / custom outputs)
    templates: str | None = None  # template set (zero-shot)
    role: str | None = None  # override: standard | zeroshot | zeroshot-auto | ...
    weights: str | None = None  # sha256 of the local weight file(s) the spec names (set at planning)

    @property
    def label(self) -> str:
        return self.name or self.spec


@dataclass(frozen=True)
class DatasetRef:
    name: str
    root: str
    options: tuple = ()  # sorted (key, value) pairs passed to create_dataset
    label: str | None = None  # display name (e.g. mini-r for an imagefolder root)
    fingerprint: str | None = None  # hash of the root's file list, sizes, mtimes (set at planning; not in the id)

    display = property(lambda self: self.label or self.name, doc="the name results show: label, else the registry name")


@dataclass(frozen=True)
class Unit:
    model: ModelRef
    dataset: DatasetRef
    shift: tuple = ()  # sorted (key, value) pairs incl. "name"; () = clean
    attack: tuple = ()  # sorted (key, value) pairs incl. "name"; () = no attack
    head: str = "full"  # zero-shot: full class set + mask, or subset head from the dataset's names
    seed: int = 0
    shard: tuple[int, int] = (0, 1)
    on_bad_image: str = "fail"
    full_logits: bool = False
    limit: int | None = None  # N samples of the shard, a seeded class-stratified draw (engine.positions)
    amp: bool = False  # autocast inference changes the numbers: part of the identity

    @property
    def kind(self) -> str:
        """``eval`` | ``perturbation`` | ``attack`` | ...: the strategy that runs it (engine.kinds)."""
        from roz.engine.kinds import kind_of

        return kind_of(self)

    def canonical(self) -> dict:
        d = asdict(self)
        if d["dataset"].get("label") is None:  # a label names the unit's dataset in results: part of the id
            d["dataset"].pop("label", None)
        d["dataset"].pop("fingerprint", None)  # content changes are refused per run dir, not re-keyed
        if d["model"].get("weights") is None:  # hub weights: ids of earlier runs stay valid
            d["model"].pop("weights", None)
        if not d.get("amp"):
            d.pop("amp", None)
        d["model"].pop("name", None)
        d["model"].pop("role", None)
        if not self.model.spec.startswith("local:"):  # library models: their pixels changed with v2
            d["model"]["preprocess_version"] = LIBRARY_PREPROCESS_VERSION
        d["extra"] = []  # a removed, always-empty field: kept in the hash so existing unit ids stay valid
        if self.limit is not None:  # the draw changed from evenly spaced: limited units get new ids
            d["limit_draw"] = "stratified-random"
        return d

    @property
    def unit_id(self) -> str:
        h = hashlib.sha256(json.dumps(self.canonical(), sort_keys=True, default=str).encode()).hexdigest()[:12]
        parts = [self.model.label, self.dataset.display]
        if self.shift:
            parts.append("-".join(str(v) for k, v in self.shift if k != "version"))
        if self.attack:
            parts.append(dict(self.attack).get("name", "attack"))
        if self.shard != (0, 1):
            parts.append(f"shard{self.shard[0]}of{self.shard[1]}")
        # never a leading "." (a hidden file, and the store's temporary files start with one)
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", "__".join(parts))[:80].lstrip("._").rstrip("_")
        return f"{slug}__{h}"

    def shift_dict(self) -> dict | None:
        return dict(self.shift) if self.shift else None

    def attack_dict(self) -> dict | None:
        return dict(self.attack) if self.attack else None


def freeze(d: dict | None) -> tuple:
    """A dict of options as a hashable, order-independent tuple."""
    if not d:
        return ()
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in d.items()))
