"""The UI's only way into PostgreSQL: read-only sessions as the analyst role.

Every connection is switched once, when it is opened, to `tenantatlas_analyst` (row-level security:
SELECT on every tenant, no writes; sql/040) with `default_transaction_read_only`, so a statement that
tried to write would fail twice over. Connections are kept in a small pool of their own (never shared
with pipeline code, which binds tenants on its sessions) and rolled back after each request.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from ..db import Database
from ..db.migrate import migrations_current
from ..errors import ErrorCode, TenantAtlasError
from ..store.scope import ANALYST_ROLE

# One round trip: SET ROLE and read-only for the session (set_config with is_local = false). UTC
# timestamps arrive with datetime.timezone.utc, whose arithmetic is plain; a named zone (the server's
# default) makes every age computed on the portfolio's ~19,000 cells consult the zone database.
_ANALYST_SESSION = (
    f"SELECT set_config('role', '{ANALYST_ROLE}', false),"
    " set_config('default_transaction_read_only', 'on', false),"
    " set_config('TimeZone', 'UTC', false)"
)


class AnalystReader:
    """Read-only analyst sessions on one database, pooled for the web server's worker threads."""

    def __init__(self, database: Database, max_idle: int = 8) -> None:
        self.database = database
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self._max_idle = max_idle

    def _open(self) -> psycopg.Connection:
        conn = self.database.connect()
        conn.execute(_ANALYST_SESSION)
        conn.commit()
        return conn

    @contextmanager
    def session(self) -> Iterator[psycopg.Connection]:
        """A connection as the analyst role; its transaction is rolled back afterwards."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None or conn.closed or conn.broken:
            conn = self._open()
        try:
            yield conn
        finally:
            keep = not (conn.closed or conn.broken)
            if keep:
                try:
                    conn.rollback()
                except psycopg.Error:
                    keep = False
            with self._lock:
                if keep and len(self._idle) < self._max_idle:
                    self._idle.append(conn)
                    conn = None
            if conn is not None:
                conn.close()

    def check_schema(self) -> None:
        """Refuse to serve a database whose schema is behind this code (the UI never migrates)."""
        with self.session() as conn:
            current = migrations_current(conn)
        if not current:
            raise TenantAtlasError(
                ErrorCode.DATABASE_ERROR,
                "the inventory schema is not up to date; run `tenantatlas db migrate` first "
                "(the UI reads only and never migrates)",
            )

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
