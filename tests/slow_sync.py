"""A sync process that writes one page, signals, then hangs: the victim of lock, kill -9 and cancel tests.

Usage: python -m tests.slow_sync DATABASE_URL TENANT_KEY SELECTION READY_FILE [--dagster]

With --dagster the run is made cancellable the way Dagster's run worker does it (SIGTERM turned into a
DagsterExecutionInterruptedError in the main thread); each policy type writes READY_FILE-<type> after
its first page, waits until READY_FILE.release exists (at most a minute), then offers a second page
(`<type>-after-cancel`) that a cancelled run must not commit.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.sync import run_sync
from tests.support import MemoryGraph, MemoryPage, item


class HangingGraph(MemoryGraph):
    def __init__(self, ready: Path) -> None:
        super().__init__()
        self.ready = ready

    def iter_pages(self, tenant_id, policy_type, stats=None):
        yield MemoryPage([item(f"{policy_type}-first")])
        self.ready.write_text("page written")
        time.sleep(3600)
        yield MemoryPage([item(f"{policy_type}-never")])


class CancellableGraph(HangingGraph):
    def iter_pages(self, tenant_id, policy_type, stats=None):
        yield MemoryPage([item(f"{policy_type}-first")])
        Path(f"{self.ready}-{policy_type}").write_text("page written")
        release = Path(f"{self.ready}.release")
        deadline = time.monotonic() + 60
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield MemoryPage([item(f"{policy_type}-after-cancel")])


if __name__ == "__main__":
    url, tenant, selection, ready = sys.argv[1:5]
    if "--dagster" in sys.argv[5:]:
        from dagster._core.errors import DagsterExecutionInterruptedError
        from dagster._utils.interrupts import raise_interrupts_as, setup_interrupt_handlers

        setup_interrupt_handlers()
        with raise_interrupts_as(DagsterExecutionInterruptedError):
            run_sync(Database(url), CancellableGraph(Path(ready)), tenant, selection)
    else:
        run_sync(Database(url), HangingGraph(Path(ready)), tenant, selection)
