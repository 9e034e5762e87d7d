"""Sensors: mirror the tenant registry into the `tenant` dynamic partitions; refresh missing items.

The registry sensor adds a partition key for every enabled tenant and removes the keys of disabled or
unregistered ones (see planning.mirror_tenants for why), and by default requests the first sync of each
newly added tenant at once instead of waiting for the next schedule tick.
"""

import os

from dagster import (
    AddDynamicPartitionsRequest,
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    DeleteDynamicPartitionsRequest,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from ..store.tenants import list_tenants
from . import planning
from .assets import missing_items
from .jobs import sync_job
from .partitions import SELECTION_NAMES, TENANT_PARTITIONS_NAME, PartitionRef
from .resources import InventoryDatabase

SYNC_NEW_TENANTS_ENV = "TENANTATLAS_SYNC_NEW_TENANTS"
SENSOR_INTERVAL_ENV = "TENANTATLAS_TENANT_SENSOR_INTERVAL_S"


def registry_sensor_result(
    registry: list[planning.RegistryTenant],
    current_keys: list[str],
    cursor: str | None,
    *,
    selections: tuple[str, ...] = SELECTION_NAMES,
    sync_new: bool = True,
) -> SensorResult | SkipReason:
    """The sensor's decision from plain inputs (the cursor counts registry changes for run keys)."""
    diff = planning.mirror_tenants(registry, current_keys)
    if diff.empty:
        return SkipReason(f"{len(current_keys)} tenant partitions already mirror the registry")
    generation = cursor or "0"
    requests = []
    if diff.add:
        requests.append(AddDynamicPartitionsRequest(TENANT_PARTITIONS_NAME, list(diff.add)))
    if diff.remove:
        requests.append(DeleteDynamicPartitionsRequest(TENANT_PARTITIONS_NAME, list(diff.remove)))
    runs = (
        [
            RunRequest(partition_key=ref.key, run_key=planning.onboarding_run_key(ref, generation))
            for ref in (PartitionRef(t, s) for t in diff.add for s in selections)
        ]
        if sync_new
        else []
    )
    return SensorResult(
        run_requests=runs, dynamic_partitions_requests=requests, cursor=str(int(generation) + 1)
    )


@sensor(
    job=sync_job,
    minimum_interval_seconds=int(os.environ.get(SENSOR_INTERVAL_ENV, "30")),
    default_status=DefaultSensorStatus.RUNNING,
    description="Mirrors the tenant registry (enabled tenants) into the `tenant` partitions and syncs "
    "newly added tenants right away.",
)
def tenant_registry_sensor(
    context: SensorEvaluationContext, inventory_db: InventoryDatabase
) -> SensorResult | SkipReason:
    with inventory_db.get_database().connect() as conn:
        registry = [planning.RegistryTenant(t.key, t.enabled) for t in list_tenants(conn)]
    current = list(context.instance.get_dynamic_partitions(TENANT_PARTITIONS_NAME))
    result = registry_sensor_result(
        registry, current, context.cursor, sync_new=os.environ.get(SYNC_NEW_TENANTS_ENV, "1") != "0"
    )
    if isinstance(result, SensorResult):
        context.log.info(f"tenant partitions: {planning.mirror_tenants(registry, current)}")
    return result


# Refreshes missing items after a sync that ran without them (a UI materialization or backfill of
# `inventory_sync` alone); runs of the sync job already include them, so it requests nothing then.
missing_items_sensor = AutomationConditionSensorDefinition(
    "missing_items_after_sync",
    target=AssetSelection.assets(missing_items),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    emit_backfills=False,
    description="Evaluates `missing_items`' eager condition: re-derive a partition after its sync updated.",
)
