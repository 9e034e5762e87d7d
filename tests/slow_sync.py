"""A sync process that writes one page, signals, then hangs: the victim of lock and kill -9 tests.

Usage: python -m tests.slow_sync DATABASE_URL TENANT_KEY SELECTION READY_FILE
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


if __name__ == "__main__":
    url, tenant, selection, ready = sys.argv[1:5]
    run_sync(Database(url), HangingGraph(Path(ready)), tenant, selection)
