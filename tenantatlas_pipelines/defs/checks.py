"""Asset checks, partitioned like their assets, evaluated in the same run after each materialization.

Each check reads through the store (no SQL here) and decides with a pure function from invariants.py.
"""

import warnings
from collections.abc import Iterator

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetsDefinition,
    PreviewWarning,
    multi_asset_check,
)

from ..store.missing_snapshots import get_snapshot, read_partition
from ..store.scope import tenant_scope
from ..store.tenants import get_tenant_by_key
from . import invariants
from .assets import missing_items
from .partitions import partition_ref, sync_partitions
from .resources import InventoryDatabase

_MAX_LISTED = 20

# Partitioned checks are "preview" in Dagster 1.13; we rely on them deliberately (per-partition check
# status in the UI) and pin the Dagster version, so the warning would only be noise in every process.
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=PreviewWarning
)


def _spec(name: str, asset: AssetsDefinition, description: str) -> AssetCheckSpec:
    return AssetCheckSpec(name, asset=asset, partitions_def=sync_partitions, description=description)


# The missing-items checks run as their own step after the asset (they read what it published); the
# inventory checks are the inventory asset's own check_specs (inventory_checks.py).
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
    from .reporting import MISSING_COLUMNS

    ref = partition_ref(context.partition_key)
    with inventory_db.get_database().connect() as conn:
        scope = tenant_scope(conn, get_tenant_by_key(conn, ref.tenant).tenant_id)
        rows = read_partition(scope, ref.selection)
        snapshot = get_snapshot(scope, ref.selection)
    dupes = invariants.duplicate_identities((r.policy_type, r.external_id) for r in rows)
    yield AssetCheckResult(
        asset_key=missing_items.key,
        check_name="missing_items_unique",
        passed=not dupes,
        severity=AssetCheckSeverity.ERROR,
        metadata={"rows": len(rows), "duplicates": len(dupes)},
    )
    values: list[object] = [v for r in rows for v in (r.confidence, r.reason)]
    if snapshot is not None:
        values += [snapshot.reference_status, snapshot.no_reference_reason]
    found = invariants.deleted_markers(MISSING_COLUMNS, values)
    bad_confidence = sorted({r.confidence for r in rows} - {"high", "low"})
    yield AssetCheckResult(
        asset_key=missing_items.key,
        check_name="missing_items_never_deleted",
        passed=not found and not bad_confidence,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "rows": len(rows),
            "found": "; ".join(found) or "none",
            "unexpected_confidence": ", ".join(bad_confidence) or "none",
        },
    )


ALL_CHECKS = [missing_items_invariants]
