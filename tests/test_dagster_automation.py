"""Sensor and schedule evaluations against a persistent test instance and the real tenant registry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from dagster import (
    DagsterInstance,
    SensorResult,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
)

from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.defs.partitions import SELECTION_NAMES, TENANT_PARTITIONS_NAME
from tenantatlas_pipelines.defs.resources import InventoryDatabase
from tenantatlas_pipelines.defs.schedules import CRON_ENV, DEFAULT_CRON, inventory_sync_schedule, sync_cron
from tenantatlas_pipelines.defs.sensors import tenant_registry_sensor
from tenantatlas_pipelines.errors import TenantAtlasError
from tenantatlas_pipelines.store.tenants import add_tenant, set_enabled

CONTOSO = ("6f1d0a52-8b3e-4c2a-9d71-3e5b8c0f4a21", "contoso")
FABRIKAM = ("b24e7c19-05d3-4a8f-b6e2-9c1f7a3d5e08", "fabrikam")


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        yield inst


def tick(instance: DagsterInstance, cursor: str | None) -> SensorResult | SkipReason:
    """One sensor evaluation, with its partition requests applied the way the daemon applies them."""
    with build_sensor_context(
        instance=instance, cursor=cursor, resources={"inventory_db": InventoryDatabase()}
    ) as ctx:
        result = tenant_registry_sensor(ctx)
    if isinstance(result, SensorResult):
        for req in result.dynamic_partitions_requests or []:
            if type(req).__name__ == "AddDynamicPartitionsRequest":
                instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
            else:
                for key in req.partition_keys:
                    instance.delete_dynamic_partition(req.partitions_def_name, key)
    return result


def _repository():
    from tenantatlas_pipelines.definitions import defs

    return defs.get_repository_def()


def partitions(instance: DagsterInstance) -> list[str]:
    return sorted(instance.get_dynamic_partitions(TENANT_PARTITIONS_NAME))


def test_registry_sensor_mirrors_enabled_tenants(db: Database, instance: DagsterInstance) -> None:
    assert isinstance(tick(instance, None), SkipReason)  # empty registry, nothing to mirror

    with db.connect() as conn:
        add_tenant(conn, *CONTOSO, "Contoso")
        add_tenant(conn, *FABRIKAM, "Fabrikam", enabled=False)
    first = tick(instance, None)
    assert isinstance(first, SensorResult)
    assert partitions(instance) == ["contoso"]
    # The new tenant is synced at once: one run per selection, keyed so a retried tick dedupes.
    assert sorted(r.partition_key for r in first.run_requests) == sorted(
        f"{s}|contoso" for s in SELECTION_NAMES
    )
    assert len({r.run_key for r in first.run_requests}) == len(SELECTION_NAMES)
    assert isinstance(tick(instance, first.cursor), SkipReason)  # steady state

    with db.connect() as conn:
        set_enabled(conn, "fabrikam", True)
        set_enabled(conn, "contoso", False)
    second = tick(instance, first.cursor)
    assert isinstance(second, SensorResult)
    assert partitions(instance) == ["fabrikam"]
    assert {r.partition_key.split("|")[1] for r in second.run_requests} == {"fabrikam"}
    assert not {r.run_key for r in second.run_requests} & {r.run_key for r in first.run_requests}


def test_schedule_requests_every_enabled_partition_with_stable_run_keys(
    db: Database, instance: DagsterInstance
) -> None:
    with db.connect() as conn:
        add_tenant(conn, *CONTOSO, "Contoso")
        add_tenant(conn, *FABRIKAM, "Fabrikam")
    instance.add_dynamic_partitions(TENANT_PARTITIONS_NAME, ["contoso", "fabrikam"])
    at = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)

    def evaluate(when: datetime) -> list:
        with build_schedule_context(
            instance=instance,
            scheduled_execution_time=when,
            resources={"inventory_db": InventoryDatabase()},
            repository_def=_repository(),
        ) as ctx:
            data = inventory_sync_schedule.evaluate_tick(ctx)
        return list(data.run_requests or [])

    requests = evaluate(at)
    assert sorted(r.partition_key for r in requests) == sorted(
        f"{s}|{t}" for t in ("contoso", "fabrikam") for s in SELECTION_NAMES
    )
    keys = [r.run_key for r in requests]
    assert len(set(keys)) == len(keys)
    assert keys == [r.run_key for r in evaluate(at)]  # the same tick never launches a partition twice
    assert not set(keys) & {r.run_key for r in evaluate(datetime(2026, 3, 2, 3, 0, tzinfo=UTC))}

    # Disabled since the sensor's last tick: already left out by the schedule.
    with db.connect() as conn:
        set_enabled(conn, "fabrikam", False)
    assert {r.partition_key.split("|")[1] for r in evaluate(at)} == {"contoso"}


def test_schedule_skips_without_partitions(db: Database, instance: DagsterInstance) -> None:
    with build_schedule_context(
        instance=instance,
        scheduled_execution_time=datetime(2026, 3, 1, tzinfo=UTC),
        resources={"inventory_db": InventoryDatabase()},
        repository_def=_repository(),
    ) as ctx:
        data = inventory_sync_schedule.evaluate_tick(ctx)
    assert not data.run_requests and data.skip_message


def test_sync_cron_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CRON_ENV, raising=False)
    assert sync_cron() == DEFAULT_CRON
    monkeypatch.setenv(CRON_ENV, "*/15 * * * *")
    assert sync_cron() == "*/15 * * * *"
    monkeypatch.setenv(CRON_ENV, "every day")
    with pytest.raises(TenantAtlasError, match="config_invalid"):
        sync_cron()


def test_schedule_cron_follows_env_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    code = (
        "from tenantatlas_pipelines.definitions import defs; "
        "print(defs.resolve_schedule_def('inventory_sync_schedule').cron_schedule)"
    )
    env = {**__import__("os").environ, CRON_ENV: "0 */6 * * *", "TENANTATLAS_DAGSTER_READ_SELECTIONS": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0 */6 * * *"
