"""Data loading shared by the unit kinds: loaders over dataset positions, autocast, progress."""

from __future__ import annotations

import contextlib
import time

import torch
from torch.utils.data import DataLoader, Subset


def collate_images(batch):
    xs, ys, idx, ok = zip(*batch)
    return torch.stack(xs), torch.tensor(ys, dtype=torch.long), torch.tensor(idx, dtype=torch.long), torch.tensor(ok)


def collate_sequences(batch):
    """Sequences may differ in length (released videos): keep a list of ``[T_i, 3, H, W]``."""
    xs, ys, idx, ok = zip(*batch)
    return list(xs), torch.tensor(ys, dtype=torch.long), torch.tensor(idx, dtype=torch.long), torch.tensor(ok)


def make_loader(ds, positions, batch_size, workers, device, collate=collate_images, prefetch: int = 4) -> DataLoader:
    return DataLoader(Subset(ds, positions), batch_size=batch_size, shuffle=False, num_workers=workers,
                      pin_memory=str(device).startswith("cuda"), collate_fn=collate,
                      persistent_workers=False, prefetch_factor=prefetch if workers > 0 else None)


def autocast_for(device: torch.device, amp: bool):
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16)


class Progress:
    """Rich progress bar with images/s and ETA (silent when disabled or not a terminal)."""

    def __init__(self, enabled: bool, description: str, total: int, done: int = 0):
        self.bar = None
        if enabled:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RP, TaskProgressColumn,
                                       TextColumn, TimeRemainingColumn)

            self.bar = RP(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TaskProgressColumn(), TextColumn("{task.fields[rate]} img/s"), TimeRemainingColumn(),
                          transient=True)
            self.task = self.bar.add_task(description[:60], total=total, completed=done, rate="-")
            self.t0, self.n = time.perf_counter(), 0

    def __enter__(self):
        if self.bar:
            self.bar.__enter__()
        return self

    def advance(self, k: int):
        if self.bar:
            self.n += k
            rate = self.n / max(time.perf_counter() - self.t0, 1e-9)
            self.bar.update(self.task, advance=k, rate=f"{rate:,.0f}")

    def __exit__(self, *a):
        if self.bar:
            self.bar.__exit__(*a)
