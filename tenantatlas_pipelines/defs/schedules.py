"""The sync schedule: every (tenant, selection) partition, daily unless TENANTATLAS_SYNC_CRON says otherwise.

Each request carries a run key made of the tick's scheduled time and the partition, so a re-evaluated
or retried tick never launches a partition twice; the run queue then applies the global and per-tenant
limits from dagster.yaml.
"""

import os
from collections.abc import Sequence
from typing import Any

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)
from dagster._utils.schedules import is_valid_cron_string

from ..errors import ErrorCode, TenantAtlasError
from ..store.tenants import list_tenants
from . import planning
from .jobs import sync_job
from .partitions import SELECTION_NAMES, TENANT_PARTITIONS_NAME
from .resources import InventoryDatabase

CRON_ENV = "TENANTATLAS_SYNC_CRON"
TIMEZONE_ENV = "TENANTATLAS_SYNC_TIMEZONE"
DEFAULT_CRON = "0 3 * * *"  # daily, 03:00


def cron_from_env(env: str, default: str) -> str:
    """A schedule's cron string from `env`, validated so a typo fails at load with a clear message."""
    cron = os.environ.get(env, "").strip() or default
    if not is_valid_cron_string(cron):
        # The value is not quoted: no configuration value is ever echoed (it may be a misplaced secret).
        raise TenantAtlasError(
            ErrorCode.CONFIG_INVALID, f"{env} is not a valid cron string (five fields, e.g. '0 3 * * *')"
        )
    return cron


def sync_cron() -> str:
    """The sync schedule's cron string (TENANTATLAS_SYNC_CRON)."""
    return cron_from_env(CRON_ENV, DEFAULT_CRON)


def tick_requests(
    context: ScheduleEvaluationContext, inventory_db: InventoryDatabase
) -> list[RunRequest] | SkipReason:
    """A tick of a per-partition schedule: one request per partition of an enabled tenant."""
    partitions = context.instance.get_dynamic_partitions(TENANT_PARTITIONS_NAME)
    with inventory_db.get_database().connect() as conn:
        enabled = [t.key for t in list_tenants(conn, enabled_only=True)]
    return schedule_requests(context, partitions, enabled)


def schedule_requests(
    context: ScheduleEvaluationContext,
    partition_tenants: Sequence[str],
    enabled_tenants: Sequence[str] | None,
    selections: Sequence[str] = SELECTION_NAMES,
) -> list[RunRequest] | SkipReason:
    """One RunRequest per partition to sync on this tick, keyed by tick time and partition."""
    refs = planning.scheduled_partitions(partition_tenants, selections, enabled_tenants)
    if not refs:
        return SkipReason("no enabled tenant partitions yet (the tenant registry sensor adds them)")
    scheduled_at = context.scheduled_execution_time
    return [
        RunRequest(run_key=planning.schedule_run_key(scheduled_at, ref), partition_key=ref.key)
        for ref in refs
    ]


def partition_schedule(name: str, job: Any, cron: str, description: str) -> ScheduleDefinition:
    """A schedule of `job` that requests every enabled (tenant, selection) partition on each tick
    (`tick_requests`), running by default, in TENANTATLAS_SYNC_TIMEZONE (default UTC)."""

    @schedule(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone=os.environ.get(TIMEZONE_ENV, "UTC"),
        default_status=DefaultScheduleStatus.RUNNING,
        description=description,
    )
    def partition_tick(
        context: ScheduleEvaluationContext, inventory_db: InventoryDatabase
    ) -> list[RunRequest] | SkipReason:
        return tick_requests(context, inventory_db)

    return partition_tick


inventory_sync_schedule = partition_schedule(
    "inventory_sync_schedule",
    sync_job,
    sync_cron(),
    "Syncs every (tenant, selection) partition and refreshes its missing items.",
)
