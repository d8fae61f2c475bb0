"""The unit record: everything the store keeps about one finished unit, typed, built in one place.

:class:`UnitRecord` is what :class:`~roz.engine.store.ResultStore` writes (``write_unit``) and
reads (``records`` / ``record``); nothing else parses unit JSON. It is frozen all the way down
(nested mappings are read-only views, lists are tuples), so a caller cannot change a stored
record by accident. :meth:`UnitRecord.from_json` is tolerant of older records (a missing key
takes its default) and keeps keys it does not know in ``extra``, so :meth:`UnitRecord.to_json`
gives back the same JSON the store wrote.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from roz.engine.env import environment
from roz.engine.kinds import UnitContext, UnitResult
from roz.engine.positions import LIMIT_DRAW, positions_digest
from roz.errors import StoreError

EMPTY: Mapping[str, Any] = MappingProxyType({})


def freeze(obj: Any) -> Any:
    """A read-only copy of JSON-like data: mappings -> ``MappingProxyType``, lists -> tuples."""
    if isinstance(obj, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in obj.items()})
    if isinstance(obj, (list, tuple)):
        return tuple(freeze(v) for v in obj)
    return obj


def thaw(obj: Any) -> Any:
    """The plain JSON value of :func:`freeze`'s output (dicts and lists, fresh copies)."""
    if isinstance(obj, Mapping):
        return {k: thaw(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [thaw(v) for v in obj]
    return obj


def _split(d: Mapping | None, known: tuple[str, ...], where: str) -> tuple[dict, Mapping[str, Any]]:
    if d is None:
        d = {}
    if not isinstance(d, Mapping):
        raise StoreError(f"unit record: {where} is {type(d).__name__}, expected a JSON object",
                         hint="re-run the same command: the unit is recomputed (or delete its record)")
    return {k: d[k] for k in known if k in d}, freeze({k: v for k, v in d.items() if k not in known})


class _Part:
    """A record part: ``KEYS`` are its fields as they appear in the JSON, ``extra`` keeps the rest;
    a named part (``WHERE``: its key in the record) must have a ``name``."""

    KEYS: tuple[str, ...] = ()
    WHERE = ""

    @classmethod
    def from_json(cls, d: Mapping | None):
        known, extra = _split(d, cls.KEYS, cls.WHERE)
        if "name" not in known:
            raise StoreError(f"unit record: {cls.WHERE} has no name",
                             hint="re-run the same command: the unit is recomputed")
        return cls(**{k: freeze(v) for k, v in cls._defaults(known).items()}, extra=extra)

    @staticmethod
    def _defaults(known: dict) -> dict:
        return known

    def to_json(self) -> dict:
        return {**thaw(self.extra), **{k: thaw(getattr(self, k)) for k in self.KEYS}}

    def __reduce__(self):  # read-only mappings do not pickle or deep-copy: go through JSON
        return type(self).from_json, (self.to_json(),)


@dataclass(frozen=True)
class ModelInfo(_Part):
    """The ``model`` part of a unit record."""

    name: str
    spec: Any = None
    role: str = "standard"
    identity: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    classes: Any = None
    n_classes: int | None = None
    weights_sha256: str | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: EMPTY, repr=False)

    KEYS = ("name", "spec", "role", "identity", "classes", "n_classes", "weights_sha256")
    WHERE = "model"

    @staticmethod
    def _defaults(known: dict) -> dict:
        return {**known, "role": known.get("role") or "standard"}


@dataclass(frozen=True)
class DataInfo(_Part):
    """The ``dataset`` part of a unit record (``name``: the display name results are keyed by)."""

    name: str
    registry_name: str | None = None
    root: str | None = None
    n: int | None = None
    paper_order: int = 100
    fingerprint: Any = None
    protocol: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    extra: Mapping[str, Any] = field(default_factory=lambda: EMPTY, repr=False)

    KEYS = ("name", "registry_name", "root", "n", "paper_order", "fingerprint", "protocol")
    WHERE = "dataset"

    @staticmethod
    def _defaults(known: dict) -> dict:
        known = {k: v for k, v in known.items() if not (k == "paper_order" and v is None)}
        return {**known, "protocol": known.get("protocol") or {}}



@dataclass(frozen=True)
class UnitRecord(_Part):
    """One finished unit: identity, protocol, metrics, environment, timing, samples check.

    ``shift`` / ``attack``: ``None`` when the unit has none. ``samples``: ``{"file", "rows",
    "bytes", "sha256"}`` or ``None`` (set by the store). ``roz_version`` / ``store_format``: set by
    the store when it writes the record."""

    unit_id: str
    model: ModelInfo
    dataset: DataInfo
    kind: str = "eval"
    shift: Mapping[str, Any] | None = None
    attack: Mapping[str, Any] | None = None
    metrics: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    protocol: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    skipped_files: tuple = ()
    env: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    timing: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    samples: Mapping[str, Any] | None = None
    roz_version: str | None = None
    store_format: Any = None
    extra: Mapping[str, Any] = field(default_factory=lambda: EMPTY, repr=False)

    KEYS = ("unit_id", "kind", "model", "dataset", "shift", "attack", "metrics", "protocol", "skipped_files",
            "env", "timing", "samples", "roz_version", "store_format")
    _DEFAULT_EMPTY = ("metrics", "protocol", "env", "timing")

    @classmethod
    def from_json(cls, d: Mapping) -> UnitRecord:
        """The record of a unit JSON object; missing keys take their defaults, unknown keys go to ``extra``."""
        known, extra = _split(d, cls.KEYS, "the record")
        if not isinstance(known.get("unit_id"), str):
            raise StoreError("unit record has no unit_id", hint="re-run the same command: the unit is recomputed")
        known["model"] = ModelInfo.from_json(known.get("model"))
        known["dataset"] = DataInfo.from_json(known.get("dataset"))
        known["kind"] = known.get("kind") or "eval"
        for k in cls._DEFAULT_EMPTY:
            if known.get(k) is None:
                known.pop(k, None)
        known["skipped_files"] = known.get("skipped_files") or ()
        return cls(**{k: v if k in ("model", "dataset") else freeze(v) for k, v in known.items()}, extra=extra)

    def to_json(self) -> dict:
        """The unit JSON (plain dicts and lists), as the store writes it."""
        out = super().to_json()
        out["model"], out["dataset"] = self.model.to_json(), self.dataset.to_json()
        return out

    def replace(self, **changes) -> UnitRecord:
        """A copy with ``changes`` (frozen like the original)."""
        return dataclasses.replace(self, **{k: v if k in ("model", "dataset") else freeze(v)
                                            for k, v in changes.items()})

    # -- what callers ask most -----------------------------------------------------------------
    @property
    def is_natural_eval(self) -> bool:
        """An eval unit without a synthetic shift (a natural-shift accuracy)."""
        return self.kind == "eval" and not self.shift

    def numeric_metrics(self) -> dict[str, float]:
        """The numeric metrics as floats (booleans and strings dropped)."""
        return {k: float(v) for k, v in self.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def build_record(ctx: UnitContext, result: UnitResult, kind: str, seconds: float, paper_order: int) -> UnitRecord:
    """The unit record (without the store's own keys: samples integrity, version, format)."""
    unit, ds, opts, label_map = ctx.unit, ctx.ds, ctx.opts, ctx.label_map
    desc = ctx.model.describe()
    positions = {**positions_digest(ctx.positions), "of": len(ds), "shard": list(unit.shard)}
    if unit.limit is not None:
        positions["limit_draw"] = LIMIT_DRAW
    return UnitRecord.from_json({
        "unit_id": unit.unit_id,
        "kind": kind,
        "model": {"name": unit.model.label, "spec": unit.model.spec, "role": desc["role"], "identity": desc["identity"],
                  "classes": desc["classes"], "n_classes": desc["n_classes"], "weights_sha256": unit.model.weights},
        "dataset": {**ds.describe(), "name": unit.dataset.display, "registry_name": unit.dataset.name,
                    "paper_order": paper_order, "fingerprint": unit.dataset.fingerprint},
        "shift": {**(unit.shift_dict() or {}), **(result.shift_params or {})} or None,
        "attack": result.attack,
        "metrics": result.metrics,
        "protocol": {
            "head": unit.head,
            "templates": desc.get("templates"),
            "n_templates": desc.get("n_templates"),
            "logit_scale": desc.get("logit_scale"),
            "preprocess": desc["preprocess"],
            "label_space": {"n_labels": len(ds.labels), "n_model_classes": desc["n_classes"],
                            "merge": "identity" if label_map.identity else "max over each label's WordNet IDs",
                            "model_classes_outside_labels_dropped": True},
            "seed": unit.seed, "shard": list(unit.shard), "limit": unit.limit, "amp": opts.amp,
            "positions": positions,
            "on_bad_image": unit.on_bad_image, "dataset_protocol": ds.protocol,
            **result.protocol,
        },
        "skipped_files": result.skipped,
        "env": environment(opts.device),
        "timing": {"seconds": round(seconds, 3), "images_per_s": round(len(result.table) / max(seconds, 1e-9), 2)},
    })
