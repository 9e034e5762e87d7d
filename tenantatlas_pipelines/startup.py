"""Process start-up tuning for Dagster run workers: keep the garbage collector off the imported heap.

A Dagster run worker is a fresh process per run. Before our code runs it has imported Dagster,
SQLAlchemy, pydantic and friends: about a million long-lived objects. CPython's cyclic collector walks
all of them on every full collection, and the imports a sync run adds (psycopg, httpx, MSAL) allocate
enough to trigger one or two more full collections: measured at 60-120 ms each on the 2-core reference
machine, about a third of the whole per-run overhead of an empty partition (docs/orchestration.md,
"Per-run overhead"). `gc.freeze()` moves everything allocated so far into a permanent generation that
collections skip, which is what the Python documentation suggests for long-lived start-up state.

The price is that cyclic garbage that already exists at the freeze is never collected: a one-time,
bounded amount from module imports. It is done once per process, so reloading a code location does not
pin the garbage of each reload.
"""

from __future__ import annotations

import gc


def freeze_import_heap() -> bool:
    """Exempt the objects allocated so far from cyclic collection, once per process; True if it froze."""
    if gc.get_freeze_count():
        return False
    gc.freeze()
    return True
