"""Shared set-up for benchmarks: a dedicated database on the configured (or embedded) server."""

from __future__ import annotations

import os
import resource
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from tenantatlas_pipelines.config import home_dir
from tenantatlas_pipelines.db import (
    Database,
    database_url_from_env,
    embedded_url,
    ensure_database,
    with_database,
)


def bench_database(name: str) -> Database:
    """A freshly created, migrated database `name` next to the pipeline's own (never the real one)."""
    server = database_url_from_env() or embedded_url(home_dir(), "postgres")
    with psycopg.connect(with_database(server, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    ensure_database(server, name)
    db = Database(with_database(server, name))
    db.migrate()
    return db


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@contextmanager
def temporary_home(prefix: str) -> Iterator[None]:
    """A temporary TENANTATLAS_HOME, its embedded PostgreSQL stopped at the end, unless a database URL
    or a home is configured: a benchmark never touches the user's ./.tenantatlas."""
    home = None
    if not os.environ.get("TENANTATLAS_DATABASE_URL") and not os.environ.get("TENANTATLAS_HOME"):
        home = tempfile.mkdtemp(prefix=prefix)
        os.environ["TENANTATLAS_HOME"] = home
    try:
        yield
    finally:
        if home:
            from tenantatlas_pipelines.db.embedded import stop_server

            stop_server(Path(home))
