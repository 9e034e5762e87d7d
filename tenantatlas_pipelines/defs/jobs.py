"""The sync job: both inventory assets (and their checks) for one partition, in one run.

Why one job for both: missing items are refreshed right after each sync in the same run, with no
daemon or UI toggle involved, and `missing_items` is skipped when its sync failed.
"""

from __future__ import annotations

from dagster import AssetSelection, PartitionedConfig, define_asset_job

from .assets import inventory_sync, missing_items
from .partitions import partition_ref, sync_partitions

SYNC_JOB_NAME = "inventory_sync_job"


def partition_run_tags(partition_key: str) -> dict[str, str]:
    """Tags that say which tenant and selection a run syncs, in words, next to Dagster's own
    `dagster/partition/*` tags (which the run queue's per-tenant limit keys on)."""
    ref = partition_ref(partition_key)
    return {"tenant": ref.tenant, "selection": ref.selection}


sync_job = define_asset_job(
    SYNC_JOB_NAME,
    selection=AssetSelection.assets(inventory_sync, missing_items),
    description="One (tenant, selection) partition: sync run, then its missing items, with asset checks. "
    "Launch backfills from this job's page: its runs carry the job's name and the tenant/selection "
    "tags (runs launched from an asset's page belong to Dagster's unnamed asset job).",
    # Per-partition run tags: applied to schedule and sensor requests and to launches from this job.
    config=PartitionedConfig(
        partitions_def=sync_partitions,
        run_config_for_partition_key_fn=lambda _key: {},
        tags_for_partition_key_fn=partition_run_tags,
    ),
)
