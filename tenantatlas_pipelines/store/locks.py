"""One PostgreSQL advisory lock per (tenant_id, selection_hash), held for a whole sync run.

The lock lives on its own autocommit connection: it is released when the run closes that connection,
and by the server when the process dies (kill -9 included), so a crash never leaves a stale lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from .scope import TenantScope

_KEY_SQL = "hashtextextended('tenantatlas-sync:' || %s || ':' || %s, 0)"


@contextmanager
def run_lock(lock_conn: psycopg.Connection, scope: TenantScope, selection_hash: str) -> Iterator[bool]:
    """Try the lock without waiting; yields True when this run owns the (tenant, selection) pair."""
    got = lock_conn.execute(
        f"SELECT pg_try_advisory_lock({_KEY_SQL})", (scope.tenant_id, selection_hash)
    ).fetchone()
    acquired = bool(got and got[0])
    try:
        yield acquired
    finally:
        if acquired and not lock_conn.closed:
            # If the connection is gone, the server released the lock with it.
            with contextlib.suppress(psycopg.Error):
                lock_conn.execute(f"SELECT pg_advisory_unlock({_KEY_SQL})", (scope.tenant_id, selection_hash))


def lock_is_held(conn: psycopg.Connection, scope: TenantScope, selection_hash: str) -> bool:
    """Whether any session holds the run lock of this pair (for tests and the CLI's status)."""
    row = conn.execute(
        f"""SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND ((classid::bigint << 32) | objid::bigint) = ({_KEY_SQL})""",
        (scope.tenant_id, selection_hash),
    ).fetchone()
    return bool(row and row[0])
