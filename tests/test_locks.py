"""T010: one run per (tenant, selection_hash) at a time, across real processes; kill -9 leaves no lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tenantatlas_pipelines.config import PROJECT_ROOT
from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.store.locks import lock_is_held
from tenantatlas_pipelines.store.scope import tenant_scope
from tenantatlas_pipelines.store.selections import add_selection
from tenantatlas_pipelines.store.tenants import add_tenant
from tenantatlas_pipelines.sync import run_sync
from tests.support import TENANT_A, MemoryGraph, item


@pytest.fixture
def hanging_sync(db: Database, conn: psycopg.Connection, tmp_path: Path):
    add_tenant(conn, TENANT_A, "contoso", "Contoso")
    sel = add_selection(conn, "dc", ["deviceConfiguration"])
    add_selection(conn, "dc-apps", ["deviceConfiguration", "mobileApp"])
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.slow_sync", db.url, "contoso", "dc", str(ready)], cwd=PROJECT_ROOT
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None, "the slow sync process died"
        assert time.monotonic() < deadline, "the slow sync process never wrote its page"
        time.sleep(0.05)
    yield proc, sel
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_second_run_of_the_same_pair_is_skipped_and_does_nothing(db: Database, conn, hanging_sync) -> None:
    _, sel = hanging_sync
    assert lock_is_held(conn, tenant_scope(conn, TENANT_A), sel.selection_hash)
    graph = MemoryGraph({"deviceConfiguration": [[item("should-not-be-written")]]})
    result = run_sync(db, graph, "contoso", "dc")
    assert result.status == "skipped" and result.error_codes == ("lock_held",)
    assert result.requests == 0
    ids = {r[0] for r in conn.execute("SELECT external_id FROM inventory_items")}
    assert ids == {"deviceconfiguration-first"}  # stored with its id folded (normalize.fold_id)
    # Another selection of the same tenant is a different pair and runs normally.
    other = run_sync(
        db, MemoryGraph({"deviceConfiguration": [[item("x")]], "mobileApp": [[]]}), "contoso", "dc-apps"
    )
    assert other.status == "succeeded"


def test_kill_9_leaves_no_lock_and_the_next_run_finalises_the_abandoned_row(
    db: Database, conn, hanging_sync
) -> None:
    proc, sel = hanging_sync
    running = conn.execute("SELECT id FROM inventory_sync_runs WHERE status = 'running'").fetchall()
    assert len(running) == 1
    conn.commit()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    scope = tenant_scope(conn, TENANT_A)
    deadline = time.monotonic() + 10
    while lock_is_held(conn, scope, sel.selection_hash):
        assert time.monotonic() < deadline, "the killed process's lock was not released"
        conn.commit()
        time.sleep(0.05)
    result = run_sync(
        db, MemoryGraph({"deviceConfiguration": [[item("deviceConfiguration-first")]]}), "contoso", "dc"
    )
    assert result.status == "succeeded"
    abandoned = conn.execute(
        "SELECT status, error_codes, finished_at IS NOT NULL FROM inventory_sync_runs WHERE id = %s",
        (running[0][0],),
    ).fetchone()
    assert abandoned == ("failed", ["run_abandoned"], True)
    types = conn.execute(
        "SELECT status, error_code FROM inventory_sync_run_types WHERE sync_run_id = %s", (running[0][0],)
    ).fetchall()
    assert types == [("failed", "run_abandoned")]
    # The page the dead process committed is kept exactly once; nothing half-written appeared.
    assert conn.execute("SELECT count(*) FROM inventory_items").fetchone() == (1,)
