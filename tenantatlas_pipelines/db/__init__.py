"""Reaching PostgreSQL: an external server by URL, or the embedded one under TENANTATLAS_HOME."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, unquote_plus, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from ..config import database_url_from_env, home_dir
from ..errors import ErrorCode, TenantAtlasError

DATABASE_NAME = "tenantatlas"
DAGSTER_DATABASE_NAME = "dagster"


# Connection parameters whose value is a secret, in every form libpq accepts them (URI query parameter
# or key=value conninfo). `passfile` names a file, not its content, and stays readable.
SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
REDACTED = "***"
_CONNINFO_SECRET = re.compile(
    r"(?i)\b(ssl)?password(\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)"
)


def redact_url(url: str) -> str:
    """The database URL with every credential replaced by ***, for messages, logs and `db url`.

    libpq takes a password in the userinfo (`user:pw@host`), as a `password=` or `sslpassword=` query
    parameter (names possibly percent-encoded), or as `password=` in a key=value conninfo string; all
    are redacted. A URL that does not parse is not shown at all rather than shown unredacted.
    """
    if "://" not in url:
        return _CONNINFO_SECRET.sub(lambda m: f"{m.group(1) or ''}password{m.group(2)}{REDACTED}", url)
    try:
        parts = urlsplit(url)
        userinfo, at, hosts = parts.netloc.rpartition("@")
        netloc = parts.netloc
        if at and ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:{REDACTED}@{hosts}"
        query = "&".join(_redact_parameter(p) for p in parts.query.split("&")) if parts.query else ""
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return f"{url.split('://', 1)[0]}://{REDACTED} (unparseable URL, not shown)"


def _redact_parameter(parameter: str) -> str:
    name, eq, _ = parameter.partition("=")
    if eq and unquote_plus(name).strip().lower() in SECRET_PARAMETERS:
        return f"{name}={REDACTED}"
    return parameter


def url_secrets(url: str) -> set[str]:
    """Every credential value `url` holds, raw and decoded: what must never appear in a message."""
    found: set[str] = set()
    if "://" not in url:
        for m in _CONNINFO_SECRET.finditer(url):
            found |= {m.group(3), m.group(3).strip("'")}
    else:
        try:
            parts = urlsplit(url)
        except ValueError:
            return found
        userinfo, at, _ = parts.netloc.rpartition("@")
        if at and ":" in userinfo:
            found.add(userinfo.split(":", 1)[1])
        for parameter in parts.query.split("&"):
            name, eq, value = parameter.partition("=")
            if eq and unquote_plus(name).strip().lower() in SECRET_PARAMETERS:
                found.add(value)
    found |= {unquote(v) for v in found} | {unquote_plus(v) for v in found}
    return {v for v in found if v}


def scrub(text: str, url: str) -> str:
    """`text` (e.g. a libpq error, which may quote a malformed parameter) without `url`'s credentials."""
    for secret in sorted(url_secrets(url), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def connection_error(url: str, exc: BaseException) -> TenantAtlasError:
    """DATABASE_UNAVAILABLE for a failed connection to `url`, with no credential in the message."""
    return TenantAtlasError(
        ErrorCode.DATABASE_UNAVAILABLE,
        f"cannot connect to PostgreSQL at {redact_url(url)}: {scrub(_first_line(exc), url)}",
    )


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


@dataclass(eq=False, repr=False)  # identity: each Database owns its pool
class Database:
    """One PostgreSQL database the pipeline uses; cheap to build, connects per unit of work."""

    url: str

    def __repr__(self) -> str:  # a Database in a log line or a traceback shows no password
        return f"Database({redact_url(self.url)!r})"
    # Idle connections kept for reuse by pooled(): a sync run opens a few per policy-type worker, and a
    # process running many runs (the fleet, a long-lived worker) should not start a backend for each.
    _idle: list[psycopg.Connection] = field(default_factory=list, repr=False)
    _idle_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    max_idle: int = field(default=16, repr=False)

    @classmethod
    def from_env(cls, *, migrate: bool = True) -> Database:
        """TENANTATLAS_DATABASE_URL when set, else the embedded server (started on demand)."""
        url = database_url_from_env()
        if url is None:
            url = embedded_url(home_dir())
        db = cls(url)
        if migrate:
            db.migrate()
        return db

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection:
        """A new connection; connection failures become DATABASE_UNAVAILABLE with a redacted URL."""
        try:
            # application_name shows operators (pg_stat_activity) which process holds a session.
            return psycopg.connect(
                self.url, autocommit=autocommit, connect_timeout=10, application_name=application_name()
            )
        except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
            # ProgrammingError: libpq refused the URL itself (a malformed parameter), before connecting.
            raise connection_error(self.url, exc) from None

    @contextmanager
    def pooled(self) -> Iterator[psycopg.Connection]:
        """A connection from this process's idle pool (or a new one), returned clean afterwards: rolled
        back, back to its login role with no tenant bound; a broken one is dropped instead."""
        from ..store.scope import release

        with self._idle_lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None or conn.closed or conn.broken:
            conn = self.connect()
        try:
            yield conn
        finally:
            reusable = not (conn.closed or conn.broken)
            if reusable:
                try:
                    conn.rollback()
                    release(conn)
                except psycopg.Error:
                    reusable = False
            with self._idle_lock:
                if reusable and len(self._idle) < self.max_idle:
                    self._idle.append(conn)
                    conn = None
            if conn is not None:
                conn.close()

    def close_idle(self) -> None:
        """Close the pooled connections (e.g. before the database is stopped or dropped)."""
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def migrate(self) -> list[str]:
        """Apply pending migrations and seed what the code expects; returns the migrations applied.

        Every process (CLI command, Dagster run worker) calls this before first use, so the common case,
        nothing to do, is answered by one connection and three reads, without the migration lock.
        """
        from ..store.policy_types import policy_types_current, sync_policy_types
        from ..store.selections import default_selections_present, seed_default_selections
        from .migrate import apply_migrations, migrations_current

        with self.pooled() as conn:
            current = (
                migrations_current(conn) and default_selections_present(conn) and policy_types_current(conn)
            )
        if current:
            return []
        applied = apply_migrations(self)
        with self.connect() as conn:
            seed_default_selections(conn)
            sync_policy_types(conn)
        return applied

    def dagster_storage_url(self) -> str:
        """A sibling database for Dagster's own run/event storage, created when missing."""
        ensure_database(self.url, DAGSTER_DATABASE_NAME)
        return with_database(self.url, DAGSTER_DATABASE_NAME)


def application_name() -> str:
    """`tenantatlas-<pid>`: the name every session of this process carries."""
    return f"tenantatlas-{os.getpid()}"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def ensure_database(server_url: str, name: str) -> None:
    """CREATE DATABASE `name` on the server of `server_url` unless it exists (race-safe)."""
    admin_url = with_database(server_url, "postgres")
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                # Another process may create it between our check and our CREATE.
                with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
        raise connection_error(admin_url, exc) from None


def embedded_url(home: Path, database: str = DATABASE_NAME) -> str:
    """Start the embedded server under `home` if needed and return the URL of `database` on it."""
    from .embedded import ensure_server

    server = ensure_server(home)
    ensure_database(server.url(), database)
    return server.url(database)
