"""The sync job: both inventory assets (and their checks) for one partition, in one run.

Why one job for both: missing items are refreshed right after each sync in the same run, with no
daemon or UI toggle involved, and `missing_items` is skipped when its sync failed.
"""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from .assets import inventory_sync, missing_items

SYNC_JOB_NAME = "inventory_sync_job"

sync_job = define_asset_job(
    SYNC_JOB_NAME,
    selection=AssetSelection.assets(inventory_sync, missing_items),
    description="One (tenant, selection) partition: sync run, then its missing items, with asset checks.",
)
