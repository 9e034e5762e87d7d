"""Asset checks, partitioned like their assets, evaluated in the same run after each materialization.

Each check reads through the store (no SQL here) and decides with a pure function from invariants.py.
"""

from collections.abc import Iterator

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetsDefinition,
    multi_asset_check,
)

from ..db import Database
from ..store.missing_snapshots import get_snapshot, read_partition
from ..store.scope import tenant_scope
from ..store.tenants import get_tenant_by_key
from . import invariants
from .assets import missing_items
from .partitions import PartitionRef, partition_ref, sync_partitions
from .resources import InventoryDatabase

_MAX_LISTED = 20


def _spec(name: str, asset: AssetsDefinition, description: str) -> AssetCheckSpec:
    return AssetCheckSpec(name, asset=asset, partitions_def=sync_partitions, description=description)


# The missing-items checks run as their own step after the asset (they read what it published); the
# inventory checks are the inventory asset's own check_specs (inventory_checks.py).
MISSING_CHECK_NAMES = ("missing_items_unique", "missing_items_never_deleted")


@multi_asset_check(
    specs=[
        _spec("missing_items_unique", missing_items, "The published missing items hold each identity once."),
        _spec(
            "missing_items_never_deleted",
            missing_items,
            "Nothing is ever called `deleted`: missing items carry confidence high/low, never a verdict.",
        ),
    ],
)
def missing_items_invariants(
    context: AssetCheckExecutionContext, inventory_db: InventoryDatabase
) -> Iterator[AssetCheckResult]:
    yield from missing_items_check_results(inventory_db.get_database(), partition_ref(context.partition_key))


def missing_items_check_results(db: Database, ref: PartitionRef) -> list[AssetCheckResult]:
    """Both checks on the partition's published missing items (the table as it stands now).

    Also called by `inventory_sync` when its sync fails: `missing_items` is then not refreshed, the
    published snapshot stays what it was, and these checks report on that snapshot instead of
    showing as "execution failed" checks that never ran (see docs/orchestration.md).
    """
    from .reporting import MISSING_COLUMNS

    with db.connect() as conn:
        scope = tenant_scope(conn, get_tenant_by_key(conn, ref.tenant).tenant_id)
        rows = read_partition(scope, ref.selection)
        snapshot = get_snapshot(scope, ref.selection)
    dupes = invariants.duplicate_identities((r.policy_type, r.external_id) for r in rows)
    values: list[object] = [v for r in rows for v in (r.confidence, r.reason)]
    if snapshot is not None:
        values += [snapshot.reference_status, snapshot.no_reference_reason]
    found = invariants.deleted_markers(MISSING_COLUMNS, values)
    bad_confidence = sorted({r.confidence for r in rows} - {"high", "low"})
    return [
        AssetCheckResult(
            asset_key=missing_items.key,
            check_name="missing_items_unique",
            passed=not dupes,
            severity=AssetCheckSeverity.ERROR,
            metadata={"rows": len(rows), "duplicates": len(dupes)},
        ),
        AssetCheckResult(
            asset_key=missing_items.key,
            check_name="missing_items_never_deleted",
            passed=not found and not bad_confidence,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "rows": len(rows),
                "found": "; ".join(found) or "none",
                "unexpected_confidence": ", ".join(bad_confidence) or "none",
            },
        ),
    ]


ALL_CHECKS = [missing_items_invariants]
