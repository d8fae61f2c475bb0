"""What the registry knows about a dataset family member: factory, layout, source, counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from roz.datasets.base import EvalDataset


@dataclass
class DatasetInfo:
    name: str
    factory: Callable[..., EvalDataset]
    description: str
    layout: str  # the expected directory layout, shown in errors and `roz datasets`
    source: str = ""  # where to download it
    expected_counts: dict | None = None  # {"total": N, "per_class": {...}} or {"total": [N1, N2]}
    metrics: tuple[str, ...] = ("top1", "top5")
    paper_order: int = 100  # position in the paper's tables
    unit_kind: str = "eval"  # the engine's unit kind for this dataset (roz.engine.kinds), e.g. "perturbation"
    tags: tuple[str, ...] = field(default_factory=tuple)
