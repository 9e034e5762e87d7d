"""One PostgreSQL advisory lock per (run kind, tenant_id, selection_hash), held for a whole run.

Each run kind has its own lock namespace ('sync', 'snapshot', ...): a snapshot and a sync of the same pair
may run at once, two runs of one kind and pair may not. The key is
hashtextextended('tenantatlas-<namespace>:<tenant_id>:<selection_hash>', 0).

The lock lives on its own autocommit connection: it is released when the run closes that connection,
and by the server when the process dies (kill -9 included), so a crash never leaves a stale lock. The
session is the lock: nothing but the run itself unlocks it, so "the lock session is alive" and "the run
holds its lock" are the same fact (LockGuard.check relies on that).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from .scope import TenantScope

_NAMESPACE = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")
SYNC_NAMESPACE = "sync"


def lock_key_sql(namespace: str, tenant_sql: str = "%s", hash_sql: str = "%s") -> str:
    """SQL for the pair's advisory-lock key (bigint) in `namespace`; tenant and hash are SQL expressions
    (placeholders by default, column names when a query checks the locks of many rows at once)."""
    if not _NAMESPACE.match(namespace):
        raise ValueError(f"not a lock namespace: {namespace!r}")
    return f"hashtextextended('tenantatlas-{namespace}:' || {tenant_sql} || ':' || {hash_sql}, 0)"


def lock_held_sql(namespace: str, tenant_sql: str = "%s", hash_sql: str = "%s") -> str:
    """A boolean SQL expression: whether any session holds the pair's run lock in this database."""
    key = lock_key_sql(namespace, tenant_sql, hash_sql)
    return f"""EXISTS (SELECT FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND ((l.classid::bigint << 32) | l.objid::bigint) = ({key}))"""


@contextmanager
def run_lock(
    lock_conn: psycopg.Connection, scope: TenantScope, selection_hash: str, namespace: str = SYNC_NAMESPACE
) -> Iterator[bool]:
    """Try the lock without waiting; yields True when this run owns the (tenant, selection) pair."""
    key = lock_key_sql(namespace)
    got = lock_conn.execute(
        f"SELECT pg_try_advisory_lock({key})", (scope.tenant_id, selection_hash)
    ).fetchone()
    acquired = bool(got and got[0])
    try:
        yield acquired
    finally:
        if acquired and not lock_conn.closed:
            # If the connection is gone, the server released the lock with it.
            with contextlib.suppress(psycopg.Error):
                lock_conn.execute(f"SELECT pg_advisory_unlock({key})", (scope.tenant_id, selection_hash))


def lock_is_held(
    conn: psycopg.Connection, scope: TenantScope, selection_hash: str, namespace: str = SYNC_NAMESPACE
) -> bool:
    """Whether any session holds the run lock of this pair (for tests and the CLI's status)."""
    row = conn.execute(f"SELECT {lock_held_sql(namespace)}", (scope.tenant_id, selection_hash)).fetchone()
    return bool(row and row[0])
