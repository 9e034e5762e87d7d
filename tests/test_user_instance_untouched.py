"""A test run leaves the user's instance exactly as it was (issue #10, "the test suite and the
benchmarks must not touch the user's instance").

Reproduces the reported set-up: a checkout whose ./.tenantatlas holds a demo instance (a registered
tenant, its embedded server running, a Dagster home), and `pytest` started from that checkout with no
TENANTATLAS_* variables set, as `./run test` does. The checkout is a copy of this one in a temporary
directory, so the user's real instance is never involved in proving the point. Before and after the
inner run, every table of every database on the demo's server and every file of ./.tenantatlas outside
the data directory are fingerprinted; they must be identical, and the inner session must leave no
server and no temporary home behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tenantatlas_pipelines.config import PROJECT_ROOT

COPIED = (
    "tenantatlas_pipelines", "tests", "sql", "bench", "pyproject.toml", "dagster.yaml", "workspace.yaml"
)
# Tests that, before the fix, wrote into the instance of the checkout they ran in: the CLI registry
# round trip and a Dagster sync (its runs went into the demo server's `dagster` database).
INNER_TESTS = (
    "tests/test_cli_store.py::test_tenants_and_selections_round_trip",
    "tests/test_dagster_cli.py::test_sync_json_succeeded_then_missing_json",
)
DEMO_TENANT = ("d3e0d3e0-0000-4000-8000-000000000001", "demo-contoso")


def _user_env(checkout: Path) -> dict[str, str]:
    """The environment of a user in a shell: none of the test session's TENANTATLAS_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENANTATLAS_", "PYTEST_", "DAGSTER_"))}
    env["PYTHONPATH"] = str(checkout)
    return env


def _tenantatlas(checkout: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "tenantatlas_pipelines", *args],
        cwd=checkout, env=_user_env(checkout), capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _server_fingerprint(server_url: str) -> dict[str, object]:
    """Databases on the server, and per table of each: row count and a digest of the rows."""
    from tenantatlas_pipelines.db import with_database

    found: dict[str, object] = {}
    with psycopg.connect(with_database(server_url, "postgres")) as conn:
        names = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate")]
    found["databases"] = sorted(names)
    for name in names:
        with psycopg.connect(with_database(server_url, name)) as conn:
            tables = conn.execute(
                "SELECT schemaname, tablename FROM pg_tables"
                " WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
            ).fetchall()
            for schema, table in tables:
                ident = sql.Identifier(schema, table)
                row = conn.execute(
                    sql.SQL("SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
                            " FROM {} t").format(ident)
                ).fetchone()
                found[f"{name}.{schema}.{table}"] = row
    return found


def _files_fingerprint(home: Path) -> dict[str, str]:
    return {
        str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file() and "pgdata" not in p.relative_to(home).parts
    }


def _leftover_homes() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("tenantatlas-test-*")}


@pytest.mark.slow
def test_a_test_run_leaves_the_demo_instance_exactly_as_it_was() -> None:
    # Not under pytest's tmp_path: every pytest session (the inner one too) resets pytest-of-<user> to
    # 0700, which would lock the embedded server's user (tenantatlas_pg, when root) out of its data.
    checkout = Path(tempfile.mkdtemp(prefix="tenantatlas-checkout-"))
    for name in COPIED:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, checkout / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, checkout / name)
    # The copy's own package is the one imported (not this checkout's editable install).
    where = _tenantatlas_import_path(checkout)
    assert where == checkout / "tenantatlas_pipelines", where

    home = checkout / ".tenantatlas"
    tenant_id, key = DEMO_TENANT
    _tenantatlas(checkout, "tenants", "add", "--tenant-id", tenant_id, "--key", key, "--name", "Demo Contoso")
    (home / "dagster").mkdir(exist_ok=True)
    (home / "dagster" / "dagster.yaml").write_text("# the demo's instance\n")
    from tenantatlas_pipelines.db.embedded import ensure_server, stop_server

    try:
        server_url = ensure_server(home).url()  # the demo's server, running as `./run demo` leaves it
        before = (_server_fingerprint(server_url), _files_fingerprint(home))
        homes_before = _leftover_homes()

        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *INNER_TESTS],
            cwd=checkout, env=_user_env(checkout), capture_output=True, text=True, timeout=900,
        )
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert "2 passed" in proc.stdout, proc.stdout[-2000:]

        after = (_server_fingerprint(ensure_server(home).url()), _files_fingerprint(home))
        assert after[1] == before[1], "files under the demo's .tenantatlas changed"
        changed = {k for k in set(before[0]) | set(after[0]) if before[0].get(k) != after[0].get(k)}
        assert not changed, f"the demo's databases changed: {sorted(changed)[:20]}"
        assert _leftover_homes() <= homes_before, "the inner session left its temporary home behind"
    finally:
        stop_server(home, mode="immediate")
        shutil.rmtree(checkout, ignore_errors=True)


def _tenantatlas_import_path(checkout: Path) -> Path:
    proc = subprocess.run(
        [sys.executable, "-c", "import tenantatlas_pipelines, pathlib;"
         " print(pathlib.Path(tenantatlas_pipelines.__file__).parent)"],
        cwd=checkout, env=_user_env(checkout), capture_output=True, text=True, timeout=60,
    )
    return Path(proc.stdout.strip())
