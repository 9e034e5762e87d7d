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
import os
import re
import select
import socket
import threading
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


# TCP keepalives on the lock session, both ends: the server ends the session (releasing the lock) soon
# after the client host vanishes, and the client notices a server that vanished (failover, a dropped
# route) within about idle + interval * count seconds instead of the kernel's two hours.
KEEPALIVE_IDLE_S = 10
KEEPALIVE_INTERVAL_S = 5
KEEPALIVE_COUNT = 3


def enable_keepalives(conn: psycopg.Connection) -> None:
    """Keepalives on an open session: the socket's options (client side) and the server's settings for
    this session. A unix-socket session has no TCP: only the (harmless) settings apply."""
    conn.execute(
        """SELECT set_config('tcp_keepalives_idle', %s, false),
                  set_config('tcp_keepalives_interval', %s, false),
                  set_config('tcp_keepalives_count', %s, false)""",
        (str(KEEPALIVE_IDLE_S), str(KEEPALIVE_INTERVAL_S), str(KEEPALIVE_COUNT)),
    )
    if not conn.autocommit:
        conn.commit()
    sock = socket.socket(fileno=os.dup(conn.fileno()))  # the session's socket, through a duplicate fd
    try:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_COUNT)
    finally:
        sock.close()  # closes the duplicate descriptor only; the socket stays the connection's


class LockGuard:
    """Tells a run whether it still holds its lock, cheaply enough to ask before every page commit.

    The session is the lock (nothing else unlocks it), so the question is whether the session lives.
    An idle autocommit session receives nothing unless it is being ended: a zero-timeout poll of its
    socket answers without a round trip; only when something arrived (the server's termination notice,
    EOF, a keepalive failure) does a `SELECT 1` decide. Once lost, lost for good."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn
        self._lost = False
        self._mutex = threading.Lock()

    @property
    def lost(self) -> bool:
        return self._lost

    def held(self) -> bool:
        if self._lost:
            return False
        conn = self._conn
        if conn.closed or conn.broken:
            self._lost = True
            return False
        try:
            readable = bool(select.select([conn.fileno()], [], [], 0)[0])
        except (OSError, ValueError):
            readable = True
        if readable:
            with self._mutex:
                try:
                    conn.execute("SELECT 1")
                except psycopg.Error:
                    self._lost = True
        return not self._lost
