"""The `policy_drift` asset and its check: thin wrappers over drift/publish.py.

Downstream of `policy_snapshots`, with the same (tenant, selection) partitions, materialized after each
snapshot by the eager condition (like `missing_items` after a sync): it publishes the partition's drift
to `drift_items` / `drift_results` (replaced whole in one transaction), records the counts as numeric
metadata (the UI plots them per partition over time) and a markdown preview. Its check WARNs while
unaccepted high-confidence drift exists, so every tenant's drift shows at a glance in the asset's
partition and check views without failing the run: drift is news, not an error.
"""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    asset,
    define_asset_job,
)

from ..drift import publish
from .automation import eager_sensor, publish_partition, step_failure
from .partitions import sync_partitions
from .resources import InventoryDatabase

SNAPSHOTS = AssetKey("policy_snapshots")
DRIFT_JOB_NAME = "policy_drift_job"
CHECK = "no_unaccepted_high_confidence_drift"

DRIFT_CHECK_SPECS = [
    AssetCheckSpec(
        CHECK,
        asset="policy_drift",
        description="Warns while the partition has drift that is high confidence and not accepted "
        "(accept it with `tenantatlas drift accept`, or fix the tenant).",
    )
]


def drift_check_result(published: publish.Published) -> AssetCheckResult:
    """WARN (not ERROR) when unaccepted high-confidence drift exists; the alerting items listed."""
    alerting = [i for i in (published.report.items if published.report else ()) if i.alerting]
    return AssetCheckResult(
        check_name=CHECK,
        passed=not alerting,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "unaccepted_high": len(alerting),
            "examples": "; ".join(
                f"{i.kind} {i.policy_type} {i.display_name or i.external_id}" for i in alerting[:10]
            )
            or "none",
        },
    )


@asset(
    partitions_def=sync_partitions,
    deps=[SNAPSHOTS],
    group_name="drift",
    kinds={"python", "postgres"},
    check_specs=DRIFT_CHECK_SPECS,
    automation_condition=AutomationCondition.eager(),
    description="Property-level drift of the partition's tenant and selection: the latest snapshot "
    "against the pinned baseline (else the previous snapshot); published to `drift_items`.",
)
def policy_drift(context: AssetExecutionContext, inventory_db: InventoryDatabase) -> MaterializeResult:
    ref, published = publish_partition(context, inventory_db, publish.publish_drift, step_failure("drift"))
    metadata: dict[str, object] = {
        k: v if isinstance(v, int) else MetadataValue.text(str(v))
        for k, v in publish.drift_metadata(published).items()
    }
    metadata["dagster/row_count"] = published.counts.items
    metadata["preview"] = MetadataValue.md(publish.preview_markdown(published))
    if published.report is None:
        context.log.info(f"no drift for {ref.tenant}/{ref.selection}: {published.no_drift_reason}")
    else:
        c = published.counts
        context.log.info(
            f"drift of {ref.tenant}/{ref.selection}: {c.changed} changed, {c.added} added, {c.missing} "
            f"missing ({c.high} high, {c.low} low confidence, {c.accepted} accepted)"
        )
    return MaterializeResult(metadata=metadata, check_results=[drift_check_result(published)])


# Evaluates the eager condition: re-derive a partition's drift after its snapshot was materialized (a
# run that already materialized `policy_drift` with the snapshot leaves nothing to request).
policy_drift_sensor = eager_sensor(
    "policy_drift_after_snapshot",
    policy_drift,
    "Evaluates `policy_drift`'s eager condition: re-derive a partition after its snapshot.",
)

# Re-derive one partition's drift on demand (the demo, an operator after pinning a baseline or accepting).
drift_job = define_asset_job(
    DRIFT_JOB_NAME,
    selection=AssetSelection.assets(policy_drift),
    description="One (tenant, selection) partition: its drift, published, with the drift check.",
)
