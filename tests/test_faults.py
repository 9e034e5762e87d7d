"""Fault injection with real processes, the real PostgreSQL and the emulator (real TLS, real MSAL).

Every test asserts the database afterwards — ledger rows, per-type outcomes, inventory, missing items —
not only exit codes or return values. Retry budgets are small (tests/fault_helpers.FAST_RETRIES) and
tenants tiny (`small_tenants()`), so the file runs in well under a minute on two cores. No assertion
here is about time: timings belong in bench/.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tenantatlas_pipelines.db import Database, application_name, ensure_database
from tenantatlas_pipelines.db.embedded import ensure_server, stop_server
from tenantatlas_pipelines.emulator import Emulator, Fault, TenantSpec
from tenantatlas_pipelines.graph.client import GraphClient
from tenantatlas_pipelines.policy_types import REGISTRY
from tenantatlas_pipelines.store.missing import missing_items
from tenantatlas_pipelines.store.scope import TenantScope, tenant_scope
from tenantatlas_pipelines.store.selections import get_selection
from tenantatlas_pipelines.sync import SyncResult, run_sync
from tests.fault_helpers import (
    assert_counts_match_inventory,
    child_result,
    expected_ids,
    graph_env,
    graph_log,
    graph_settings,
    inventory,
    kill_lock_session,
    register,
    run_types,
    runs,
    spawn_sync,
    wait_for,
)

ALL_TYPES = sorted(REGISTRY)


@pytest.fixture
def contoso(emulator: Emulator, conn: psycopg.Connection) -> TenantSpec:
    """The small contoso tenant (19 types, ~60 objects, settings catalog on two pages), registered."""
    spec = emulator.tenant("contoso")
    register(conn, spec)
    return spec


def sync_now(
    db: Database, emu: Emulator, tenant: str = "contoso", selection: str = "all", **settings: float | int
) -> SyncResult:
    """One in-process production sync (fresh GraphClient: no token cached from an earlier run)."""
    with GraphClient(graph_settings(emu, **settings)) as graph:
        return run_sync(db, graph, tenant, selection)


def running_pages(conn: psycopg.Connection, tenant_id: str) -> int:
    """Pages committed so far by the tenant's runs that are still `running`."""
    conn.commit()
    row = conn.execute(
        """SELECT coalesce(sum(t.pages), 0) FROM inventory_sync_run_types t
           JOIN inventory_sync_runs r ON r.id = t.sync_run_id
           WHERE r.tenant_id = %s AND r.status = 'running'""",
        (tenant_id,),
    ).fetchone()
    conn.commit()
    return int(row[0]) if row else 0


def other_sessions(conn: psycopg.Connection) -> int:
    """Sessions on this database of other processes (the children's, while they live); sessions this
    test process keeps pooled (e.g. Dagster resources of earlier tests) are not the children's."""
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND application_name <> %s",
        (application_name(),),
    ).fetchone()
    conn.commit()
    return int(row[0]) if row else 0


def advisory_lock_held(conn: psycopg.Connection, scope: TenantScope, selection_hash: str) -> bool:
    """store.locks.lock_is_held, limited to this database: advisory locks are per database, and other
    test sessions on the shared server hold locks with the same key in theirs."""
    row = conn.execute(
        """SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND ((classid::bigint << 32) | objid::bigint)
                  = hashtextextended('tenantatlas-sync:' || %s || ':' || %s, 0)""",
        (scope.tenant_id, selection_hash),
    ).fetchone()
    conn.commit()
    return bool(row and row[0])


def assert_abandoned(conn: psycopg.Connection, run_id: int, pending_before: set[str]) -> None:
    """The dead run was finalised by the next run: failed + run_abandoned, its unread types too."""
    row = next(r for r in runs(conn, tenant_id_of(conn, run_id)) if r["id"] == run_id)
    assert (row["status"], row["error_codes"], row["had_errors"]) == ("failed", ["run_abandoned"], True)
    assert row["finished_at"] is not None
    types = run_types(conn, run_id)
    for key in pending_before:
        assert (types[key]["status"], types[key]["error_code"]) == ("failed", "run_abandoned"), key
    assert not [k for k, t in types.items() if t["status"] == "pending"]


def tenant_id_of(conn: psycopg.Connection, run_id: int) -> str:
    row = conn.execute("SELECT tenant_id FROM inventory_sync_runs WHERE id = %s", (run_id,)).fetchone()
    conn.commit()
    assert row is not None
    return str(row[0])


# --- a worker killed mid-run ---------------------------------------------------------------------------
def test_sigkill_mid_run_loses_and_duplicates_nothing_and_the_next_run_finalises_it(
    db: Database, conn: psycopg.Connection, emulator: Emulator, contoso: TenantSpec
) -> None:
    tid = contoso.tenant_id
    emulator.inject(Fault("latency", tenant_id=tid, latency_ms=250))  # a run of a few seconds
    proc = spawn_sync(db.url, graph_env(emulator), "contoso", "all")
    try:
        wait_for(lambda: running_pages(conn, tid) > 0 or proc.poll() is not None, "a committed page")
        assert proc.poll() is None, "the sync finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # A COMMIT the child sent just before it died may still complete on the server: wait until the
    # server has ended every session of the dead process, then read one settled state.
    wait_for(lambda: other_sessions(conn) == 0, "the dead process's sessions to end", timeout=10)

    (dead,) = runs(conn, tid)
    assert dead["status"] == "running" and dead["finished_at"] is None
    dead_types = run_types(conn, dead["id"])
    pending = {k for k, t in dead_types.items() if t["status"] == "pending"}
    assert pending, "the kill was not mid-run"
    # Nothing half-written: every committed page is in inventory together with its counts.
    assert_counts_match_inventory(conn, tid, dead["id"])
    before = inventory(conn, tid)
    assert before and len(before) == sum(t["items_observed"] for t in dead_types.values())

    scope = tenant_scope(conn, tid)
    selection = get_selection(conn, "all")
    assert not advisory_lock_held(conn, scope, selection.selection_hash), "kill -9 must not leave the lock"

    emulator.clear_faults()
    result = sync_now(db, emulator)
    assert (result.status, result.had_errors, result.error_codes) == ("succeeded", False, ())
    assert_abandoned(conn, dead["id"], pending)

    after = inventory(conn, tid)
    expected = expected_ids(emulator, tid, ALL_TYPES)
    assert set(after) == expected, "items lost or invented"
    assert result.observed == len(expected) and result.new == len(expected) - len(before)
    for key, row in before.items():  # the dead run's items kept their identity: no duplicate, no reset
        assert after[key].first_seen_at == row.first_seen_at
    assert {r.last_seen_sync_run_id for r in after.values()} == {result.sync_run_id}
    missing = missing_items(scope, selection.selection_hash)
    assert (missing.run_id, missing.run_status, missing.items) == (result.sync_run_id, "succeeded", [])


# --- the run's lock session killed mid-run (idle-session reaper, failover) -------------------------------
def test_a_run_whose_lock_session_is_killed_stops_as_failed_lock_lost(
    db: Database, conn: psycopg.Connection, emulator: Emulator, contoso: TenantSpec
) -> None:
    tid = contoso.tenant_id
    emulator.inject(Fault("latency", tenant_id=tid, latency_ms=250))  # a run of a few seconds
    proc = spawn_sync(db.url, graph_env(emulator), "contoso", "all")
    selection = get_selection(conn, "all")
    try:
        wait_for(lambda: running_pages(conn, tid) > 0 or proc.poll() is not None, "a committed page")
        assert proc.poll() is None, "the sync finished before its lock could be taken away"
        kill_lock_session(conn, tid, selection.selection_hash)
        result = child_result(proc, timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (run,) = runs(conn, tid)
    assert (result["status"], result["error_codes"]) == ("failed", ["lock_lost"])
    assert (run["status"], run["error_codes"], run["had_errors"]) == ("failed", ["lock_lost"], True)
    types = run_types(conn, run["id"])
    assert not [k for k, t in types.items() if t["status"] == "pending"]
    assert {t["error_code"] for t in types.values() if t["status"] == "failed"} == {"lock_lost"}
    assert [k for k, t in types.items() if t["status"] == "failed"], "no type noticed the lost lock"
    assert_counts_match_inventory(conn, tid, run["id"])  # every committed page is whole and counted

    emulator.clear_faults()
    again = sync_now(db, emulator)
    assert (again.status, again.error_codes) == ("succeeded", ())
    assert set(inventory(conn, tid)) == expected_ids(emulator, tid, ALL_TYPES)
    assert runs(conn, tid)[0]["error_codes"] == ["lock_lost"]  # the next run left the closed row alone


# --- a cancelled Dagster run ------------------------------------------------------------------------------
def test_a_cancelled_run_is_finalised_failed_run_cancelled_and_frees_its_lock(
    db: Database, conn: psycopg.Connection, emulator: Emulator, contoso: TenantSpec
) -> None:
    tid = contoso.tenant_id
    emulator.inject(Fault("latency", tenant_id=tid, latency_ms=250))
    proc = spawn_sync(db.url, graph_env(emulator), "contoso", "all", dagster_interrupts=True)
    try:
        wait_for(lambda: running_pages(conn, tid) > 0 or proc.poll() is not None, "a committed page")
        assert proc.poll() is None, "the sync finished before it could be cancelled"
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0 and "DagsterExecutionInterruptedError" in err
    (run,) = runs(conn, tid)
    assert (run["status"], run["error_codes"], run["had_errors"]) == ("failed", ["run_cancelled"], True)
    assert run["finished_at"] is not None
    types = run_types(conn, run["id"])
    assert not [k for k, t in types.items() if t["status"] == "pending"]
    assert {t["error_code"] for t in types.values() if t["status"] == "failed"} == {"run_cancelled"}
    assert_counts_match_inventory(conn, tid, run["id"])
    assert not advisory_lock_held(conn, tenant_scope(conn, tid), get_selection(conn, "all").selection_hash)

    emulator.clear_faults()
    again = sync_now(db, emulator)
    assert (again.status, again.error_codes) == ("succeeded", ())
    assert runs(conn, tid)[0]["error_codes"] == ["run_cancelled"]


# --- PostgreSQL restarted under a running sync ---------------------------------------------------------
@pytest.fixture
def dedicated_server() -> Iterator[Path]:
    """A PostgreSQL server of this test alone (never restart the shared test server).

    Not under tmp_path: as root the server runs as another user that must traverse its home's parents,
    and every pytest session that starts resets /tmp/pytest-of-root to mode 0700.
    """
    home = Path(tempfile.mkdtemp(prefix="tenantatlas-faults-pg-"))
    ensure_server(home)
    try:
        yield home
    finally:
        stop_server(home, "immediate")
        shutil.rmtree(home, ignore_errors=True)


def _dedicated_db(home: Path) -> Database:
    server = ensure_server(home)
    ensure_database(server.url(), "tenantatlas")
    return Database(server.url("tenantatlas"))


def test_postgres_restart_mid_run_fails_the_run_with_database_unavailable_and_the_next_run_recovers(
    dedicated_server: Path, emulator: Emulator
) -> None:
    db = _dedicated_db(dedicated_server)
    db.migrate()
    spec = emulator.tenant("contoso")
    tid = spec.tenant_id
    with db.connect() as conn:
        register(conn, spec)
    emulator.inject(Fault("latency", tenant_id=tid, latency_ms=250))
    proc = spawn_sync(db.url, graph_env(emulator), "contoso", "all")
    try:
        with db.connect() as conn:
            wait_for(lambda: running_pages(conn, tid) > 0 or proc.poll() is not None, "a committed page")
        assert proc.poll() is None, "the sync finished before the database went away"
        stop_server(dedicated_server, "fast")  # terminates every session, mid-page or not
        outcome = child_result(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert outcome["error_code"] == "database_unavailable", outcome
    assert proc.returncode == 3

    # The server comes back (on a new port: ensure_server picks one) and the next run uses the new URL.
    db = _dedicated_db(dedicated_server)
    with db.connect() as conn:
        (dead,) = runs(conn, tid)
        # The ledger row could not be finalised while the server was down: it is still `running`.
        assert dead["status"] == "running" and dead["finished_at"] is None
        pending = {k for k, t in run_types(conn, dead["id"]).items() if t["status"] == "pending"}
        # No half-written page became visible: what the ledger counts is exactly what is stored.
        assert_counts_match_inventory(conn, tid, dead["id"])
        before = inventory(conn, tid)

        emulator.clear_faults()
        result = sync_now(db, emulator)
        assert (result.status, result.error_codes) == ("succeeded", ())
        assert_abandoned(conn, dead["id"], pending)
        after = inventory(conn, tid)
        assert set(after) == expected_ids(emulator, tid, ALL_TYPES)
        assert all(after[k].first_seen_at == r.first_seen_at for k, r in before.items())
        assert [r["status"] for r in runs(conn, tid)] == ["failed", "succeeded"]


# --- throttling ----------------------------------------------------------------------------------------
def test_half_of_all_graph_requests_throttled_the_run_still_succeeds(
    db: Database, conn: psycopg.Connection, emulator: Emulator, contoso: TenantSpec
) -> None:
    tid = contoso.tenant_id
    # Every 2nd Graph request of the tenant is a 429 without Retry-After (Intune's habit). One request
    # at a time, so the counting fault alternates strictly: each page is throttled at most once.
    emulator.inject(Fault("throttle", tenant_id=tid, ratio=0.5))
    result = sync_now(db, emulator, per_tenant_concurrency=1)

    log = graph_log(emulator, tid)
    throttled = [r for r in log if r.status == 429]
    assert len(throttled) == len(log) // 2 and len(throttled) >= 15
    assert (result.status, result.had_errors, result.error_codes) == ("succeeded", False, ())
    (run,) = runs(conn, tid)
    assert run["status"] == "succeeded"
    assert (run["requests"], run["throttled"]) == (len(log), len(throttled))
    assert run["retries"] >= len(throttled)
    assert set(inventory(conn, tid)) == expected_ids(emulator, tid, ALL_TYPES)
    missing = missing_items(tenant_scope(conn, tid), get_selection(conn, "all").selection_hash)
    assert missing.run_status == "succeeded" and missing.items == []


# --- one type broken, the others fine --------------------------------------------------------------------
def test_a_type_answering_500_to_every_page_makes_the_run_partial_and_its_items_low_confidence(
    db: Database, conn: psycopg.Connection, emulator: Emulator, contoso: TenantSpec
) -> None:
    tid = contoso.tenant_id
    first = sync_now(db, emulator)
    assert first.status == "succeeded"
    before = inventory(conn, tid)
    gone_ca = emulator.objects(tid, "conditionalAccessPolicy")[0]["id"]
    emulator.remove_object(tid, "conditionalAccessPolicy", gone_ca)
    gone_dc = emulator.objects(tid, "deviceConfiguration")[0]["id"]
    emulator.remove_object(tid, "deviceConfiguration", gone_dc)
    emulator.clear_log()
    emulator.inject(Fault("status", status=500, tenant_id=tid, policy_type="deviceConfiguration"))

    second = sync_now(db, emulator)

    assert (second.status, second.error_codes) == ("partial", ("graph_server_error",))
    types = run_types(conn, second.sync_run_id)
    assert (types["deviceConfiguration"]["status"], types["deviceConfiguration"]["error_code"]) == (
        "failed",
        "graph_server_error",
    )
    assert types["deviceConfiguration"]["items_observed"] == 0
    assert all(t["status"] == "succeeded" for k, t in types.items() if k != "deviceConfiguration")
    dc_requests = [r for r in graph_log(emulator, tid) if r.policy_type == "deviceConfiguration"]
    assert 1 < len(dc_requests) <= 4 and {r.status for r in dc_requests} == {500}  # retried, bounded

    after = inventory(conn, tid)
    assert set(after) == set(before), "a failed type or a removed object must never delete a row"
    others = expected_ids(emulator, tid, [k for k in ALL_TYPES if k != "deviceConfiguration"])
    assert {k for k, r in after.items() if r.last_seen_sync_run_id == second.sync_run_id} == others
    assert {r.last_seen_sync_run_id for k, r in after.items() if k[0] == "deviceConfiguration"} == {
        first.sync_run_id
    }

    missing = missing_items(tenant_scope(conn, tid), second.selection_hash)
    assert missing.run_status == "partial" and missing.high == 0
    reasons = {(i.policy_type, i.external_id): (i.confidence, i.reason) for i in missing.items}
    dc_keys = {k for k in before if k[0] == "deviceConfiguration"}
    assert {k for k in reasons if k[0] == "deviceConfiguration"} == dc_keys
    assert all(reasons[k] == ("low", "type_failed") for k in dc_keys)
    assert reasons[("conditionalAccessPolicy", gone_ca)] == ("low", "run_incomplete")
    assert len(reasons) == len(dc_keys) + 1


def test_a_truncated_page_fails_its_type_and_keeps_the_pages_before_it(
    db: Database, conn: psycopg.Connection, emulator: Emulator, contoso: TenantSpec
) -> None:
    tid = contoso.tenant_id
    # Settings catalog pages hold 25 items; the tenant has 30. Page 2 is cut in the middle of the JSON.
    emulator.inject(
        Fault("truncated_page", tenant_id=tid, policy_type="settingsCatalogPolicy", ratio=0.5, count=1)
    )
    result = sync_now(db, emulator)

    assert (result.status, result.error_codes) == ("partial", ("graph_invalid_response",))
    sc = run_types(conn, result.sync_run_id)["settingsCatalogPolicy"]
    assert (sc["status"], sc["error_code"], sc["pages"], sc["items_observed"]) == (
        "failed",
        "graph_invalid_response",
        1,
        25,
    )
    stored = {k for k in inventory(conn, tid) if k[0] == "settingsCatalogPolicy"}
    listing = [o["id"] for o in emulator.objects(tid, "settingsCatalogPolicy")]
    assert len(listing) == 30 and stored == {("settingsCatalogPolicy", i) for i in listing[:25]}
    others = expected_ids(emulator, tid, [k for k in ALL_TYPES if k != "settingsCatalogPolicy"])
    assert {k for k in inventory(conn, tid) if k[0] != "settingsCatalogPolicy"} == others
    assert_counts_match_inventory(conn, tid, result.sync_run_id)

    retry = sync_now(db, emulator)  # the fault hit once: the next run reads everything
    assert retry.status == "succeeded" and retry.new == 5
    assert set(inventory(conn, tid)) == expected_ids(emulator, tid, ALL_TYPES)


def test_a_nextlink_loop_is_detected_and_recorded_on_its_type(
    db: Database, conn: psycopg.Connection, emulator: Emulator, contoso: TenantSpec
) -> None:
    tid = contoso.tenant_id
    emulator.inject(Fault("nextlink_loop", tenant_id=tid, policy_type="autopilotDeploymentProfile"))
    result = sync_now(db, emulator)

    assert (result.status, result.error_codes) == ("partial", ("graph_paging_loop",))
    ap = run_types(conn, result.sync_run_id)["autopilotDeploymentProfile"]
    assert (ap["status"], ap["error_code"]) == ("failed", "graph_paging_loop")
    ap_requests = [r for r in graph_log(emulator, tid) if r.policy_type == "autopilotDeploymentProfile"]
    assert 1 <= len(ap_requests) <= 2, "the loop must stop at once, not read the same page forever"
    assert ap["requests"] == len(ap_requests)
    # The looping page itself was listed once and is stored once; the loop adds nothing.
    assert set(inventory(conn, tid)) == expected_ids(emulator, tid, ALL_TYPES)
    assert ap["items_observed"] == len(emulator.objects(tid, "autopilotDeploymentProfile"))


# --- Entra down ----------------------------------------------------------------------------------------
def test_token_endpoint_down_fails_the_run_with_auth_failed_and_touches_no_item(
    db: Database, conn: psycopg.Connection, emulator: Emulator, contoso: TenantSpec
) -> None:
    tid = contoso.tenant_id
    first = sync_now(db, emulator)
    assert first.status == "succeeded"
    before = inventory(conn, tid)
    emulator.clear_log()
    emulator.inject(Fault("token_down", tenant_id=tid))

    down = sync_now(db, emulator)  # a new client: no token in any cache

    assert (down.status, down.error_codes, down.requests) == ("failed", ("auth_failed",), 0)
    types = run_types(conn, down.sync_run_id)
    assert {(t["status"], t["error_code"]) for t in types.values()} == {("failed", "auth_failed")}
    assert graph_log(emulator, tid) == [], "no Graph request without a token"
    assert 1 <= len(graph_log(emulator, tid, "token")) <= 8, "token requests must be bounded"
    assert inventory(conn, tid) == before, "a failed run changes no item"
    missing = missing_items(tenant_scope(conn, tid), down.selection_hash)
    # Every item reads "we could not look", never "it is gone".
    assert missing.run_status == "failed" and missing.high == 0
    assert {(i.confidence, i.reason) for i in missing.items} == {("low", "type_failed")}
    assert len(missing.items) == len(before)

    emulator.clear_faults()
    again = sync_now(db, emulator)
    assert again.status == "succeeded"
    assert missing_items(tenant_scope(conn, tid), again.selection_hash).items == []


# --- twenty triggers of one partition --------------------------------------------------------------------
def test_twenty_concurrent_triggers_of_one_partition_do_the_work_exactly_once(
    db: Database, conn: psycopg.Connection, emulator: Emulator, contoso: TenantSpec, tmp_path: Path
) -> None:
    tid = contoso.tenant_id
    # The winner's run lasts several seconds (one slow collection), far longer than it takes 20
    # released processes to reach the lock.
    emulator.inject(Fault("latency", tenant_id=tid, policy_type="roleScopeTag", latency_ms=4000))
    gate = tmp_path / "go"
    env = graph_env(emulator)
    procs = [
        spawn_sync(db.url, env, "contoso", "all", ready=tmp_path / f"ready-{n}", gate=gate) for n in range(20)
    ]
    try:
        wait_for(
            lambda: all((tmp_path / f"ready-{n}").exists() or procs[n].poll() is not None for n in range(20)),
            "20 sync processes to be ready",
            timeout=90,
        )
        assert all(p.poll() is None for p in procs), "a sync process died before the gate opened"
        gate.write_text("go")
        outcomes = [child_result(p, timeout=90) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    statuses = sorted(o["status"] for o in outcomes)
    assert statuses == ["skipped"] * 19 + ["succeeded"]
    ledger = runs(conn, tid)
    assert len(ledger) == 20
    (winner,) = [r for r in ledger if r["status"] != "skipped"]
    losers = [r for r in ledger if r["status"] == "skipped"]
    assert winner["status"] == "succeeded" and not winner["had_errors"]
    for r in losers:
        assert r["error_codes"] == ["lock_held"] and r["requests"] == 0 and r["items_observed"] == 0
        assert r["finished_at"] <= winner["finished_at"]  # refused while the winner held the lock
        assert run_types(conn, r["id"]) == {}
    expected = expected_ids(emulator, tid, ALL_TYPES)
    stored = inventory(conn, tid)
    assert set(stored) == expected and winner["items_new"] == winner["items_observed"] == len(expected)
    assert {r.last_seen_sync_run_id for r in stored.values()} == {winner["id"]}
    # Only the winner talked to Graph and Entra.
    assert len(graph_log(emulator, tid)) == winner["requests"]
    assert len(graph_log(emulator, tid, "token")) == 1
