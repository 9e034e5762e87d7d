"""The run engine (runs/): lost locks, termination, one type's unexpected failure, the dead-run sweep.

Real PostgreSQL and real processes; in-memory pages stand where Graph stands (the emulator versions of the
lock and cancel faults are in test_faults.py).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dagster import DagsterInstance, build_sensor_context

from tenantatlas_pipelines.config import PROJECT_ROOT
from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.defs.resources import InventoryDatabase
from tenantatlas_pipelines.defs.sensors import tenant_registry_sensor
from tenantatlas_pipelines.store import sync_runs
from tenantatlas_pipelines.store.locks import KEEPALIVE_IDLE_S, enable_keepalives, lock_is_held
from tenantatlas_pipelines.store.scope import tenant_scope
from tenantatlas_pipelines.store.selections import Selection, add_selection, get_selection
from tenantatlas_pipelines.store.tenants import add_tenant
from tenantatlas_pipelines.sync import run_sync
from tests.fault_helpers import kill_lock_session, wait_for
from tests.support import TENANT_A, MemoryGraph, MemoryPage, item

DC, APP = "deviceConfiguration", "mobileApp"


@pytest.fixture
def pair(conn: psycopg.Connection) -> Selection:
    add_tenant(conn, TENANT_A, "contoso", "Contoso")
    add_selection(conn, "dc-apps", [DC, APP])
    return add_selection(conn, "dc", [DC])


def _stored(conn: psycopg.Connection) -> set[str]:
    ids = {r[0] for r in conn.execute("SELECT external_id FROM inventory_items")}
    conn.commit()
    return ids


def _row(conn: psycopg.Connection, run_id: int) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT status, error_codes, finished_at IS NOT NULL FROM inventory_sync_runs WHERE id = %s",
        (run_id,),
    ).fetchone()
    conn.commit()
    assert row is not None
    return tuple(row)


class LockKillingGraph(MemoryGraph):
    """Page 1, then the run's lock session is terminated (as an idle-session reaper or a failover would),
    optionally a second run of the pair starts and finishes, then page 2 arrives."""

    def __init__(self, url: str, selection_hash: str, second_run: bool = False) -> None:
        super().__init__()
        self.url, self.selection_hash, self.second_run = url, selection_hash, second_run
        self.second: Any = None

    def iter_pages(self, tenant_id: str, policy_type: str, stats: Any = None) -> Iterator[MemoryPage]:
        yield MemoryPage([item("before-loss")])
        with psycopg.connect(self.url) as other:
            kill_lock_session(other, tenant_id, self.selection_hash)
        if self.second_run:
            self.second = run_sync(Database(self.url), MemoryGraph({DC: [[item("second")]]}), "contoso", "dc")
        yield MemoryPage([item("after-loss")])


def test_a_run_that_lost_its_lock_stops_as_failed_lock_lost(db: Database, conn, pair: Selection) -> None:
    result = run_sync(db, LockKillingGraph(db.url, pair.selection_hash), "contoso", "dc")
    assert (result.status, result.error_codes) == ("failed", ("lock_lost",))
    assert _row(conn, result.sync_run_id) == ("failed", ["lock_lost"], True)
    (dc,) = result.types
    assert (dc.status, dc.error_code, dc.pages) == ("failed", "lock_lost", 1)
    # The page committed while the lock was held is kept; nothing was committed after the loss.
    assert _stored(conn) == {"before-loss"}
    # The next run of the pair is not blocked and reads everything again.
    again = run_sync(db, MemoryGraph({DC: [[item("before-loss"), item("after-loss")]]}), "contoso", "dc")
    assert again.status == "succeeded" and _stored(conn) == {"before-loss", "after-loss"}


def test_a_run_closed_by_the_next_run_is_never_finalised_again(db: Database, conn, pair: Selection) -> None:
    """The issue's overlap: lock session dies, a second run marks the first run_abandoned and succeeds,
    then the first goes on — it must stop, and its row must keep saying what the second run said."""
    graph = LockKillingGraph(db.url, pair.selection_hash, second_run=True)
    first = run_sync(db, graph, "contoso", "dc")
    second = graph.second
    assert second is not None and second.status == "succeeded"
    assert first.status == "failed" and first.error_codes == ("run_abandoned",)
    assert _row(conn, first.sync_run_id) == ("failed", ["run_abandoned"], True)
    assert _row(conn, second.sync_run_id) == ("succeeded", [], True)
    assert _stored(conn) == {"before-loss", "second"}  # the first run's later page was not committed


def test_finalisation_moves_only_a_running_row_and_says_so(db: Database, conn, pair: Selection) -> None:
    scope = tenant_scope(conn, TENANT_A)
    run_id = sync_runs.start_run(scope, get_selection(conn, "dc"), dagster_run_id=None, worker="t")
    assert sync_runs.mark_abandoned(scope, pair.selection_hash) == [run_id]
    closed = sync_runs.finalize_run(scope, run_id, status="succeeded", error_codes=[], error_message=None)
    assert closed is False
    assert _row(conn, run_id) == ("failed", ["run_abandoned"], True)
    sync_runs.finish_type(
        scope,
        run_id,
        DC,
        status="succeeded",
        error_code=None,
        error_message=None,
        requests=5,
        throttled=0,
        retries=0,
    )
    types = conn.execute(
        "SELECT status, error_code, requests FROM inventory_sync_run_types WHERE sync_run_id = %s", (run_id,)
    ).fetchall()
    assert types == [("failed", "run_abandoned", 0)]


def _keepalive_idle_of_socket_on(port: int) -> int:
    """TCP_KEEPIDLE of this process's TCP socket bound to local `port` (found among our descriptors).
    libpq turns keepalives on by default with the kernel's idle time (7200 s): the idle time shows
    whether the run set its own."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(fd)))
        except OSError:
            continue
        try:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.getsockname()[1] == port:
                return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
        except OSError:
            pass
        finally:
            sock.close()
    raise AssertionError(f"no socket of this process on local port {port}")


def test_the_lock_session_has_tcp_keepalives(db: Database, conn, pair: Selection) -> None:
    """Both ends: this process's socket of the lock session has the short keepalive idle time while the
    run holds the lock, and the server-side settings are those enable_keepalives gives a session."""
    seen: dict[str, Any] = {}

    class Probe(MemoryGraph):
        def iter_pages(self, tenant_id: str, policy_type: str, stats: Any = None) -> Iterator[MemoryPage]:
            with psycopg.connect(db.url) as other:
                row = other.execute(
                    """SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                       WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()"""
                ).fetchone()
            assert row is not None
            seen["port"] = row[0]
            if row[0] is not None and row[0] > 0:
                seen["idle"] = _keepalive_idle_of_socket_on(row[0])
            yield MemoryPage([item("a")])

    assert run_sync(db, Probe(), "contoso", "dc").status == "succeeded"
    if seen["port"] is None or seen["port"] < 0:
        pytest.skip("the test server is reached over a unix socket: no TCP, no keepalives")
    assert seen["idle"] == KEEPALIVE_IDLE_S
    with db.connect(autocommit=True) as probe:
        enable_keepalives(probe)
        assert probe.execute("SHOW tcp_keepalives_idle").fetchone() == (str(KEEPALIVE_IDLE_S),)


def test_an_unexpected_exception_in_one_type_fails_only_that_type(
    db: Database, conn, pair: Selection
) -> None:
    class OneTypeExplodes(MemoryGraph):
        def iter_pages(self, tenant_id: str, policy_type: str, stats: Any = None) -> Iterator[MemoryPage]:
            if policy_type == APP:
                yield MemoryPage([item("app-1")])
                raise RecursionError("maximum recursion depth exceeded")
            yield from super().iter_pages(tenant_id, policy_type, stats)

    result = run_sync(db, OneTypeExplodes({DC: [[item("a"), item("b")]]}), "contoso", "dc-apps")
    assert (result.status, result.error_codes) == ("partial", ("internal_error",))
    by_type = {t.policy_type: t for t in result.types}
    assert (by_type[DC].status, by_type[DC].error_code, by_type[DC].items_observed) == ("succeeded", None, 2)
    assert (by_type[APP].status, by_type[APP].error_code) == ("failed", "internal_error")
    assert by_type[APP].error_message == "internal error: RecursionError"
    assert _stored(conn) == {"a", "b", "app-1"}  # the failing type's committed page is kept


# --- termination (a cancelled Dagster run) ---------------------------------------------------------------
def test_a_terminated_run_is_finalised_as_failed_run_cancelled(
    db: Database, conn, pair: Selection, tmp_path: Path
) -> None:
    """Dagster cancels a run by SIGTERM, which its interrupt handlers turn into a BaseException in the
    run's main thread: the row must not stay `running`, no page may commit after it, the lock is freed.
    The workers here sleep past the engine's grace period, so the row is closed while they still run."""
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.slow_sync", db.url, "contoso", "dc-apps", str(ready), "--dagster"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    firsts = [Path(f"{ready}-{t}") for t in (DC, APP)]
    try:
        wait_for(
            lambda: all(f.exists() for f in firsts) or proc.poll() is not None, "first pages", timeout=60
        )
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        (run_id,) = [
            r[0] for r in conn.execute("SELECT id FROM inventory_sync_runs WHERE status = 'running'")
        ]
        conn.commit()
        os.kill(proc.pid, signal.SIGTERM)
        wait_for(lambda: _row(conn, run_id)[0] != "running", "the cancelled run to be finalised", timeout=60)
        Path(f"{ready}.release").write_text("go")  # the workers now offer a page after the cancel
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "DagsterExecutionInterruptedError" in err  # the termination went on after finalising
    assert _row(conn, run_id) == ("failed", ["run_cancelled"], True)
    types = dict(
        conn.execute(
            "SELECT policy_type, status FROM inventory_sync_run_types WHERE sync_run_id = %s", (run_id,)
        ).fetchall()
    )
    assert types == {DC: "failed", APP: "failed"}
    assert not lock_is_held(conn, tenant_scope(conn, TENANT_A), get_selection(conn, "dc-apps").selection_hash)
    # Pages committed before the cancel are kept, none after it.
    assert _stored(conn) == {f"{DC}-first", f"{APP}-first"}


# --- the sweep: dead rows whatever their selection hash ------------------------------------------------
def test_the_registry_sensor_finalises_running_rows_whose_worker_is_gone(
    db: Database, conn, pair: Selection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A killed run whose pair never runs again (selection redefined, tenant disabled) is closed by the
    tenant-registry sensor; a live run's row (its lock held) is left alone."""
    dead_ready, live_ready = tmp_path / "dead", tmp_path / "live"
    dead = subprocess.Popen(
        [sys.executable, "-m", "tests.slow_sync", db.url, "contoso", "dc", str(dead_ready)], cwd=PROJECT_ROOT
    )
    live = subprocess.Popen(
        [sys.executable, "-m", "tests.slow_sync", db.url, "contoso", "dc-apps", str(live_ready)],
        cwd=PROJECT_ROOT,
    )
    try:
        wait_for(
            lambda: dead_ready.exists() and live_ready.exists(), "both runs to commit a page", timeout=60
        )
        rows = dict(
            conn.execute("SELECT selection_name, id FROM inventory_sync_runs WHERE status = 'running'")
        )
        conn.commit()
        dead.kill()
        dead.wait()
        scope = tenant_scope(conn, TENANT_A)
        wait_for(lambda: not lock_is_held(conn, scope, pair.selection_hash), "the dead run's lock to go")
        conn.commit()
        monkeypatch.setenv("TENANTATLAS_DATABASE_URL", db.url)
        with (
            DagsterInstance.ephemeral() as instance,
            build_sensor_context(instance=instance, resources={"inventory_db": InventoryDatabase()}) as ctx,
        ):
            tenant_registry_sensor(ctx)
        assert _row(conn, rows["dc"]) == ("failed", ["run_abandoned"], True)
        assert _row(conn, rows["dc-apps"]) == ("running", [], False)
        pending = conn.execute(
            "SELECT count(*) FROM inventory_sync_run_types WHERE sync_run_id = %s AND status = 'pending'",
            (rows["dc"],),
        ).fetchone()
        assert pending == (0,)
    finally:
        for p in (dead, live):
            if p.poll() is None:
                p.kill()
                p.wait()
