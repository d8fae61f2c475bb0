"""Batched evaluation of one unit: model × dataset (× shift), with resumable partial progress.

Per-sample rows go to the store (Parquet) with the dataset's extra columns, so any subset can be
re-scored later; aggregate metrics come from the dataset's own ``aggregate`` (top-1/top-5, pm-k,
...). Progress is checkpointed every ``part_size`` samples: an interrupted unit resumes from its
last finished part and ends with exactly the rows of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Callable

import pyarrow as pa
import torch
from torch.utils.data import DataLoader, Subset

from roz.datasets.base import EvalDataset
from roz.engine.labelspace import LabelMap
from roz.engine.store import ResultStore
from roz.errors import DataError
from roz.models.base import RozModel
from roz.shifts.base import sample_seed

DEFAULT_PART_SIZE = 2048
_parts_written = 0


def _fault_injection() -> None:
    """Crash-test hook: ``ROZ_FAULT_KILL_AFTER_PARTS=N`` SIGKILLs this process right after the N-th
    part is written, so tests can interrupt a run at a deterministic point (as a crash or power loss
    would) and check that it resumes exactly."""
    global _parts_written
    limit = os.environ.get("ROZ_FAULT_KILL_AFTER_PARTS")
    _parts_written += 1
    if limit and _parts_written >= int(limit):
        os.kill(os.getpid(), signal.SIGKILL)


def _collate(batch):
    xs, ys, idx, ok = zip(*batch)
    return torch.stack(xs), torch.tensor(ys, dtype=torch.long), torch.tensor(idx, dtype=torch.long), torch.tensor(ok)


def positions_for(n: int, shard: tuple[int, int], limit: int | None) -> list[int]:
    """Dataset positions this unit covers: a contiguous shard; with ``limit``, that many positions
    evenly spaced over the shard (samples are ordered by class, so a prefix would be a few classes)."""
    k, count = shard
    if not (0 <= k < count):
        raise ValueError(f"bad shard {k}/{count}")
    pos = list(range(k * n // count, (k + 1) * n // count))
    if limit is None or limit >= len(pos):
        return pos
    return [pos[(i * len(pos)) // limit] for i in range(int(limit))]


def make_loader(ds, positions, batch_size, workers, device) -> DataLoader:
    return DataLoader(Subset(ds, positions), batch_size=batch_size, shuffle=False, num_workers=workers,
                      pin_memory=str(device).startswith("cuda"), collate_fn=_collate,
                      persistent_workers=False, prefetch_factor=4 if workers > 0 else None)


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


def run_eval(model: RozModel, ds: EvalDataset, store: ResultStore, unit_id: str, *, shift=None, seed: int = 0,
             shard=(0, 1), limit=None, batch_size: int = 64, workers: int = 0, device="cpu", amp: bool = False,
             full_logits: bool = False, part_size: int = DEFAULT_PART_SIZE, progress: bool = False,
             label_map: LabelMap | None = None, after_part: Callable[[int], None] | None = None):
    """Evaluate and return ``(rows: pa.Table, skipped: list[str], seconds: float)``.

    Parts already in the store are reused; each finished part is written atomically.
    """
    device = torch.device(device)
    ds.transform = model.transform()
    lm = (label_map or LabelMap(model.wnids, ds.labels, what=ds.name)).to(device)
    positions = positions_for(len(ds), shard, limit)
    parts = [positions[i:i + part_size] for i in range(0, len(positions), part_size)]
    done = store.read_parts(unit_id)
    todo = [p for p in range(len(parts)) if p not in done]
    remaining = [pos for p in todo for pos in parts[p]]
    meta_cols = ds.sample_meta()
    shift_salt = getattr(shift, "name", "")
    needs_targets = bool(getattr(shift, "needs_targets", False))
    candidates = bool(getattr(ds, "has_candidates", False))  # per-sample candidate classes (binary protocol)
    model = model.to(device).eval()

    buf: list[dict] = []
    part_iter = iter(todo)
    cur = next(part_iter, None)
    cur_end = len(parts[cur]) if cur is not None else 0
    t0 = time.perf_counter()
    n_done_before = sum(len(parts[p]) for p in done)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16) \
        if amp else contextlib.nullcontext()

    def flush_ready():
        nonlocal buf, cur, cur_end
        while cur is not None and len(buf) >= cur_end:
            rows, buf = buf[:cur_end], buf[cur_end:]
            store.write_part(unit_id, cur, pa.Table.from_pylist(rows))
            done[cur] = None
            _fault_injection()
            if after_part:
                after_part(cur)
            cur = next(part_iter, None)
            cur_end = len(parts[cur]) if cur is not None else 0

    with Progress(progress, f"{model.name} · {ds.name}", len(positions), n_done_before) as bar:
        if remaining:
            for x, y, idx, ok in make_loader(ds, remaining, batch_size, workers, device):
                x = x.to(device, non_blocking=True)
                written = None
                if shift is not None:
                    seeds = torch.tensor([sample_seed(seed, int(i), shift_salt) for i in idx], dtype=torch.long)
                    if needs_targets:
                        x, written, sok = shift.apply_with_labels(x, seeds, y)
                        ok = ok & sok.cpu()
                    else:
                        x = shift(x, seeds)
                with torch.inference_mode(), autocast:
                    logits = lm(model(x).float())
                if candidates:
                    from roz.metrics.typographic import candidate_logits

                    logits = candidate_logits(logits, ds.candidate_mask(idx).to(logits.device))
                k = min(5, logits.shape[1])
                top_v, top_i = logits.topk(k, dim=1)
                top_i, top_v = top_i.cpu().tolist(), top_v.float().cpu().tolist()
                full = logits.float().cpu().tolist() if full_logits else None
                for j in range(len(idx)):
                    i = int(idx[j])
                    valid = ds.valid_labels(i)
                    row = {"index": i, "path": ds.samples[i][0], "target": int(y[j]), "ok": bool(ok[j]),
                           "pred": top_i[j][0], "correct": top_i[j][0] in valid,
                           "correct5": any(t in valid for t in top_i[j]), "top5": top_i[j], "top5_logits": top_v[j]}
                    for c, vals in meta_cols.items():
                        row[c] = vals[i]
                    if written is not None:
                        row["written_label"] = int(written[j])
                    if full is not None:
                        row["logits"] = full[j]
                    buf.append(row)
                bar.advance(len(idx))
                flush_ready()
        flush_ready()
    seconds = time.perf_counter() - t0
    tables = [t for _, t in sorted(store.read_parts(unit_id).items())]
    table = pa.concat_tables(tables, promote_options="default") if tables else pa.table({})
    if table.num_rows != len(positions):
        raise DataError(f"{unit_id}: expected {len(positions)} rows, stored parts hold {table.num_rows}",
                        hint="re-run with --force to recompute this unit")
    skipped = [r for r, ok in zip(table.column("path").to_pylist(), table.column("ok").to_pylist()) if not ok] \
        if table.num_rows else []
    return table, skipped, seconds
