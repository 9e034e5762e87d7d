"""Snapshot storage against the real PostgreSQL: content addressing, immutability, reads, isolation."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.errors import ErrorCode, TenantAtlasError
from tenantatlas_pipelines.snapshots import GroupType, Reference, RefKind
from tenantatlas_pipelines.snapshots.synthetic import SyntheticObject, group_assignment, insert_snapshot
from tenantatlas_pipelines.store import snapshot_runs
from tenantatlas_pipelines.store.object_versions import versions_of_object
from tenantatlas_pipelines.store.scope import ANALYST_ROLE, release, tenant_scope
from tenantatlas_pipelines.store.selections import add_selection
from tenantatlas_pipelines.store.snapshot_objects import object_in_snapshot, objects_of_snapshot
from tenantatlas_pipelines.store.snapshot_references import references_of_snapshot
from tenantatlas_pipelines.store.tenants import add_tenant
from tests.support import TENANT_A, TENANT_B

SALES = Reference(RefKind.GROUP, "g-sales", "Sales", GroupType.SECURITY)
WIN = Reference(RefKind.ASSIGNMENT_FILTER, "f-win", "Windows only")
DEFAULT_TAG = Reference(RefKind.SCOPE_TAG, "0", "Default")


def _objects(ssid: str = "corp", extra_group: bool = False) -> list[SyntheticObject]:
    assignments = [group_assignment("g-sales", filter_id="f-win")]
    if extra_group:
        assignments.append(group_assignment("g-gone", exclude=True))
    return [
        SyntheticObject("deviceConfiguration", "dc-1",
                        {"displayName": "Wi-Fi", "ssid": ssid, "roleScopeTagIds": ["0"],
                         "lastModifiedDateTime": "2026-01-01T00:00:00Z"}, assignments),
        SyntheticObject("deviceConfiguration", "dc-2", {"displayName": "Kiosk", "kioskMode": True}),
        SyntheticObject("settingsCatalogPolicy", "sc-1", {"name": "Defender", "settings": [
            {"id": "0", "settingInstance": {"settingDefinitionId": "defender_rtp",
                                            "choiceSettingValue": {"value": "defender_rtp_1"}}}]}),
    ]


@pytest.fixture
def setup(db: Database, conn: psycopg.Connection):
    add_tenant(conn, TENANT_A, "contoso", "Contoso")
    add_tenant(conn, TENANT_B, "fabrikam", "Fabrikam")
    selection = add_selection(conn, "cfg", ["deviceConfiguration", "settingsCatalogPolicy"])
    return selection


def _count(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def test_unchanged_second_snapshot_adds_no_versions(db: Database, setup) -> None:
    with db.connect() as conn:
        scope = tenant_scope(conn, TENANT_A)
        first = insert_snapshot(scope, setup, _objects(), references=[SALES, WIN, DEFAULT_TAG])
        versions = _count(conn, "object_versions")
        second = insert_snapshot(scope, setup, _objects(), references=[SALES, WIN, DEFAULT_TAG])
        assert versions == 3 and _count(conn, "object_versions") == 3
        run1, run2 = snapshot_runs.get_snapshot(scope, first), snapshot_runs.get_snapshot(scope, second)
        assert (run1.new_versions, run2.new_versions) == (3, 0)
        assert run2.objects == 3 and run2.status == "succeeded" and not run2.had_errors
        same = {o.external_id: o.version_id for o in objects_of_snapshot(scope, first)}
        assert same == {o.external_id: o.version_id for o in objects_of_snapshot(scope, second)}
        # A real change makes exactly one new version of exactly that object.
        third = insert_snapshot(scope, setup, _objects(ssid="guest"), references=[SALES, WIN, DEFAULT_TAG])
        assert snapshot_runs.get_snapshot(scope, third).new_versions == 1
        history = versions_of_object(scope, "deviceConfiguration", "dc-1")
        assert [v.snapshot_ids for v in history] == [(first, second), (third,)]
        assert history[0].first_snapshot_id == first


def test_objects_content_and_references_read_back(db: Database, setup) -> None:
    with db.connect() as conn:
        scope = tenant_scope(conn, TENANT_A)
        sid = insert_snapshot(scope, setup, _objects(extra_group=True), references=[SALES, WIN, DEFAULT_TAG])
        obj = object_in_snapshot(scope, sid, "deviceConfiguration", "dc-1")
        assert obj is not None and obj.display_name == "Wi-Fi"
        assert obj.content == {
            "displayName": "Wi-Fi", "ssid": "corp", "roleScopeTagIds": ["0"],
            "assignments": [  # a set, sorted by canonical JSON
                {"target_kind": "group", "group_id": "g-sales", "group_name": "Sales",
                 "filter_id": "f-win", "filter_name": "Windows only", "filter_mode": "include"},
                {"target_kind": "exclusion_group", "group_id": "g-gone"},
            ],
        }
        sc = object_in_snapshot(scope, sid, "settingsCatalogPolicy", "sc-1")
        assert sc is not None
        assert sc.content == {"name": "Defender", "settings": {"defender_rtp": "defender_rtp_1"}}
        # Stored and hashed: ids only; the names come from the snapshot's references on read.
        stored = object_in_snapshot(scope, sid, "deviceConfiguration", "dc-1", names=False)
        assert stored is not None and stored.content_hash == obj.content_hash
        assert "Sales" not in str(stored.content) and "g-sales" in str(stored.content)
        refs = {(r.kind, r.ref_id): r for r in references_of_snapshot(scope, sid)}
        assert refs[(RefKind.GROUP, "g-gone")].resolved is False
        assert refs[(RefKind.GROUP, "g-sales")] == SALES
        assert refs[(RefKind.SCOPE_TAG, "0")].name == "Default"
        run = snapshot_runs.get_snapshot(scope, sid)
        assert (run.references_total, run.references_unresolved) == (4, 1)
        assert [r.kind for r in references_of_snapshot(scope, sid, RefKind.GROUP)] == [RefKind.GROUP] * 2
        assert object_in_snapshot(scope, sid, "deviceConfiguration", "nope") is None


def test_latest_succeeded_skips_partial_and_other_lineages(db: Database, setup, conn) -> None:
    other = add_selection(conn, "dc", ["deviceConfiguration"])
    with db.connect() as c:
        scope = tenant_scope(c, TENANT_A)
        assert snapshot_runs.latest_succeeded_snapshot(scope, setup.selection_hash) is None
        good = insert_snapshot(scope, setup, _objects())
        partial = insert_snapshot(scope, setup, _objects(), status="partial",
                                  failed_types={"settingsCatalogPolicy": "graph_forbidden"})
        insert_snapshot(scope, other, _objects()[:2])
        latest = snapshot_runs.latest_succeeded_snapshot(scope, setup.selection_hash)
        assert latest is not None and latest.id == good
        run = snapshot_runs.get_snapshot(scope, partial)
        assert run.status == "partial" and run.had_errors and run.error_codes == ["graph_forbidden"]
        assert not run.read_cleanly("settingsCatalogPolicy") and run.read_cleanly("deviceConfiguration")
        assert snapshot_runs.latest_snapshot(scope, setup.selection_hash, statuses=("partial",)).id == partial
        assert snapshot_runs.latest_snapshot(scope, setup.selection_hash, before_id=good) is None
        assert [r.id for r in snapshot_runs.list_snapshots(scope, setup.selection_hash)] == [partial, good]


def test_finalised_snapshots_and_versions_are_immutable(db: Database, setup) -> None:
    with db.connect() as conn:
        scope = tenant_scope(conn, TENANT_A)
        sid = insert_snapshot(scope, setup, _objects())
        # The pipeline role may update a running ledger row: the trigger is what stops it here.
        with pytest.raises(psycopg.errors.CheckViolation, match="snapshot_immutable"):
            conn.execute("UPDATE snapshot_runs SET status = 'failed' WHERE id = %s", (sid,))
        conn.rollback()
        release(conn)  # the table owner (not subject to grants or RLS) is refused by the triggers too
        statements = [
            ("UPDATE object_versions SET content = '{}'", ()),
            ("DELETE FROM object_versions", ()),
            ("UPDATE snapshot_runs SET status = 'failed' WHERE id = %s", (sid,)),
            ("DELETE FROM snapshot_runs WHERE id = %s", (sid,)),
            ("UPDATE snapshot_objects SET display_name = 'x'", ()),
            ("DELETE FROM snapshot_objects", ()),
            ("UPDATE snapshot_references SET name = 'x'", ()),
            ("UPDATE snapshot_run_types SET status = 'failed'", ()),
            ("WITH v AS (INSERT INTO object_versions (tenant_id, policy_type, external_id, content_hash,"
             " content, first_snapshot_run_id) VALUES (%s, 'deviceConfiguration', 'late', repeat('a', 64),"
             " '{}', %s) RETURNING id, tenant_id)"
             " INSERT INTO snapshot_objects (snapshot_run_id, version_id, tenant_id)"
             " SELECT %s, id, tenant_id FROM v", (TENANT_A, sid, sid)),
            ("INSERT INTO snapshot_references (snapshot_run_id, tenant_id, ref_kind, ref_id, resolved)"
             " VALUES (%s, %s, 'group', 'late', false)", (sid, TENANT_A)),
        ]
        for sql, params in statements:
            with pytest.raises(psycopg.errors.CheckViolation, match="snapshot_immutable"):
                conn.execute(sql, params)
            conn.rollback()
        scope = tenant_scope(conn, TENANT_A)
        with pytest.raises(TenantAtlasError) as err:
            snapshot_runs.get_snapshot(scope, sid + 1000)
        assert err.value.code == ErrorCode.SNAPSHOT_NOT_FOUND


def test_abandoned_snapshot_is_finalised_failed(db: Database, setup) -> None:
    with db.connect() as conn:
        scope = tenant_scope(conn, TENANT_A)
        stale = snapshot_runs.LEDGER.start_run(scope, setup, dagster_run_id=None, worker="dead:1")
        assert snapshot_runs.LEDGER.mark_abandoned(scope, setup.selection_hash) == [stale]
        run = snapshot_runs.get_snapshot(scope, stale)
        assert run.status == "failed" and run.error_codes == ["run_abandoned"]
        assert {t.status for t in run.types} == {"failed"}


def test_row_level_security_isolates_tenants(db: Database, setup) -> None:
    with db.connect() as conn:
        a = tenant_scope(conn, TENANT_A)
        sid_a = insert_snapshot(a, setup, _objects(), references=[SALES])
    with db.connect() as conn:
        b = tenant_scope(conn, TENANT_B)
        insert_snapshot(b, setup, _objects()[:1])
        for table in ("snapshot_runs", "snapshot_run_types", "object_versions", "snapshot_objects",
                      "snapshot_references", "analyst_snapshot_runs", "analyst_object_versions",
                      "analyst_snapshot_objects"):
            assert {r[0] for r in conn.execute(f"SELECT tenant_id FROM {table}")} <= {TENANT_B}, table
        with pytest.raises(TenantAtlasError):
            snapshot_runs.get_snapshot(b, sid_a)
        assert objects_of_snapshot(b, sid_a) == []
    with db.connect() as conn:
        conn.execute(f"SET ROLE {ANALYST_ROLE}")
        assert {r[0] for r in conn.execute("SELECT tenant_key FROM analyst_snapshot_runs")} == {
            "contoso", "fabrikam"}
        versions = conn.execute(
            "SELECT snapshots FROM analyst_object_versions WHERE tenant_key = 'contoso'"
            " AND external_id = 'dc-1'").fetchone()
        assert versions == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO snapshot_references (snapshot_run_id, tenant_id, ref_kind, ref_id,"
                         " resolved) VALUES (1, %s, 'group', 'x', false)", (TENANT_A,))


def test_the_analysts_doc_query_finds_changed_objects(db: Database, setup) -> None:
    """The first snapshot example of docs/analysts.md, run as the analyst role."""
    doc = (Path(__file__).parents[1] / "docs" / "analysts.md").read_text()
    query = doc.split("```sql\n-- Objects that changed between")[1].split(";")[0]
    query = "-- Objects that changed between" + query
    with db.connect() as conn:
        selection = add_selection(conn, "all", ["deviceConfiguration", "settingsCatalogPolicy"])
        scope = tenant_scope(conn, TENANT_A)
        insert_snapshot(scope, selection, _objects())
        insert_snapshot(scope, selection, _objects(ssid="guest")[:2])
    with db.connect() as conn:
        conn.execute(f"SET ROLE {ANALYST_ROLE}")
        rows = {r[1] for r in conn.execute(query)}
    assert rows == {"dc-1", "sc-1"}  # dc-1 changed, sc-1 only in the older snapshot
