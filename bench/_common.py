"""Shared set-up for benchmarks: their own temporary instance, and dedicated databases on it.

Benchmarks never touch the user's instance: a checkout that ran `./run demo` keeps its tenants, runs and
Dagster history in ./.tenantatlas (or TENANTATLAS_HOME / TENANTATLAS_DATABASE_URL), and a benchmark that
registered its tenants there broke the user's schedule. `isolate()` (every benchmark's first call) gives
the process and its children a temporary TENANTATLAS_HOME with its own embedded server, stopped and
deleted at exit. TENANTATLAS_BENCH_DATABASE_URL points them at an external server instead (told
otherwise); they then work in databases of their own on it.
"""

from __future__ import annotations

import atexit
import os
import resource
import shutil
import tempfile
from collections.abc import Callable, Iterator
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

BENCH_DATABASE_URL_ENV = "TENANTATLAS_BENCH_DATABASE_URL"
_ISOLATED_ENV = "TENANTATLAS_BENCH_ISOLATED"  # set in an isolated benchmark, inherited by its children


def isolate() -> Path:
    """Point this process and its children at a temporary instance; returns its TENANTATLAS_HOME."""
    if os.environ.get(_ISOLATED_ENV):
        return home_dir()
    home = Path(tempfile.mkdtemp(prefix="tenantatlas-bench-"))
    os.environ.update({"TENANTATLAS_HOME": str(home), _ISOLATED_ENV: "1"})
    os.environ.pop("DAGSTER_HOME", None)
    external = os.environ.get(BENCH_DATABASE_URL_ENV, "").strip()
    if external:
        os.environ["TENANTATLAS_DATABASE_URL"] = external
    else:
        os.environ.pop("TENANTATLAS_DATABASE_URL", None)
    atexit.register(_remove, home)
    return home


def _remove(home: Path) -> None:
    from tenantatlas_pipelines.db.embedded import stop_server

    try:
        stop_server(home, mode="immediate")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def bench_database(name: str) -> Database:
    """A freshly created, migrated database `name` on the benchmark's own server (never the user's)."""
    isolate()
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
    """A temporary TENANTATLAS_HOME (its embedded PostgreSQL stopped and the folder removed at the end)
    unless TENANTATLAS_DATABASE_URL or TENANTATLAS_HOME says where to work: a benchmark never touches
    the user's ./.tenantatlas."""
    if os.environ.get("TENANTATLAS_DATABASE_URL") or os.environ.get("TENANTATLAS_HOME"):
        yield
        return
    home = tempfile.mkdtemp(prefix=prefix)
    os.environ["TENANTATLAS_HOME"] = home
    try:
        yield
    finally:
        from tenantatlas_pipelines.db.embedded import stop_server

        stop_server(Path(home))
        shutil.rmtree(home, ignore_errors=True)


def with_temp_home(prefix: str, run: Callable[[], None]) -> None:
    """`run()` inside temporary_home(prefix)."""
    with temporary_home(prefix):
        run()


def target(name: str, value: float, op: str, limit: float, fmt: str = ".3f", unit: str = "") -> bool:
    """Print the one line every benchmark target gets, `target NAME: VALUE (goal OP LIMIT) met|missed`,
    computed from the measured value; returns whether it was met."""
    met = {"<": value < limit, "<=": value <= limit, ">=": value >= limit, "==": value == limit}[op]
    print(f"target {name}: {value:{fmt}}{unit} (goal {op} {limit:g}{unit}) {'met' if met else 'missed'}")
    return met
