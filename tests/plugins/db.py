"""Database fixtures: the real PostgreSQL, never the user's own instance.

The test session runs against its own embedded server in a temporary TENANTATLAS_HOME, made when the
session starts, shared by the xdist workers, stopped and deleted when the session ends. Why so strict: a
checkout that ran `./run demo` has its instance in ./.tenantatlas, and tests that registered tenants or
Dagster runs there broke the user's schedule and backfills. TENANTATLAS_TEST_DATABASE_URL points the
tests at an external server instead ("told otherwise"); they then work in databases of their own on it.
The user's TENANTATLAS_HOME, TENANTATLAS_DATABASE_URL and DAGSTER_HOME are removed from the session's
environment, so no code under test nor any process it starts can fall back to them.

Each xdist worker gets its own database on the server, migrated once; the `db` fixture empties every
table before a test, so tests never see each other's rows.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tenantatlas_pipelines.db import Database, embedded_url, ensure_database, with_database

TEST_HOME_ENV = "TENANTATLAS_TEST_HOME"  # the session's home, inherited by xdist workers
TEST_DATABASE_URL_ENV = "TENANTATLAS_TEST_DATABASE_URL"  # opt-in external server for the tests
_OWNER_ENV = "TENANTATLAS_TEST_HOME_OWNER"  # pid of the process that made the home and removes it


def pytest_configure(config: pytest.Config) -> None:
    """Give the session (controller and workers alike) a temporary home, before any test imports run."""
    if not os.environ.get(TEST_HOME_ENV):
        os.environ[TEST_HOME_ENV] = tempfile.mkdtemp(prefix="tenantatlas-test-")
        os.environ[_OWNER_ENV] = str(os.getpid())
    for var in ("TENANTATLAS_DATABASE_URL", "DAGSTER_HOME"):
        os.environ.pop(var, None)
    os.environ["TENANTATLAS_HOME"] = os.environ[TEST_HOME_ENV]


def pytest_unconfigure(config: pytest.Config) -> None:
    """The process that made the home stops its server (after every worker is done) and deletes it."""
    if os.environ.get(_OWNER_ENV) != str(os.getpid()):
        return
    from tenantatlas_pipelines.db.embedded import stop_server

    home = Path(os.environ[TEST_HOME_ENV])
    try:
        stop_server(home, mode="immediate")
    finally:
        shutil.rmtree(home, ignore_errors=True)
        os.environ.pop(TEST_HOME_ENV, None)
        os.environ.pop(_OWNER_ENV, None)


@contextmanager
def _session_lock(name: str) -> Iterator[None]:
    """An exclusive lock shared by the session's processes (a file in the session's home)."""
    with open(Path(os.environ[TEST_HOME_ENV]) / name, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _server_url() -> str:
    url = os.environ.get(TEST_DATABASE_URL_ENV, "").strip()
    if url:
        return url
    return embedded_url(Path(os.environ[TEST_HOME_ENV]), "postgres")


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
    # One worker at a time: the first migration on a fresh server creates cluster-wide roles (sql/040),
    # and the migration lock is per database, so two workers' first migrations would race on them.
    with _session_lock("migrate.lock"):
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
