"""Row-level security: a tenant-scoped session cannot read or write another tenant's rows, even with a
hand-written query; the analyst role reads the whole fleet and writes nothing."""

from __future__ import annotations

import psycopg
import pytest

from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.store.inventory import list_items
from tenantatlas_pipelines.store.scope import ANALYST_ROLE, PIPELINE_ROLE, release, tenant_scope
from tenantatlas_pipelines.store.selections import add_selection
from tenantatlas_pipelines.store.tenants import add_tenant
from tenantatlas_pipelines.sync import run_sync
from tests.support import TENANT_A, TENANT_B, MemoryGraph, item

TABLES = ("inventory_items", "inventory_sync_runs", "inventory_sync_run_types")


@pytest.fixture
def two_tenants(db: Database, conn: psycopg.Connection) -> None:
    add_tenant(conn, TENANT_A, "contoso", "Contoso")
    add_tenant(conn, TENANT_B, "fabrikam", "Fabrikam")
    add_selection(conn, "dc", ["deviceConfiguration"])
    run_sync(db, MemoryGraph({"deviceConfiguration": [[item("same"), item("a-only")]]}), "contoso", "dc")
    run_sync(db, MemoryGraph({"deviceConfiguration": [[item("same"), item("b-only")]]}), "fabrikam", "dc")
    run_sync(db, MemoryGraph({"deviceConfiguration": [[item("b-only")]]}), "fabrikam", "dc")


def test_scoped_session_sees_only_its_tenant_without_any_filter(db: Database, two_tenants) -> None:
    with db.connect() as conn:
        tenant_scope(conn, TENANT_A)
        assert conn.execute("SELECT current_user").fetchone() == (PIPELINE_ROLE,)
        for table in TABLES:
            tenants = {r[0] for r in conn.execute(f"SELECT tenant_id FROM {table}")}
            assert tenants == {TENANT_A}, table
        # Through the fleet-wide analyst views too (security_invoker): still one tenant.
        assert {r[0] for r in conn.execute("SELECT tenant_key FROM analyst_inventory_items")} == {"contoso"}
        assert {r[0] for r in conn.execute("SELECT tenant_key FROM analyst_missing_items")} <= {"contoso"}
        # B's missing item is invisible even when asked for by B's id.
        assert conn.execute(
            "SELECT count(*) FROM missing_items_for(%s, "
            "(SELECT selection_hash FROM selections WHERE name = 'dc'))",
            (TENANT_B,),
        ).fetchone() == (0,)


def test_scoped_session_cannot_write_another_tenants_rows(db: Database, two_tenants) -> None:
    with db.connect() as conn:
        tenant_scope(conn, TENANT_A)
        updated = conn.execute(
            "UPDATE inventory_items SET display_name = 'hijacked' WHERE tenant_id = %s", (TENANT_B,)
        ).rowcount
        assert updated == 0
        conn.commit()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                """INSERT INTO inventory_items (tenant_id, policy_type, external_id, meta_jsonb,
                       first_seen_at,
                       last_seen_at, last_changed_at, last_seen_sync_run_id)
                   SELECT %s, 'deviceConfiguration', 'planted', '{}', now(), now(), now(), 1""",
                (TENANT_B,),
            )
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM inventory_items")
        conn.rollback()
        # A rollback does not undo the binding: the session is still the restricted role.
        assert conn.execute("SELECT current_user, current_setting('tenantatlas.tenant_id')").fetchone() == (
            PIPELINE_ROLE,
            TENANT_A,
        )
    with db.connect() as admin:
        names = {
            r[0]
            for r in admin.execute(
                "SELECT display_name FROM inventory_items WHERE tenant_id = %s", (TENANT_B,)
            )
        }
        assert "hijacked" not in names
        assert admin.execute("SELECT count(*) FROM inventory_items").fetchone() == (4,)


def test_scopes_sharing_a_connection_rebind_it(db: Database, two_tenants) -> None:
    with db.connect() as conn:
        a, b = tenant_scope(conn, TENANT_A), tenant_scope(conn, TENANT_B)
        assert [i.external_id for i in list_items(a)] == ["a-only", "same"]
        assert [i.external_id for i in list_items(b)] == ["b-only", "same"]
        assert [i.external_id for i in list_items(a)] == ["a-only", "same"]
        release(conn)
        assert conn.execute("SELECT count(*) FROM inventory_items").fetchone() == (4,)


def test_analyst_role_reads_the_fleet_and_writes_nothing(db: Database, two_tenants) -> None:
    with db.connect() as conn:
        conn.execute(f"SET ROLE {ANALYST_ROLE}")
        assert {r[0] for r in conn.execute("SELECT tenant_key FROM analyst_inventory_items")} == {
            "contoso",
            "fabrikam",
        }
        missing = conn.execute(
            "SELECT tenant_key, external_id, confidence FROM analyst_missing_items"
        ).fetchall()
        assert missing == [("fabrikam", "same", "high")]
        assert conn.execute("SELECT count(*) FROM analyst_latest_runs").fetchone() == (2,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE inventory_items SET display_name = 'x'")
