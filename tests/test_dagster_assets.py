"""Partitions materialized in-process through Dagster against the Graph emulator and real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dagster import AssetKey, DagsterInstance, evaluate_automation_conditions, instance_for_test

from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.defs.partitions import TENANT_PARTITION_TAG, PartitionRef
from tenantatlas_pipelines.emulator import Emulator, small_tenants
from tenantatlas_pipelines.store.locks import run_lock
from tenantatlas_pipelines.store.missing_snapshots import get_snapshot, read_partition
from tenantatlas_pipelines.store.scope import tenant_scope
from tenantatlas_pipelines.store.selections import get_selection
from tenantatlas_pipelines.store.tenants import add_tenant

TENANTS = small_tenants(0.02)
BY_KEY = {t.key: t for t in TENANTS}
SYNC, MISSING = AssetKey("inventory_sync"), AssetKey("missing_items")


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(tenants=TENANTS) as emu:
        yield emu


@pytest.fixture
def graph_env(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The TENANTATLAS_* Graph variables pointing at the emulator (what `tenantatlas demo` sets)."""
    for var, value in emulator.client_env().items():
        monkeypatch.setenv(var, value)
    return emulator


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        inst.add_dynamic_partitions("tenant", [t.key for t in TENANTS])
        yield inst


@pytest.fixture
def registered(db: Database, graph_env: Emulator) -> Database:
    with db.connect() as conn:
        for t in TENANTS:
            add_tenant(conn, t.tenant_id, t.key, t.name)
    return db


def run_partition(instance: DagsterInstance, ref: PartitionRef, assets: list[AssetKey] | None = None):
    from tenantatlas_pipelines.definitions import defs

    job = defs.resolve_job_def("inventory_sync_job")
    return job.execute_in_process(
        partition_key=ref.key, instance=instance, raise_on_error=False, asset_selection=assets
    )


def materialization(result, key: AssetKey):
    mats = result.asset_materializations_for_node(key.path[-1])
    assert len(mats) == 1, mats
    return {k: getattr(v, "value", v) for k, v in mats[0].metadata.items()}


def check_results(result) -> dict[str, bool]:
    return {
        e.event_specific_data.check_name: e.event_specific_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def test_partition_run_is_one_sync_with_metadata_tag_missing_and_checks(
    registered: Database, instance: DagsterInstance, graph_env: Emulator
) -> None:
    ref = PartitionRef("contoso", "apps")
    first = run_partition(instance, ref)
    assert first.success
    meta = materialization(first, SYNC)
    assert meta["status"] == "succeeded" and meta["observed"] > 0 and meta["new"] == meta["observed"]
    assert meta["requests"] >= 3 and meta["sync_run_id"].isdigit()  # text: an id is not plotted
    for name in ("changed", "errors", "meta_keys_dropped", "throttled", "duration_s"):
        assert name in meta
    assert str(meta["ledger"]["sync_run_id"]) == meta["sync_run_id"]
    # The run queue's per-tenant limit keys on this tag: one run per partition carries it.
    tags = instance.get_run_by_id(first.run_id).tags
    assert tags[TENANT_PARTITION_TAG] == "contoso" and tags["dagster/partition/selection"] == "apps"
    assert set(check_results(first).values()) == {True} and len(check_results(first)) == 6
    assert materialization(first, MISSING)["missing"] == 0

    # An object disappears from Graph: the next run publishes it as missing with high confidence.
    spec = BY_KEY["contoso"]
    gone = graph_env.state.objects(spec.tenant_id, "mobileApp")[0]["id"]
    graph_env.remove_object(spec.tenant_id, "mobileApp", gone)
    second = run_partition(instance, ref)
    assert second.success
    missing_meta = materialization(second, MISSING)
    assert missing_meta["missing"] == 1 and missing_meta["missing_high"] == 1
    assert "| mobileApp | " + gone in missing_meta["preview"]
    assert missing_meta["reference_sync_run_id"] == materialization(second, SYNC)["sync_run_id"]
    with registered.connect() as conn:
        scope = tenant_scope(conn, spec.tenant_id)
        rows = read_partition(scope, "apps")
        snapshot = get_snapshot(scope, "apps")
    assert [(r.policy_type, r.external_id, r.confidence) for r in rows] == [("mobileApp", gone, "high")]
    assert snapshot is not None and snapshot.items_high == 1 and snapshot.dagster_run_id == second.run_id

    # Re-running is safe: the partition's snapshot is replaced, not duplicated.
    third = run_partition(instance, ref)
    assert third.success and materialization(third, MISSING)["missing"] == 1


def test_failed_sync_fails_the_run_and_skips_missing_items(
    registered: Database, instance: DagsterInstance
) -> None:
    # Tailspin has no Intune licence: every type of `apps` answers 400, so the run fails as a whole.
    result = run_partition(instance, PartitionRef("tailspin", "apps"))
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure and e.step_key == "inventory_sync")
    meta = failure.step_failure_data.user_failure_data.metadata
    assert meta["status"].value == "failed" and "graph_tenant_not_licensed" in meta["error_codes"].value
    assert not result.asset_materializations_for_node("missing_items")


def test_lock_held_gives_a_skipped_materialization_and_a_green_run(
    registered: Database, instance: DagsterInstance, caplog: pytest.LogCaptureFixture
) -> None:
    spec = BY_KEY["fabrikam"]
    with registered.connect() as conn:
        selection = get_selection(conn, "compliance")
    with (
        registered.connect(autocommit=True) as lock_conn,
        run_lock(lock_conn, tenant_scope(lock_conn, spec.tenant_id), selection.selection_hash) as owned,
    ):
        assert owned
        result = run_partition(instance, PartitionRef("fabrikam", "compliance"))
    assert result.success  # documented choice: a skipped run is not a failure
    meta = materialization(result, SYNC)
    assert meta["status"] == "skipped" and meta["error_codes"] == "lock_held" and meta["observed"] == 0
    logs = [e.message for e in instance.all_logs(result.run_id) if e.user_message]
    assert any("SKIPPED" in m and "lock_held" in m for m in logs)


def test_missing_items_follow_a_sync_materialized_alone(
    registered: Database, instance: DagsterInstance
) -> None:
    from tenantatlas_pipelines.definitions import defs

    first = evaluate_automation_conditions(defs, instance)
    assert first.total_requested == 0  # nothing synced yet: nothing to derive

    alone = PartitionRef("northwind", "compliance")
    assert run_partition(instance, alone, assets=[SYNC]).success
    second = evaluate_automation_conditions(defs, instance, cursor=first.cursor)
    assert second.get_requested_partitions(MISSING) == {alone.key}

    # The sync job already refreshes missing items in the same run: no extra request afterwards.
    both = PartitionRef("fabrikam", "compliance")
    assert run_partition(instance, both).success
    assert run_partition(instance, alone, assets=[MISSING]).success
    third = evaluate_automation_conditions(defs, instance, cursor=second.cursor)
    assert third.total_requested == 0


def test_replace_partition_is_all_or_nothing(registered: Database) -> None:
    from datetime import UTC, datetime

    import psycopg

    from tenantatlas_pipelines.store.missing import MissingItem
    from tenantatlas_pipelines.store.missing_snapshots import SnapshotHeader, replace_partition

    spec = BY_KEY["contoso"]
    now = datetime.now(UTC)
    header = SnapshotHeader("contoso", "apps", "h" * 64, None, None, "no_finished_run", now)
    good = MissingItem("mobileApp", "a1", "App", now, 1, "high", "not_observed")
    with registered.connect() as conn:
        scope = tenant_scope(conn, spec.tenant_id)
        # reference run ids are not foreign keys: the snapshot outlives ledger housekeeping
        assert replace_partition(scope, header, [good]) == 1
        bad = MissingItem("mobileApp", "a2", "App", now, 1, "deleted", "not_observed")
        with pytest.raises(psycopg.errors.CheckViolation):
            replace_partition(scope, header, [good, bad])
        conn.rollback()
        assert [r.external_id for r in read_partition(scope, "apps")] == ["a1"]
        assert get_snapshot(scope, "apps").items == 1  # type: ignore[union-attr]


def test_inventory_checks_fail_on_a_planted_violation(
    registered: Database, instance: DagsterInstance, graph_env: Emulator
) -> None:
    ref = PartitionRef("fabrikam", "apps")
    assert run_partition(instance, ref, [SYNC]).success
    spec = BY_KEY["fabrikam"]
    with registered.connect() as conn:  # as the table owner: what a bug in the store would leave behind
        conn.execute(
            """INSERT INTO inventory_items (tenant_id, policy_type, external_id, display_name, meta_jsonb,
                   first_seen_at, last_seen_at, last_changed_at, last_seen_sync_run_id)
               SELECT tenant_id, 'mobileApp', 'planted', 'planted', '{"password": "x"}', now(), now(), now(),
                      max(id)
               FROM inventory_sync_runs WHERE tenant_id = %s GROUP BY tenant_id""",
            (spec.tenant_id,),
        )
        conn.commit()
    checks = check_results(run_partition(instance, ref, [SYNC]))
    assert checks == {
        "inventory_sync_complete": True,
        "inventory_sync_fresh": True,
        "inventory_identities_unique": True,
        "inventory_meta_within_whitelist": False,
    }
