"""Data loading shared by the unit kinds: loaders over dataset positions, autocast, progress."""

from __future__ import annotations

import contextlib
import time

import torch
from torch.utils.data import DataLoader, Dataset

from roz.errors import RozError


def collate_images(batch):
    xs, ys, idx, ok = zip(*batch)
    return torch.stack(xs), torch.tensor(ys, dtype=torch.long), torch.tensor(idx, dtype=torch.long), torch.tensor(ok)


def collate_sequences(batch):
    """Sequences may differ in length (released videos): keep a list of ``[T_i, 3, H, W]``."""
    xs, ys, idx, ok = zip(*batch)
    return list(xs), torch.tensor(ys, dtype=torch.long), torch.tensor(idx, dtype=torch.long), torch.tensor(ok)


def make_loader(ds, positions, batch_size, workers, device, collate=collate_images, prefetch: int = 4):
    """Batches of ``ds`` at ``positions``; a ``RozError`` raised while loading (a bad image under
    on_bad_image=fail) is raised here, in the main process, with its own type, message and hint."""
    loader = DataLoader(_CarryErrors(ds, positions), batch_size=batch_size, shuffle=False, num_workers=workers,
                        pin_memory=str(device).startswith("cuda"), collate_fn=_CollateOrCarry(collate),
                        persistent_workers=False, prefetch_factor=prefetch if workers > 0 else None)
    return _Batches(loader)


class _Carried:
    """A ``RozError`` raised in a DataLoader worker, sent back as data.

    torch re-raises a worker's exception as ``type(e)("Caught ... in DataLoader worker process
    0.\nOriginal Traceback ...")``: a 20-line dump and the hint lost. Returning the error's parts
    instead lets the main process raise the one-line error the user should see."""

    def __init__(self, error: RozError):
        self.type, self.what, self.hint = type(error), error.what, error.hint

    def error(self) -> RozError:
        err = self.type.__new__(self.type)
        RozError.__init__(err, self.what, hint=self.hint)  # subclasses may take other arguments
        return err


class _CarryErrors(Dataset):
    """``ds`` restricted to ``positions`` (as ``Subset``), with RozErrors returned as ``_Carried``."""

    def __init__(self, ds, positions):
        self.ds, self.positions = ds, list(positions)

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, k: int):
        try:
            return self.ds[self.positions[k]]
        except RozError as e:
            return _Carried(e)


class _CollateOrCarry:
    """Collate a batch, or pass its first carried error through unchanged."""

    def __init__(self, collate):
        self.collate = collate

    def __call__(self, batch):
        carried = next((b for b in batch if isinstance(b, _Carried)), None)
        return carried if carried is not None else self.collate(batch)


class _Batches:
    """Iterates the loader; a carried error is raised in the main process."""

    def __init__(self, loader: DataLoader):
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            if isinstance(batch, _Carried):
                raise batch.error() from None
            yield batch


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
