"""Database fixtures: the real PostgreSQL (TENANTATLAS_DATABASE_URL, else the embedded server).

Each xdist worker gets its own database on the server, migrated once; the `db` fixture empties every
table before a test, so tests never see each other's rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tenantatlas_pipelines.config import PROJECT_ROOT, database_url_from_env
from tenantatlas_pipelines.db import Database, embedded_url, ensure_database, with_database


def _server_url() -> str:
    url = database_url_from_env()
    if url:
        return url
    home = PROJECT_ROOT / ".tenantatlas"
    home.mkdir(exist_ok=True)
    return embedded_url(home, "postgres")


@pytest.fixture(scope="session")
def database_server_url() -> str:
    return _server_url()


def _drop(server_url: str, name: str) -> None:
    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def _test_database(database_server_url: str) -> Iterator[Database]:
    # One database per test process (pid), so parallel sessions on one server never collide.
    name = f"tenantatlas_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    _drop(database_server_url, name)
    ensure_database(database_server_url, name)
    db = Database(with_database(database_server_url, name))
    db.migrate()
    yield db
    _drop(database_server_url, name)


def empty_database(db: Database) -> None:
    """Truncate every table but the migration record, then re-seed what migrate seeds."""
    from tenantatlas_pipelines.store.policy_types import sync_policy_types
    from tenantatlas_pipelines.store.selections import seed_default_selections

    with db.connect() as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables"
                " WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
            )
        ]
        if tables:
            conn.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                    sql.SQL(", ").join(sql.Identifier(t) for t in tables)
                )
            )
        conn.commit()
        seed_default_selections(conn)
        sync_policy_types(conn)


@pytest.fixture
def db(_test_database: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """An empty, migrated test database; TENANTATLAS_DATABASE_URL points at it for code under test."""
    _test_database.close_idle()  # no pooled session of an earlier test outlives it
    empty_database(_test_database)
    monkeypatch.setenv("TENANTATLAS_DATABASE_URL", _test_database.url)
    yield _test_database
    _test_database.close_idle()


@pytest.fixture
def conn(db: Database) -> Iterator[psycopg.Connection]:
    with db.connect() as connection:
        yield connection
