"""The driver's view of a whole run: units done / running / failed, images/s and ETA.

With ``progress`` on a terminal it is one live ``rich`` panel (stderr); otherwise the same figures
go to the run's log as one line per finished job. Images/s counts the images of the jobs that
computed something (skipped and merge-only jobs add none); the ETA extrapolates the mean time per
finished unit to the units left — a rough figure when units differ in size.
"""

from __future__ import annotations

import sys
import time


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class RunView:
    def __init__(self, n_units: int, progress: bool = False, log=None):
        self.n_units, self.log = n_units, log
        self.done = self.failed = self.images = 0
        self.loads = self.hits = 0  # models (and subset heads) built, and reused from a worker's cache
        self.running: set[str] = set()
        self._failed_units: set[str] = set()
        self.t0 = time.perf_counter()
        self._live = None
        if progress and n_units and sys.stderr.isatty():
            from rich.console import Console
            from rich.live import Live

            self._live = Live(self._render(), console=Console(stderr=True), refresh_per_second=4, transient=False)

    def __enter__(self):
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, *exc):
        if self._live is not None:
            self._live.update(self._render())
            self._live.stop()
        return False

    def started(self, job) -> None:
        self.running.add(job.name)
        self._refresh()

    def finished(self, job, outcome: dict) -> None:
        self.running.discard(job.name)
        state, uid = outcome.get("state"), job.unit.unit_id
        self.loads += int(outcome.get("loads") or 0)
        self.hits += int(outcome.get("hits") or 0)
        if state == "done":
            self.images += int(outcome.get("n") or 0)
        if job.span is None and state in ("done", "skipped"):
            self.done += 1
        elif state == "failed" and uid not in self._failed_units:  # a unit, or the first failed shard of one
            self._failed_units.add(uid)
            self.failed += 1
        self._refresh(line=True)

    def summary(self) -> str:
        elapsed = time.perf_counter() - self.t0
        rate = self.images / elapsed if elapsed > 0 else 0.0
        finished = self.done + self.failed
        eta = elapsed / finished * (self.n_units - finished) if finished else None
        return (f"units: {self.done}/{self.n_units} done, {len(self.running)} running, {self.failed} failed · "
                f"{rate:.1f} img/s · elapsed {_clock(elapsed)} · ETA {_clock(eta)} · "
                f"models built {self.loads}, reused {self.hits}")

    def _render(self):
        from rich.panel import Panel

        return Panel(self.summary(), title="roz run", expand=False)

    def _refresh(self, line: bool = False) -> None:
        if self._live is not None:
            self._live.update(self._render())
        elif line and self.log:
            self.log(self.summary())
