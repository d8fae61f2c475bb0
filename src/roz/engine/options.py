"""Execution settings of a run, defined once: the CLI, the API and the engine all use ``RunOptions``.

These settings decide *how* units run (batch size, workers, device, progress, checkpointing,
executor). ``amp`` is the exception that changes numbers: it is copied into each unit's identity at
planning time (``Unit.amp``) and recorded in the unit's protocol.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from enum import StrEnum



class Executor(StrEnum):
    """Where units run: in this process, or one Ray task per unit."""

    LOCAL = "local"
    RAY = "ray"


def default_device() -> str:
    """CUDA when a GPU is visible, else the CPU (the same rule everywhere: CLI, API, demo)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _default_part_size() -> int:
    from roz.engine.evaluate import DEFAULT_PART_SIZE  # imported late: this module stays light for the CLI

    return DEFAULT_PART_SIZE


def default_workers() -> int:
    return min(4, os.cpu_count() or 1)


@dataclass
class RunOptions:
    """Execution settings (not part of unit ids, except ``amp``: see the module docstring)."""

    batch_size: int = 64
    workers: int = field(default_factory=default_workers)
    device: str = field(default_factory=default_device)
    amp: bool = False
    progress: bool = False
    part_size: int = field(default_factory=lambda: _default_part_size())
    executor: Executor = Executor.LOCAL
    retries: int = 2  # extra attempts of a unit: after an exception (not a RozError), or its Ray worker's death
    shard_size: int | None = None  # split eval/attack units of more samples into shards (engine.shards)
    address: str | None = None  # Ray cluster to join (else RAY_ADDRESS, else a local Ray instance)
    task_cpus: int | None = None  # CPUs a Ray task reserves (default: its DataLoader workers, at least 1)


# The settings a run config (YAML) or a CLI flag may set; ``progress`` follows the terminal.
SETTING_NAMES = tuple(f.name for f in fields(RunOptions) if f.name != "progress")


def resolve_options(*layers: dict | None, progress: bool = False) -> RunOptions:
    """``RunOptions`` from layered settings, later layers winning; ``None`` means "not given".

    ``resolve_options(config, flags)`` gives flag > config > default (issue 12: a CLI default
    must not override a value written in the config).
    """
    chosen: dict = {}
    for layer in layers:
        chosen.update({k: v for k, v in (layer or {}).items() if k in SETTING_NAMES and v is not None})
    if "executor" in chosen:
        chosen["executor"] = Executor(chosen["executor"])
    return RunOptions(progress=progress, **chosen)
