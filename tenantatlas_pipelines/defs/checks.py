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

from ..store.inventory import InventoryItem, list_items
from ..store.missing_snapshots import get_snapshot, read_partition
from ..store.scope import tenant_scope
from ..store.selections import get_selection
from ..store.tenants import get_tenant
from . import invariants
from .assets import inventory_sync, missing_items
from .partitions import partition_ref, sync_partitions
from .resources import InventoryDatabase

_MAX_LISTED = 20

# Partitioned checks are "preview" in Dagster 1.13; we rely on them deliberately (per-partition check
# status in the UI) and pin the Dagster version, so the warning would only be noise in every process.
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=PreviewWarning
)


def _partition_items(
    context: AssetCheckExecutionContext, inventory_db: InventoryDatabase
) -> list[InventoryItem]:
    """The inventory rows of the partition's tenant for the partition's selection (read once)."""
    ref = partition_ref(context.partition_key)
    with inventory_db.get_database().connect() as conn:
        tenant = get_tenant(conn, ref.tenant)
        selection = get_selection(conn, ref.selection)
        scope = tenant_scope(conn, tenant.tenant_id)
        return [item for policy_type in selection.policy_types for item in list_items(scope, policy_type)]


def _spec(name: str, asset: AssetsDefinition, description: str) -> AssetCheckSpec:
    return AssetCheckSpec(name, asset=asset, partitions_def=sync_partitions, description=description)


# One step per asset evaluates its checks from one read: fewer steps and queries per run (every run pays
# per-step overhead), while the UI still shows each check on its own.
@multi_asset_check(
    specs=[
        _spec(
            "inventory_identities_unique",
            inventory_sync,
            "One inventory row per (policy_type, external_id) of the tenant (ids case-insensitive).",
        ),
        _spec(
            "inventory_meta_within_whitelist",
            inventory_sync,
            "Stored metadata keys are within each policy type's whitelist (nothing else may be kept).",
        ),
    ],
)
def inventory_invariants(
    context: AssetCheckExecutionContext, inventory_db: InventoryDatabase
) -> Iterator[AssetCheckResult]:
    items = _partition_items(context, inventory_db)
    dupes = invariants.duplicate_identities((i.policy_type, i.external_id) for i in items)
    yield AssetCheckResult(
        asset_key=inventory_sync.key,
        check_name="inventory_identities_unique",
        passed=not dupes,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "items": len(items),
            "duplicates": len(dupes),
            "examples": ", ".join(f"{t}/{i}" for t, i in dupes[:_MAX_LISTED]) or "none",
        },
    )
    bad = invariants.meta_keys_outside_whitelist((i.policy_type, i.meta) for i in items)
    yield AssetCheckResult(
        asset_key=inventory_sync.key,
        check_name="inventory_meta_within_whitelist",
        passed=not bad,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "items": len(items),
            "policy_types_with_extra_keys": len(bad),
            "extra_keys": "; ".join(f"{t}: {', '.join(k)}" for t, k in bad.items()) or "none",
        },
    )


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
        scope = tenant_scope(conn, get_tenant(conn, ref.tenant).tenant_id)
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


ALL_CHECKS = [inventory_invariants, missing_items_invariants]
