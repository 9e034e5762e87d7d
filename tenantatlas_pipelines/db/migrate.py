"""Numbered `.sql` migrations from `sql/`, applied in order, each once, recorded in schema_migrations.

Two processes starting at once serialise on an advisory lock, so the second sees the first one's work
and applies nothing. That lock is per database; roles are per server: two databases of one server
migrating at once (tests, a second deployment) can both pass `IF NOT EXISTS` for a role and one
`CREATE ROLE` then fails. That migration is applied again once, and then sees the role.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from ..config import sql_dir
from ..errors import ErrorCode, TenantAtlasError

if TYPE_CHECKING:
    from . import Database

MIGRATION_LOCK_KEY = 0x7E4A_A71A5  # arbitrary, constant: "tenantatlas migrations"
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


def migration_files(directory: Path | None = None) -> list[Path]:
    """The migration files in apply order; a misnamed .sql file is an error, not silently skipped."""
    directory = directory or sql_dir()
    files = sorted(p for p in directory.glob("*.sql"))
    bad = [p.name for p in files if not _NAME.match(p.name)]
    if bad:
        raise TenantAtlasError(ErrorCode.CONFIG_INVALID, f"migration files must be named NNN_name.sql: {bad}")
    return files


def migrations_current(conn: psycopg.Connection, directory: Path | None = None) -> bool:
    """Whether every migration file is recorded as applied (False when the table does not exist yet)."""
    names = {p.name for p in migration_files(directory)}
    row = conn.execute("SELECT to_regclass('public.schema_migrations') IS NOT NULL").fetchone()
    if not (row and row[0]):
        return False
    done = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
    return names <= done


def apply_migrations(db: Database, directory: Path | None = None) -> list[str]:
    """Apply pending migrations; returns the names applied now (empty when up to date)."""
    files = migration_files(directory)
    applied: list[str] = []
    with db.connect() as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            conn.commit()
            done = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
            for path in files:
                if path.name in done:
                    continue
                _apply(conn, path)
                applied.append(path.name)
            conn.commit()
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
            conn.commit()
    return applied


def _apply(conn: psycopg.Connection, path: Path) -> None:
    """One migration in its own transaction, with its record; retried once after a role-creation race."""
    for attempt in (1, 2):
        try:
            with conn.transaction():
                conn.execute(path.read_text())
                conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (path.name,))
            return
        except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateObject) as exc:
            if attempt == 2 or not _lost_role_race(exc):
                raise


def _lost_role_race(exc: psycopg.Error) -> bool:
    """Another database's migration created the same role (or granted the same membership) between our
    check and our CREATE ROLE (GRANT): a duplicate in the server-wide role catalogs."""
    if isinstance(exc, psycopg.errors.UniqueViolation):
        return (exc.diag.constraint_name or "").startswith(("pg_authid_", "pg_auth_members_"))
    return bool(re.match(r'role ".*" already exists', exc.diag.message_primary or ""))
