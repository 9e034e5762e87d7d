"""The `dependency_edges` asset, its check, job and sensor (issue 15); thin wrappers over dependencies/.

`dependency_edges` has the snapshots' partitions (tenant x selection) and sits downstream of
`policy_snapshots`: materializing a partition derives the edges of its latest usable snapshot and
replaces the partition's published graph in one transaction. It is eager: the sensor below
materializes it after every new snapshot of a partition (the snapshot job itself stays the snapshot
engineer's), and `dependency_job` runs it on demand (CLI demo, backfills). The check warns, never
fails, on dangling references: a removed group is an operator's to-do, not a broken pipeline.
"""

from collections.abc import Iterator

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetSelection,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    asset,
    define_asset_job,
    multi_asset_check,
)

from ..dependencies.derive import derive_partition, partition_dangling
from .assets import _metadata
from .automation import eager_sensor, publish_partition, step_failure
from .partitions import partition_ref, sync_partitions
from .resources import InventoryDatabase
from .snapshots import policy_snapshots

GROUP = "dependencies"
DEPENDENCY_JOB_NAME = "dependency_edges_job"
_MAX_LISTED = 20


@asset(
    partitions_def=sync_partitions,
    deps=[policy_snapshots],
    group_name=GROUP,
    kinds={"python", "postgres"},
    automation_condition=AutomationCondition.eager(),
    description="The dependency graph of the partition's latest usable snapshot: object -> group "
    "(include/exclude), virtual targets, assignment filter (with mode), scope tag; filter -> scope tag. "
    "Published to `dependency_edges`, replaced whole per partition.",
)
def dependency_edges(context: AssetExecutionContext, inventory_db: InventoryDatabase) -> MaterializeResult:
    ref, result = publish_partition(context, inventory_db, derive_partition, step_failure("dependency edges"))
    if result.derived is None or result.header is None:
        context.log.warning(
            f"{ref.tenant}/{ref.selection} has no succeeded or partial snapshot yet: its published "
            "dependency graph is left as it was"
        )
        return MaterializeResult(metadata={"edges": 0, "snapshot_id": MetadataValue.text("none")})
    derived, header = result.derived, result.header
    metadata: dict[str, object] = {
        "edges": len(derived.edges), "objects": derived.objects, "dangling": derived.dangling,
        "unverified": derived.unverified, "unknown_targets": derived.unknown_targets,
        "snapshot_id": header.snapshot_run_id, "snapshot_status": header.snapshot_status,
        "dagster/row_count": len(derived.edges),
    }
    metadata.update({f"edges_{k}": v for k, v in derived.count_by("target_type").items()})
    context.log.info(
        f"published {len(derived.edges)} dependency edges of snapshot {header.snapshot_run_id} for "
        f"{ref.tenant}/{ref.selection} ({derived.dangling} dangling)"
    )
    return MaterializeResult(metadata=_metadata(metadata))


@multi_asset_check(
    specs=[
        AssetCheckSpec(
            "dependency_edges_no_dangling", asset=dependency_edges, partitions_def=sync_partitions,
            description="Warns when an object still references a group, filter or scope tag that Graph "
            "no longer returns (dangling; the object would silently target nobody).",
        )
    ],
)
def dependency_edges_dangling(
    context: AssetCheckExecutionContext, inventory_db: InventoryDatabase
) -> Iterator[AssetCheckResult]:
    ref = partition_ref(context.partition_key)
    header, dangling = partition_dangling(inventory_db.get_database(), ref.tenant, ref.selection)
    listed = [
        f"{e['policy_type']} {e['display_name'] or e['external_id']} -> {e['target_type']} "
        f"{e['target_id']} ({e['relation']})"
        for e in dangling[:_MAX_LISTED]
    ]
    yield AssetCheckResult(
        asset_key=dependency_edges.key,
        check_name="dependency_edges_no_dangling",
        passed=not dangling,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "dangling": len(dangling),
            "snapshot_id": header.snapshot_run_id if header else -1,
            "listed": MetadataValue.md("\n".join(f"- {x}" for x in listed) or "none"),
        },
    )


dependency_job = define_asset_job(
    DEPENDENCY_JOB_NAME,
    selection=AssetSelection.assets(dependency_edges),
    description="One (tenant, selection) partition: derive its dependency graph from its latest snapshot.",
)

# Materializes `dependency_edges` after a new snapshot of its partition, however the snapshot ran
# (its schedule, the CLI, a backfill).
dependency_edges_sensor = eager_sensor(
    "dependency_edges_after_snapshot",
    dependency_edges,
    "Evaluates `dependency_edges`' eager condition: re-derive a partition after its snapshot.",
)

DEPENDENCY_ASSETS = [dependency_edges]
DEPENDENCY_CHECKS = [dependency_edges_dangling]
DEPENDENCY_JOBS = [dependency_job]
DEPENDENCY_SENSORS = [dependency_edges_sensor]
