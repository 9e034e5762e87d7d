"""Sensors: mirror the tenant registry into the `tenant` dynamic partitions; refresh missing items;
register GDAP customers.

The registry sensor adds a partition key for every enabled tenant and removes the keys of disabled or
unregistered ones (see planning.mirror_tenants for why), and by default requests the first sync of each
newly added tenant at once instead of waiting for the next schedule tick. The GDAP discovery sensor
(on when TENANTATLAS_GDAP_PARTNER_TENANT is set) registers the partner's new customers in the registry,
which the registry sensor then mirrors once they are enabled.
"""

import os

from dagster import (
    AddDynamicPartitionsRequest,
    DefaultSensorStatus,
    DeleteDynamicPartitionsRequest,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from ..config import env_int
from ..errors import TenantAtlasError
from ..runs import sweep_dead_runs
from ..snapshots.run import SNAPSHOT
from ..store.tenants import list_tenants, validate_tenant_id
from ..sync import SYNC
from . import planning
from .assets import missing_items
from .automation import eager_sensor
from .jobs import sync_job
from .partitions import SELECTION_NAMES, TENANT_PARTITIONS_NAME, PartitionRef
from .resources import GraphResource, InventoryDatabase

SYNC_NEW_TENANTS_ENV = "TENANTATLAS_SYNC_NEW_TENANTS"
SENSOR_INTERVAL_ENV = "TENANTATLAS_TENANT_SENSOR_INTERVAL_S"
GDAP_PARTNER_ENV = "TENANTATLAS_GDAP_PARTNER_TENANT"
GDAP_AUTO_ENABLE_ENV = "TENANTATLAS_GDAP_AUTO_ENABLE"
GDAP_INTERVAL_ENV = "TENANTATLAS_GDAP_DISCOVERY_INTERVAL_S"
# Run kinds whose dead `running` rows the registry sensor finalises on every tick.
RUN_KINDS = (SYNC, SNAPSHOT)


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
    minimum_interval_seconds=env_int(SENSOR_INTERVAL_ENV, 30),
    default_status=DefaultSensorStatus.RUNNING,
    description="Mirrors the tenant registry (enabled tenants) into the `tenant` partitions and syncs "
    "newly added tenants right away; finalises ledger rows left `running` by dead or cancelled runs.",
)
def tenant_registry_sensor(
    context: SensorEvaluationContext, inventory_db: InventoryDatabase
) -> SensorResult | SkipReason:
    with inventory_db.get_database().connect() as conn:
        registry = [planning.RegistryTenant(t.key, t.enabled) for t in list_tenants(conn)]
        # A cancelled or killed run whose pair never runs again would stay `running` for ever.
        for kind, ids in sweep_dead_runs(conn, RUN_KINDS).items():
            context.log.warning(f"finalised dead {kind} runs {ids} as failed (run_abandoned)")
    current = list(context.instance.get_dynamic_partitions(TENANT_PARTITIONS_NAME))
    result = registry_sensor_result(
        registry, current, context.cursor, sync_new=os.environ.get(SYNC_NEW_TENANTS_ENV, "1") != "0"
    )
    if isinstance(result, SensorResult):
        context.log.info(f"tenant partitions: {planning.mirror_tenants(registry, current)}")
    return result


@sensor(
    minimum_interval_seconds=env_int(GDAP_INTERVAL_ENV, 900),
    # Running only where a partner is configured at load time: elsewhere it would only ever skip.
    default_status=DefaultSensorStatus.RUNNING
    if os.environ.get(GDAP_PARTNER_ENV, "").strip()
    else DefaultSensorStatus.STOPPED,
    description="Registers the GDAP customers of TENANTATLAS_GDAP_PARTNER_TENANT that are not registered "
    "yet (disabled unless TENANTATLAS_GDAP_AUTO_ENABLE=1); the registry sensor then makes the enabled ones "
    "partitions.",
)
def gdap_discovery_sensor(
    context: SensorEvaluationContext, inventory_db: InventoryDatabase, graph: GraphResource
) -> SkipReason:
    """Registration only (no runs): the registry sensor owns partitions and first syncs. A Graph or
    permission failure raises, so the tick is red in the UI with its stable code instead of silent."""
    partner = os.environ.get(GDAP_PARTNER_ENV, "").strip()
    if not partner:
        return SkipReason(f"{GDAP_PARTNER_ENV} is not set: GDAP discovery is off")
    try:
        partner = validate_tenant_id(partner)
    except TenantAtlasError as exc:  # configuration: name the variable, never quote its value
        raise TenantAtlasError(exc.code, f"{GDAP_PARTNER_ENV} is not a tenant id (a GUID)") from None
    enabled = os.environ.get(GDAP_AUTO_ENABLE_ENV, "0") == "1"
    from ..onboarding import discover_tenants  # here, not at the top: run workers never need it

    with inventory_db.get_database().connect() as conn:
        result = discover_tenants(conn, graph.get_client(), partner, apply=True, enabled=enabled)
    new = [c.tenant.key for c in result.plan.of("new")]
    summary = (
        f"partner {partner}: {len(result.plan.customers)} GDAP customers, {len(new)} newly registered"
        + (f" ({'enabled' if enabled else 'disabled'}): {', '.join(new)}" if new else "")
    )
    context.log.info(summary)
    return SkipReason(summary)


# Refreshes missing items after a sync that ran without them (a UI materialization or backfill of
# `inventory_sync` alone); runs of the sync job already include them, so it requests nothing then.
missing_items_sensor = eager_sensor(
    "missing_items_after_sync",
    missing_items,
    "Evaluates `missing_items`' eager condition: re-derive a partition after its sync updated.",
)


FRESHNESS_INTERVAL_ENV = "TENANTATLAS_FRESHNESS_SENSOR_INTERVAL_S"


@sensor(
    name="inventory_freshness_sensor",
    minimum_interval_seconds=int(os.environ.get(FRESHNESS_INTERVAL_ENV, "600")),
    default_status=DefaultSensorStatus.RUNNING,
    description="Fails the `inventory_sync_fresh` check (WARN) of each (tenant, selection) partition whose "
    "last good sync is older than the schedule's interval plus grace; requests no runs.",
)
def inventory_freshness_sensor(
    context: SensorEvaluationContext, inventory_db: InventoryDatabase
) -> SkipReason:
    from ..store.status import latest_synced_at
    from . import freshness

    now = freshness.utcnow()
    tenants = context.instance.get_dynamic_partitions(TENANT_PARTITIONS_NAME)
    with inventory_db.get_database().connect() as conn:
        synced = latest_synced_at(conn)
    refs = [PartitionRef(t, s) for t in tenants for s in SELECTION_NAMES]
    evaluations, overdue = freshness.overdue_evaluations(
        refs, synced, freshness.load_cursor(context.cursor), now, freshness.schedule_limit(now)
    )
    for evaluation in evaluations:
        context.instance.report_runless_asset_event(evaluation)
    context.update_cursor(freshness.dump_cursor(overdue))
    return SkipReason(f"{len(overdue)} of {len(refs)} partitions overdue; {len(evaluations)} newly reported")
