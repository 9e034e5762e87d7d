"""The inventory asset's own checks, evaluated in its step right after the sync.

They are `check_specs` of `inventory_sync` rather than a separate check step: each run then pays for
one step instead of two (a step costs several stored events), and the UI still shows each check on its
own. The store aggregates what they need (counts, duplicate identities, distinct metadata keys) so a
tenant of 100,000 items costs the run three aggregate queries, not a read of every row; the decisions are
the pure functions of invariants.py.
"""

from __future__ import annotations

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue

from ..db import Database
from ..store.inventory import integrity_facts
from ..store.scope import tenant_scope
from ..store.selections import get_selection
from ..store.tenants import get_tenant_by_key
from . import invariants
from .partitions import PartitionRef, sync_partitions

_MAX_LISTED = 20
ASSET = "inventory_sync"
SYNC_COMPLETE = "inventory_sync_complete"

# Partitioned like the asset (Dagster 1.13 "preview", see checks.py): each partition has its own check
# status and history, and a check's plotted metadata never mixes tenants.
INVENTORY_CHECK_SPECS = [
    AssetCheckSpec(
        SYNC_COMPLETE,
        asset=ASSET,
        partitions_def=sync_partitions,
        description="The partition's latest sync read every policy type of its selection. Fails with "
        "WARN severity when the sync was partial (some types could not be read: the partition shows a "
        "warning instead of a clean green) and with ERROR severity when it failed.",
    ),
    AssetCheckSpec(
        "inventory_sync_fresh",
        asset=ASSET,
        partitions_def=sync_partitions,
        description="The partition's last sync that read something is younger than the schedule's "
        "interval plus a grace period (TENANTATLAS_FRESHNESS_GRACE_S, default 1 h). Each sync reports it; "
        "the freshness sensor fails it with WARN severity when a tenant is overdue.",
    ),
    AssetCheckSpec(
        "inventory_identities_unique",
        asset=ASSET,
        partitions_def=sync_partitions,
        description="One inventory row per (policy_type, external_id) of the tenant (ids case-insensitive).",
    ),
    AssetCheckSpec(
        "inventory_meta_within_whitelist",
        asset=ASSET,
        partitions_def=sync_partitions,
        description="Stored metadata keys are within each policy type's whitelist (nothing else is kept).",
    ),
]


def sync_complete_result(status: str, explanation: str | None) -> AssetCheckResult:
    """Passed for a clean (or skipped: another run is doing the work) sync; WARN for partial; ERROR
    for failed. The explanation (codes with the docs' sentences) goes into the check's description."""
    passed = status in ("succeeded", "skipped")
    severity = AssetCheckSeverity.ERROR if status == "failed" else AssetCheckSeverity.WARN
    return AssetCheckResult(
        check_name=SYNC_COMPLETE,
        passed=passed,
        severity=severity,
        metadata={"status": MetadataValue.text(status)},
        description=explanation,
    )


def inventory_check_results(db: Database, ref: PartitionRef) -> list[AssetCheckResult]:
    """Both checks for the partition's tenant and selection, from the store's aggregates."""
    with db.pooled() as conn:
        tenant = get_tenant_by_key(conn, ref.tenant)
        selection = get_selection(conn, ref.selection)
        facts = integrity_facts(tenant_scope(conn, tenant.tenant_id), selection.policy_types, _MAX_LISTED)
    bad = invariants.meta_keys_outside_whitelist(facts.meta_keys.items())
    return [
        AssetCheckResult(
            check_name="inventory_identities_unique",
            passed=not facts.duplicates,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "items": facts.items,
                "duplicates": facts.duplicates,
                "examples": ", ".join(f"{t}/{i}" for t, i in facts.duplicate_examples) or "none",
            },
        ),
        AssetCheckResult(
            check_name="inventory_meta_within_whitelist",
            passed=not bad,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "items": facts.items,
                "policy_types_with_extra_keys": len(bad),
                "extra_keys": "; ".join(f"{t}: {', '.join(k)}" for t, k in bad.items()) or "none",
            },
        ),
    ]
