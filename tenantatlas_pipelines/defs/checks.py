"""The missing-items checks, partitioned like their asset, evaluated in its step after it published.

Each check reads through the store (no SQL here) and decides with a pure function from invariants.py.
"""

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey

from ..db import Database
from ..store.missing_snapshots import get_snapshot, read_partition
from ..store.scope import tenant_scope
from ..store.tenants import get_tenant_by_key
from . import invariants
from .partitions import PartitionRef, sync_partitions

_MAX_LISTED = 20


# The missing-items checks are the missing_items asset's own check_specs, evaluated in its step right
# after it published (one step less per run than a separate check step: measured in bench/fleet.py);
# the inventory checks are the inventory asset's own check_specs (inventory_checks.py).
MISSING_ITEMS_KEY = AssetKey("missing_items")
MISSING_CHECK_NAMES = ("missing_items_unique", "missing_items_never_deleted")
MISSING_CHECK_SPECS = [
    AssetCheckSpec(name, asset=MISSING_ITEMS_KEY, partitions_def=sync_partitions, description=description)
    for name, description in (
        ("missing_items_unique", "The published missing items hold each identity once."),
        (
            "missing_items_never_deleted",
            "Nothing is ever called `deleted`: missing items carry confidence high/low, never a verdict.",
        ),
    )
]


def missing_items_check_results(db: Database, ref: PartitionRef) -> list[AssetCheckResult]:
    """Both checks on the partition's published missing items (the table as it stands now).

    Also called by `inventory_sync` when its sync fails: `missing_items` is then not refreshed, the
    published snapshot stays what it was, and these checks report on that snapshot instead of
    showing as "execution failed" checks that never ran (see docs/orchestration.md).
    """
    from .reporting import MISSING_COLUMNS

    with db.pooled() as conn:
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
            asset_key=MISSING_ITEMS_KEY,
            check_name="missing_items_unique",
            passed=not dupes,
            severity=AssetCheckSeverity.ERROR,
            metadata={"rows": len(rows), "duplicates": len(dupes)},
        ),
        AssetCheckResult(
            asset_key=MISSING_ITEMS_KEY,
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


ALL_CHECKS: list[object] = []  # every inventory check is an asset's own check_specs now
