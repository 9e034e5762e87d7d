"""T020 and the ledger: upserts never duplicate, last_seen moves forward, runs are recorded whole.

Driven through the real engine and PostgreSQL with in-memory pages standing where Graph stands.
"""

from __future__ import annotations

import threading

import psycopg
import pytest

from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.errors import ErrorCode, TenantAtlasError
from tenantatlas_pipelines.store import sync_runs
from tenantatlas_pipelines.store.inventory import list_items
from tenantatlas_pipelines.store.missing import missing_items
from tenantatlas_pipelines.store.scope import tenant_scope
from tenantatlas_pipelines.store.selections import add_selection
from tenantatlas_pipelines.store.tenants import add_tenant
from tenantatlas_pipelines.sync import run_sync
from tests.support import TENANT_A, MemoryGraph, item, pages_of


@pytest.fixture
def tenant(conn: psycopg.Connection) -> str:
    add_tenant(conn, TENANT_A, "contoso", "Contoso")
    add_selection(conn, "dc", ["deviceConfiguration"])
    add_selection(conn, "dc-apps", ["deviceConfiguration", "mobileApp"])
    return TENANT_A


def _rows(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT policy_type, external_id, display_name, first_seen_at, last_seen_at, last_seen_sync_run_id "
        "FROM inventory_items ORDER BY 1, 2"
    ).fetchall()


def test_upsert_creates_no_duplicates_and_updates_last_seen(db: Database, conn, tenant: str) -> None:
    items = [item(f"id-{i}") for i in range(5)]
    # Graph returns id-1 twice in one run, on two different pages, and id-2 twice on one page.
    pages = [[items[0], items[1]], [items[1], items[2], items[2]], [items[3], items[4]]]
    first = run_sync(db, MemoryGraph({"deviceConfiguration": pages}), "contoso", "dc")
    assert first.status == "succeeded" and not first.had_errors
    assert (first.observed, first.new, first.changed) == (5, 5, 0)
    before = _rows(conn)
    assert len(before) == 5 and len({r[1] for r in before}) == 5

    items[3]["displayName"] = "renamed"
    second = run_sync(db, MemoryGraph({"deviceConfiguration": pages_of(items)}), "contoso", "dc")
    assert (second.observed, second.new, second.changed) == (5, 0, 1)
    after = _rows(conn)
    assert len(after) == 5
    for old, new in zip(before, after, strict=True):
        assert new[3] == old[3], "first_seen_at never moves"
        assert new[4] > old[4], "last_seen_at moves forward"
        assert new[5] == second.sync_run_id
    assert [r[2] for r in after if r[1] == "id-3"] == ["renamed"]


def test_last_seen_never_moves_backwards(db: Database, conn, tenant: str) -> None:
    run_sync(db, MemoryGraph({"deviceConfiguration": [[item("a")]]}), "contoso", "dc")
    scope = tenant_scope(conn, tenant)
    newest = list_items(scope)[0].last_seen_at
    # An older observation (e.g. a slow run of another selection) must not pull last_seen back.
    conn.execute("UPDATE inventory_items SET last_seen_at = last_seen_at + interval '1 hour'")
    conn.commit()
    run_sync(db, MemoryGraph({"deviceConfiguration": [[item("a", "older name")]]}), "contoso", "dc")
    row = list_items(scope)[0]
    assert row.last_seen_at > newest and row.display_name == "Policy a"


def test_concurrent_runs_of_two_selections_write_one_row_per_item(db: Database, conn, tenant: str) -> None:
    items = [item(f"shared-{i}") for i in range(300)]
    graph = MemoryGraph({"deviceConfiguration": pages_of(items, 50), "mobileApp": [[item("app")]]})
    results, errors = [], []

    def go(selection: str) -> None:
        try:
            results.append(run_sync(db, graph, "contoso", selection))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(s,)) for s in ("dc", "dc-apps")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and {r.status for r in results} == {"succeeded"}
    count, distinct = conn.execute(
        "SELECT count(*), count(DISTINCT (policy_type, external_id)) FROM inventory_items"
    ).fetchone()
    assert count == distinct == 301


def test_bad_items_are_counted_not_stored_and_do_not_fail_the_run(db: Database, conn, tenant: str) -> None:
    page = [
        item("good"),
        {"displayName": "no id"},
        "not an object",
        {"id": "x\x00y", "displayName": "n\x00ul"},
    ]
    result = run_sync(db, MemoryGraph({"deviceConfiguration": [page]}), "contoso", "dc")
    assert result.status == "succeeded"
    assert result.had_errors, "a run with rejected items has errors (missing confidence drops to low)"
    assert result.errors == 2 and result.observed == 2
    assert set(result.error_codes) == {"item_without_id", "item_invalid"}
    assert {r[1] for r in _rows(conn)} == {"good", "xy"}


def test_ledger_records_per_type_outcomes(db: Database, conn, tenant: str) -> None:
    graph = MemoryGraph(
        {"deviceConfiguration": [[item("a"), item("b")]], "mobileApp": [[item("m")]]},
        failures={"mobileApp": ErrorCode.GRAPH_FORBIDDEN},
    )
    result = run_sync(db, graph, "contoso", "dc-apps", dagster_run_id="dagster-123")
    assert result.status == "partial" and result.had_errors
    assert result.error_codes == ("graph_forbidden",)
    run = sync_runs.get_run(tenant_scope(conn, tenant), result.sync_run_id)
    assert run is not None and run.finished_at is not None and run.dagster_run_id == "dagster-123"
    by_type = {t.policy_type: t for t in run.types}
    assert by_type["deviceConfiguration"].status == "succeeded"
    assert by_type["deviceConfiguration"].items_observed == 2
    assert by_type["mobileApp"].status == "failed" and by_type["mobileApp"].error_code == "graph_forbidden"
    # Items read before the failure are kept: observations are facts, whatever happened later.
    assert by_type["mobileApp"].items_observed == 1
    assert run.items_observed == 3


def test_auth_failure_fails_every_type(db: Database, conn, tenant: str) -> None:
    graph = MemoryGraph({"deviceConfiguration": [[item("a")]]}, auth_failure=ErrorCode.AUTH_APP_NOT_CONSENTED)
    result = run_sync(db, graph, "contoso", "dc-apps")
    assert result.status == "failed" and result.error_codes == ("auth_app_not_consented",)
    assert {t.status for t in result.types} == {"failed"}
    assert _rows(conn) == []


def test_unexpected_exception_is_recorded_as_internal_error(db: Database, conn, tenant: str) -> None:
    class Exploding(MemoryGraph):
        def iter_pages(self, *args, **kwargs):
            raise RuntimeError("boom")

    result = run_sync(db, Exploding(), "contoso", "dc")
    assert result.status == "failed" and result.error_codes == ("internal_error",)


def test_unknown_tenant_and_selection_fail_clearly_and_write_nothing(db: Database, conn, tenant: str) -> None:
    with pytest.raises(TenantAtlasError) as info:
        run_sync(db, MemoryGraph(), "nobody", "dc")
    assert info.value.code == ErrorCode.UNKNOWN_TENANT and "contoso" in info.value.message
    with pytest.raises(TenantAtlasError) as info:
        run_sync(db, MemoryGraph(), "contoso", "nope")
    assert info.value.code == ErrorCode.UNKNOWN_SELECTION and "all" in info.value.message
    assert conn.execute("SELECT count(*) FROM inventory_sync_runs").fetchone() == (0,)


def test_staging_table_survives_rollbacks_of_later_pages(db: Database, conn, tenant: str) -> None:
    from tenantatlas_pipelines.normalize import normalize_item
    from tenantatlas_pipelines.policy_types import REGISTRY
    from tenantatlas_pipelines.store.inventory import UpsertCounts, write_page
    from tenantatlas_pipelines.store.selections import get_selection

    records = [normalize_item(REGISTRY["deviceConfiguration"], item(f"r{i}")) for i in range(3)]
    with db.connect() as session:
        scope = tenant_scope(session, tenant)
        run_id = sync_runs.start_run(scope, get_selection(session, "dc"), dagster_run_id=None, worker="t")

        def page() -> int:
            counts = write_page(
                scope, run_id, "deviceConfiguration", records, errors=1, filtered=0, meta_keys_dropped=2
            )
            return counts.new

        # Created inside an open transaction that then rolls back: the table is gone again...
        session.execute("SELECT 1")
        page()
        session.rollback()
        # ...and the next page creates it again instead of trusting a stale "already there".
        assert page() == 3
        session.commit()
        # A later page that fails and rolls back does not take the (committed) table with it.
        assert page() == 0
        session.rollback()
        assert page() == 0  # no missing table
        session.commit()
        # Only the committed pages were counted, in the same statement as their rows; the second one
        # listed the same objects again in the same run, so they are observed once.
        counted = session.execute(
            """SELECT pages, items_observed, items_new, items_errors, meta_keys_dropped
               FROM inventory_sync_run_types WHERE sync_run_id = %s""",
            (run_id,),
        ).fetchone()
        assert counted == (2, 3, 3, 2, 4)
        # A page of a type the run does not read is refused, not silently left uncounted.
        for refused in (records[:1], []):
            with pytest.raises(LookupError):
                write_page(scope, run_id, "mobileApp", refused, errors=0, filtered=0, meta_keys_dropped=0)
            session.rollback()
        # Two pages in one transaction: the statement takes its page out of the staging table, so the
        # second page does not write the first one again (ON COMMIT would only clear it at commit).
        fresh = [normalize_item(REGISTRY["deviceConfiguration"], item(f"n{i}")) for i in range(2)]
        for one in fresh:
            assert write_page(
                scope, run_id, "deviceConfiguration", [one], errors=0, filtered=0, meta_keys_dropped=0
            ) == UpsertCounts(1, 1, 0)
            assert session.execute("SELECT count(*) FROM pg_temp.inventory_stage").fetchone() == (0,)
        session.commit()
    stored = conn.execute(
        "SELECT count(*) FROM inventory_items WHERE external_id LIKE 'r%%' OR external_id LIKE 'n%%'"
    ).fetchone()
    assert stored == (5,)


def test_integrity_facts_are_aggregated_by_the_server(db: Database, conn, tenant: str) -> None:
    from tenantatlas_pipelines.store.inventory import integrity_facts

    pages = {"deviceConfiguration": [[item("dc-1"), item("dc-2")]], "mobileApp": [[item("app-1")]]}
    run = run_sync(db, MemoryGraph(pages), "contoso", "dc-apps")
    scope = tenant_scope(conn, tenant)
    clean = integrity_facts(scope, ["deviceConfiguration", "mobileApp"])
    assert (clean.items, clean.duplicates, clean.duplicate_examples) == (3, 0, [])
    assert set(clean.meta_keys) <= {"deviceConfiguration", "mobileApp"}
    # What a bug would leave behind: the same GUID in another case, and a key outside any whitelist.
    for external_id in ("DC-1", "Dc-2", "dC-2"):
        conn.execute(
            """INSERT INTO inventory_items (tenant_id, policy_type, external_id, display_name, meta_jsonb,
                   first_seen_at, last_seen_at, last_changed_at, last_seen_sync_run_id)
               VALUES (%s, 'deviceConfiguration', %s, 'x', '{"password": "x"}', now(), now(), now(), %s)""",
            (tenant, external_id, run.sync_run_id),
        )
    conn.commit()
    planted = integrity_facts(tenant_scope(conn, tenant), ["deviceConfiguration", "mobileApp"], examples=1)
    assert planted.items == 6
    assert planted.duplicates == 2, "dc-1 and dc-2 are each stored more than once"
    assert planted.duplicate_examples == [("deviceConfiguration", "dc-1")]
    assert "password" in planted.meta_keys["deviceConfiguration"]
    assert "password" not in planted.meta_keys.get("mobileApp", [])
    # Scoped to the types asked for.
    assert integrity_facts(tenant_scope(conn, tenant), ["mobileApp"]).items == 1


# --- issue 10: one id fold for normaliser, store and checks; filtered objects are seen ----------------
def _plant(conn: psycopg.Connection, tenant: str, run_id: int, *ids: str) -> None:
    """Rows as a writer that bypasses the normaliser (or an older release) would leave them."""
    for external_id in ids:
        conn.execute(
            """INSERT INTO inventory_items (tenant_id, policy_type, external_id, display_name, meta_jsonb,
                   first_seen_at, last_seen_at, last_changed_at, last_seen_sync_run_id)
               VALUES (%s, 'deviceConfiguration', %s, %s, '{}', now(), now(), now(), %s)""",
            (tenant, external_id, external_id, run_id),
        )
    conn.commit()


def test_the_duplicate_check_and_the_store_fold_ids_the_same_way(db: Database, conn, tenant: str) -> None:
    from tenantatlas_pipelines.defs.invariants import duplicate_identities
    from tenantatlas_pipelines.store.inventory import integrity_facts

    run = run_sync(db, MemoryGraph({"deviceConfiguration": [[item("seed")]]}), "contoso", "dc")
    # ASCII twins are duplicates; non-ASCII case pairs are not folded by either side (Graph ids are
    # ASCII, and only an ASCII fold is the same in Python and in PostgreSQL under any locale).
    ids = ["ABC-1", "abc-1", "Straße", "STRASSE", "strasse", "ǅ-x", "ǆ-X", "İd", "id"]
    _plant(conn, tenant, run.sync_run_id, *ids)
    facts = integrity_facts(tenant_scope(conn, tenant), ["deviceConfiguration"])
    python = duplicate_identities([("deviceConfiguration", i) for i in [*ids, "seed"]])
    assert facts.duplicate_examples == python == [("deviceConfiguration", "abc-1"),
                                                  ("deviceConfiguration", "strasse")]
    assert facts.duplicates == len(python)


def test_records_are_written_in_folded_case_whoever_built_them(db: Database, conn, tenant: str) -> None:
    from tenantatlas_pipelines.normalize import InventoryRecord
    from tenantatlas_pipelines.store.inventory import write_page

    run = run_sync(db, MemoryGraph({"deviceConfiguration": [[item("seed")]]}), "contoso", "dc")
    scope = tenant_scope(conn, tenant)
    for external_id in ("MIXED-Case-1", "mixed-case-1"):
        write_page(scope, run.sync_run_id, "deviceConfiguration", [InventoryRecord(external_id, "n", {}, 0)],
                   errors=0, filtered=0, meta_keys_dropped=0)
        conn.commit()
    assert [r[1] for r in _rows(conn)] == ["mixed-case-1", "seed"]


def test_a_filtered_observation_marks_a_stored_row_seen_and_never_inserts(
    db: Database, conn, tenant: str
) -> None:
    app = {"id": "app-1", "displayName": "Store app", "appAvailability": "global", "isAssigned": True}
    first = run_sync(db, MemoryGraph({"deviceConfiguration": [[item("dc-1")]], "mobileApp": [[app]]}),
                     "contoso", "dc-apps")
    unassigned = {**app, "id": "APP-1", "isAssigned": False}
    never_kept = {"id": "app-2", "appAvailability": "global", "isAssigned": False}
    second = run_sync(
        db, MemoryGraph({"deviceConfiguration": [[item("dc-1")]], "mobileApp": [[unassigned, never_kept]]}),
        "contoso", "dc-apps",
    )
    assert (second.status, second.had_errors, second.filtered) == ("succeeded", False, 2)
    rows = {r[1]: r for r in _rows(conn)}
    assert set(rows) == {"dc-1", "app-1"}, "a filtered object never becomes a row"
    assert rows["app-1"][5] == second.sync_run_id and rows["app-1"][2] == "Store app"
    scope = tenant_scope(conn, tenant)
    assert missing_items(scope, first.selection_hash).items == []
