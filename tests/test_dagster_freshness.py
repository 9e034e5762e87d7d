"""Per-tenant freshness: the `inventory_sync_fresh` check per partition, failed by the sensor when overdue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dagster import AssetCheckKey, AssetKey, DagsterInstance, build_sensor_context, instance_for_test

from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.defs import freshness
from tenantatlas_pipelines.defs.partitions import PartitionRef
from tenantatlas_pipelines.defs.resources import InventoryDatabase
from tenantatlas_pipelines.store.scope import tenant_scope
from tenantatlas_pipelines.store.selections import get_selection
from tenantatlas_pipelines.store.sync_runs import finalize_run, start_run
from tenantatlas_pipelines.store.tenants import add_tenant

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CHECK = AssetCheckKey(AssetKey("inventory_sync"), freshness.FRESH_CHECK)


def test_limit_is_the_schedule_interval_plus_grace() -> None:
    assert freshness.freshness_limit("0 3 * * *", "UTC", NOW, grace_s=3600) == timedelta(hours=25)
    assert freshness.freshness_limit("0 */6 * * *", "UTC", NOW, grace_s=0) == timedelta(hours=6)


def test_overdue_partitions_are_reported_once() -> None:
    fresh, stale, never = PartitionRef("a", "all"), PartitionRef("b", "all"), PartitionRef("c", "all")
    synced = {("a", "all"): NOW - timedelta(hours=1), ("b", "all"): NOW - timedelta(hours=30)}
    limit = timedelta(hours=25)
    evaluations, overdue = freshness.overdue_evaluations([fresh, stale, never], synced, set(), NOW, limit)
    assert overdue == {str(stale.key), str(never.key)}
    assert {e.partition for e in evaluations} == overdue
    assert all(not e.passed and e.severity.value == "WARN" for e in evaluations)
    assert "30.0 h ago" in next(e for e in evaluations if e.partition == str(stale.key)).description
    again, _ = freshness.overdue_evaluations([fresh, stale, never], synced, overdue, NOW, limit)
    assert again == []  # the cursor remembers: no event per tick


def _finished_run(db: Database, tenant_id: str, selection: str, status: str) -> None:
    with db.connect() as conn:
        scope = tenant_scope(conn, tenant_id)
        run_id = start_run(scope, get_selection(conn, selection), dagster_run_id=None, worker="test")
        finalize_run(scope, run_id, status=status, error_codes=[], error_message=None)
        conn.commit()


def test_sensor_fails_the_check_of_an_overdue_partition_only(db: Database) -> None:
    from tenantatlas_pipelines.defs.sensors import inventory_freshness_sensor

    with db.connect() as conn:
        fresh = add_tenant(conn, "00000000-0000-4000-8000-00000000f001", "fresh", "Fresh")
        add_tenant(conn, "00000000-0000-4000-8000-00000000f002", "stale", "Stale")
    for selection in ("all", "apps", "compliance", "configuration", "security"):
        _finished_run(db, fresh.tenant_id, selection, "succeeded")
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("tenant", ["fresh", "stale"])
        context = build_sensor_context(instance=instance, resources={"inventory_db": InventoryDatabase()})
        inventory_freshness_sensor(context)
        failed = _failed_partitions(instance)
    assert failed == {f"{s}|stale" for s in ("all", "apps", "compliance", "configuration", "security")}


def _failed_partitions(instance: DagsterInstance) -> set[str]:
    records = instance.event_log_storage.get_asset_check_execution_history(CHECK, limit=50)
    return {r.partition for r in records if r.status.value == "FAILED" and r.partition}
