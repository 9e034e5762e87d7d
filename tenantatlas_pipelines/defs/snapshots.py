"""The snapshot asset, its job and its own schedule (issue 12); thin wrappers over snapshot_reporting.py.

`policy_snapshots` has the inventory's partitions (tenant x selection): materializing one is exactly one
snapshot run, with the same failure behaviour as `inventory_sync` — succeeded / partial materialize
(partial with a warning: the ledger names the types it could not read), skipped (another snapshot of
the pair holds its lock) materializes with a warning, failed or refused fails the step. No BackfillPolicy:
each partition is its own run and carries the `dagster/partition/tenant` tag the run queue's per-tenant
limit keys on, shared with the sync runs of the tenant. The schedule is separate from the inventory's
(daily, TENANTATLAS_SNAPSHOT_CRON), because full content is read less often than metadata.
"""



from dagster import (
    AssetExecutionContext,
    AssetSelection,
    Failure,
    MaterializeResult,
    asset,
    define_asset_job,
)

from ..errors import TenantAtlasError
from . import snapshot_reporting
from .assets import _metadata
from .partitions import partition_ref, sync_partitions
from .resources import GraphResource, InventoryDatabase
from .schedules import cron_from_env, partition_schedule

GROUP = "snapshots"
SNAPSHOT_JOB_NAME = "policy_snapshot_job"
SNAPSHOT_CRON_ENV = "TENANTATLAS_SNAPSHOT_CRON"
DEFAULT_SNAPSHOT_CRON = "0 4 * * *"  # daily, 04:00 (an hour after the inventory sync)


def snapshot_cron() -> str:
    """The snapshot schedule's cron string (TENANTATLAS_SNAPSHOT_CRON), validated at load."""
    return cron_from_env(SNAPSHOT_CRON_ENV, DEFAULT_SNAPSHOT_CRON)


@asset(
    partitions_def=sync_partitions,
    group_name=GROUP,
    kinds={"python", "postgres"},
    description="Captures one tenant's full policy content of one named selection — normal form, "
    "assignments, references resolved to names — as an immutable, content-addressed snapshot "
    "(one snapshot run per partition).",
)
def policy_snapshots(
    context: AssetExecutionContext, inventory_db: InventoryDatabase, graph: GraphResource
) -> MaterializeResult:
    ref = partition_ref(context.partition_key)
    try:
        result = snapshot_reporting.run_partition_snapshot(
            inventory_db.get_database(), graph.get_client(), ref.tenant, ref.selection,
            dagster_run_id=context.run_id, log=context.log,
        )
    except TenantAtlasError as exc:  # refused before a ledger row existed (unknown tenant, credentials…)
        raise Failure(
            description=f"snapshot of {ref.tenant}/{ref.selection} could not start: {exc}",
            metadata={"status": "failed", "error_codes": str(exc.code)},
        ) from None
    metadata = _metadata(snapshot_reporting.snapshot_metadata(result))
    if result.status == "failed":
        raise Failure(
            description=f"snapshot {result.snapshot_id} of {ref.tenant}/{ref.selection} failed: "
            f"{', '.join(result.error_codes) or 'no error code'} {result.error_message or ''}".strip(),
            metadata=metadata,
        )
    if result.status == "skipped":
        context.log.warning(
            f"snapshot of {ref.tenant}/{ref.selection} skipped: another snapshot of the pair is running"
        )
    elif result.status == "partial":
        context.log.warning(
            f"snapshot {result.snapshot_id} was partial: some policy types could not be read "
            f"({', '.join(result.error_codes)}); drift on them is low confidence"
        )
    return MaterializeResult(metadata=metadata)


snapshot_job = define_asset_job(
    SNAPSHOT_JOB_NAME,
    selection=AssetSelection.assets(policy_snapshots),
    description="One (tenant, selection) partition: one snapshot run.",
)


policy_snapshots_schedule = partition_schedule(
    "policy_snapshots_schedule",
    snapshot_job,
    snapshot_cron(),
    "Snapshots every (tenant, selection) partition (full content, separate from the sync).",
)
