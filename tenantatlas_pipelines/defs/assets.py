"""The two inventory assets, partitioned by (tenant, selection); thin wrappers over defs/reporting.py.

`inventory_sync`: materializing a partition is exactly one sync run of the engine.
- succeeded / partial: a materialization with the counters; partial also logs a warning (the ledger and
  the missing items' `low` confidence say what could not be read);
- skipped (another run holds the (tenant, selection) lock): a materialization with status=skipped and a
  plain warning, and the Dagster run succeeds: nothing is wrong, the lock holder is doing the work and a
  red run would page someone for a non-event (documented in docs/orchestration.md);
- failed, or the engine refused (unknown/disabled tenant, invalid config): the step fails with
  `dagster.Failure` carrying the same metadata, so the run is red and alerts fire; `missing_items` does
  not run after it.
`missing_items`: derives the partition's missing items as a DataFrame, publishes it to the
`missing_items` table (one transaction per partition) and previews it as markdown.

Neither has a BackfillPolicy on purpose: every partition is its own run, which is what gives each run the
`dagster/partition/tenant` tag the run queue's per-tenant limit keys on.
"""

from typing import Any

from dagster import (
    AssetExecutionContext,
    AutomationCondition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from ..errors import TenantAtlasError
from . import reporting
from .inventory_checks import INVENTORY_CHECK_SPECS, inventory_check_results
from .partitions import partition_ref, sync_partitions
from .resources import GraphResource, InventoryDatabase

GROUP = "inventory"


def _metadata(plain: dict[str, Any]) -> dict[str, Any]:
    # Counters as ints/floats (plotted by the UI), everything else as text.
    return {
        k: v if isinstance(v, bool | int | float) else MetadataValue.text(str(v)) for k, v in plain.items()
    }


@asset(
    partitions_def=sync_partitions,
    group_name=GROUP,
    kinds={"python", "postgres"},
    check_specs=INVENTORY_CHECK_SPECS,
    description="Observes one tenant's Intune objects of one named selection through Microsoft Graph "
    "into the inventory (one engine sync run per partition).",
)
def inventory_sync(
    context: AssetExecutionContext, inventory_db: InventoryDatabase, graph: GraphResource
) -> MaterializeResult:
    ref = partition_ref(context.partition_key)
    try:
        result = reporting.run_partition_sync(
            inventory_db.get_database(),
            graph.get_client(),
            ref.tenant,
            ref.selection,
            dagster_run_id=context.run_id,
            log=context.log,
        )
    except TenantAtlasError as exc:  # refused before a ledger row existed (unknown tenant, credentials…)
        raise Failure(
            description=f"sync of {ref.tenant}/{ref.selection} could not start: {exc}",
            metadata={"status": "failed", "error_codes": str(exc.code)},
        ) from None
    metadata = _metadata(reporting.sync_metadata(result))
    metadata["ledger"] = MetadataValue.json(reporting.ledger_summary(result))
    if result.status == "failed":
        raise Failure(
            description=f"sync run {result.sync_run_id} of {ref.tenant}/{ref.selection} failed: "
            f"{', '.join(result.error_codes) or 'no error code'} {result.error_message or ''}".strip(),
            metadata=metadata,
        )
    if result.status == "skipped":
        context.log.warning(reporting.skipped_message(result))
    elif result.status == "partial":
        context.log.warning(
            f"sync run {result.sync_run_id} was partial: some policy types could not be read "
            f"({', '.join(result.error_codes)}); missing items of this partition are low confidence"
        )
    # A success is already told by the engine's own "finished" line (with its counts) and the metadata.
    return MaterializeResult(
        metadata=metadata, check_results=inventory_check_results(inventory_db.get_database(), ref)
    )


@asset(
    partitions_def=sync_partitions,
    deps=[inventory_sync],
    group_name=GROUP,
    kinds={"pandas", "postgres"},
    # Refreshed after every sync even when someone materializes only `inventory_sync` (UI, backfill):
    # the schedule's job materializes both in one run, and this condition catches the rest.
    automation_condition=AutomationCondition.eager(),
    description="Items of the partition's tenant and selection not observed by its latest finished sync "
    "run, with confidence (high only after a clean run); published to the `missing_items` table.",
)
def missing_items(context: AssetExecutionContext, inventory_db: InventoryDatabase) -> MaterializeResult:
    ref = partition_ref(context.partition_key)
    try:
        published = reporting.publish_missing(
            inventory_db.get_database(), ref.tenant, ref.selection, dagster_run_id=context.run_id
        )
    except TenantAtlasError as exc:
        raise Failure(description=f"missing items of {ref.tenant}/{ref.selection}: {exc}") from None
    metadata = _metadata(reporting.missing_metadata(published))
    metadata["dagster/row_count"] = len(published.frame)
    metadata["preview"] = MetadataValue.md(reporting.preview_markdown(published.frame))
    context.log.info(
        f"published {len(published.frame)} missing items for {ref.tenant}/{ref.selection} "
        f"({published.high} high, {published.low} low confidence)"
    )
    return MaterializeResult(metadata=metadata)
