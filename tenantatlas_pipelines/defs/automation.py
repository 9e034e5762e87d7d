"""What the derived assets' wiring shares: the sensor that evaluates an eager asset's condition, and the
step that derives and publishes one partition (missing items, drift, dependency edges).

Each derived asset is eager on its upstream (a sync, a snapshot); a sensor per asset evaluates that
condition, so the asset is refreshed however its upstream was materialized (schedule, CLI, UI, backfill).
"""

from collections.abc import Callable
from typing import TypeVar

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    Failure,
)

from ..db import Database
from ..errors import TenantAtlasError
from .partitions import PartitionRef, partition_ref
from .resources import InventoryDatabase

Published = TypeVar("Published")


def eager_sensor(name: str, asset: AssetsDefinition, description: str) -> AutomationConditionSensorDefinition:
    """The sensor evaluating `asset`'s eager condition: running by default, every 30 s, one run per
    partition it requests (no backfills)."""
    return AutomationConditionSensorDefinition(
        name,
        target=AssetSelection.assets(asset),
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        emit_backfills=False,
        description=description,
    )


def step_failure(what: str) -> Callable[[PartitionRef, TenantAtlasError], Exception]:
    """A derived asset's failure: `<what> of <tenant>/<selection>: <error>`."""
    return lambda ref, exc: Failure(description=f"{what} of {ref.tenant}/{ref.selection}: {exc}")


def publish_partition(
    context: AssetExecutionContext,
    inventory_db: InventoryDatabase,
    publish: Callable[..., Published],
    failure: Callable[[PartitionRef, TenantAtlasError], Exception],
) -> tuple[PartitionRef, Published]:
    """Derive and publish the context's partition with `publish(db, tenant, selection, dagster_run_id=)`;
    a refusal (TenantAtlasError) fails the step with `failure(ref, error)`."""
    ref = partition_ref(context.partition_key)
    try:
        db: Database = inventory_db.get_database()
        return ref, publish(db, ref.tenant, ref.selection, dagster_run_id=context.run_id)
    except TenantAtlasError as exc:
        raise failure(ref, exc) from None
