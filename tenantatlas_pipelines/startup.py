"""Process start-up tuning for Dagster run workers: keep the garbage collector off the imported heap.

A Dagster run worker is a fresh process per run. Before our code runs it has imported Dagster,
SQLAlchemy, pydantic and friends: about a million long-lived objects. CPython's cyclic collector walks
all of them on every full collection: once more during the imports a sync run adds (psycopg, httpx,
MSAL; ~0.1 s), and again when the interpreter tears itself down at exit, which for a Dagster process
takes 0.6-0.8 s after the run has finished (measured on the 2-core reference machine: a trivial
one-asset project spends 0.7 s between its atexit hooks and its exit, our run worker 0.13 s).
`gc.freeze()` moves everything allocated so far into a permanent generation that collections skip,
which is what the Python documentation suggests for long-lived start-up state. See docs/orchestration.md,
"Per-run overhead".

The price: cyclic garbage that already exists at the freeze is never collected, nor is a cycle that
later runs through a frozen object, and finalizers of frozen cycles do not run at exit. That is bounded
by what Dagster's import built, and nothing of ours relies on a finalizer at exit. Long-lived processes
that load the definitions (a code server under `dagster dev` or the daemon's workspace) freeze too, at
the same point and with the same bound. It is done once per process, so reloading a code location in
place does not pin the garbage of each reload.
"""

from __future__ import annotations

import gc


def freeze_import_heap() -> bool:
    """Exempt the objects allocated so far from cyclic collection, once per process; True if it froze."""
    if gc.get_freeze_count():
        return False
    gc.freeze()
    return True
