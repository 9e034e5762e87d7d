"""Per-tenant freshness: the `inventory_sync_fresh` check of every (tenant, selection) partition.

Why not a Dagster FreshnessPolicy: in 1.13 it judges an asset's latest materialization across all
partitions, so one fresh tenant hides an overdue one. Here the check is partitioned like the asset:
every sync materialization reports it passed (the partition was just synced); when a sync fails, its
step reports it from the ledger (age of the last sync that read something); and the freshness sensor
reports it failed, with WARN severity, for each partition whose last good sync is older than the
schedule's interval plus a grace period, so an overdue tenant shows a warning in the UI. The sensor
reports a partition once when it becomes overdue (its cursor remembers which are), never every tick.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from dagster import AssetCheckEvaluation, AssetCheckResult, AssetCheckSeverity, AssetKey

from .partitions import PartitionRef

FRESH_CHECK = "inventory_sync_fresh"
ASSET = "inventory_sync"
GRACE_ENV = "TENANTATLAS_FRESHNESS_GRACE_S"
DEFAULT_GRACE_S = 3600


def freshness_limit(cron: str, timezone: str, now: datetime, grace_s: float | None = None) -> timedelta:
    """How old a partition's last good sync may be: the schedule's interval (two ticks apart) + grace."""
    from dagster._utils.schedules import cron_string_iterator

    ticks = cron_string_iterator(now.timestamp(), cron, timezone)
    first, second = next(ticks), next(ticks)
    grace = float(os.environ.get(GRACE_ENV, DEFAULT_GRACE_S)) if grace_s is None else grace_s
    return (second - first) + timedelta(seconds=grace)


def schedule_limit(now: datetime) -> timedelta:
    """The limit for the configured sync schedule (TENANTATLAS_SYNC_CRON / _TIMEZONE)."""
    from .schedules import TIMEZONE_ENV, sync_cron

    return freshness_limit(sync_cron(), os.environ.get(TIMEZONE_ENV, "UTC"), now)


def fresh_result(synced_at: datetime | None, now: datetime, limit: timedelta) -> AssetCheckResult:
    """The check's verdict for one partition (as a result its own step can yield)."""
    age = None if synced_at is None else now - synced_at
    passed = age is not None and age <= limit
    if synced_at is None:
        what = "never synced successfully"
    else:
        hours = age.total_seconds() / 3600 if age is not None else 0.0
        what = f"last good sync {synced_at.isoformat(timespec='seconds')} ({hours:.1f} h ago)"
    return AssetCheckResult(
        check_name=FRESH_CHECK,
        passed=passed,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "last_good_sync_at": synced_at.isoformat(timespec="seconds") if synced_at else "never",
            "limit_hours": round(limit.total_seconds() / 3600, 2),
        },
        description=None if passed else f"Overdue: {what}; the limit is {limit} (schedule interval + grace).",
    )


def overdue_evaluations(
    partitions: Iterable[PartitionRef],
    synced_at: Mapping[tuple[str, str], datetime],
    reported: set[str],
    now: datetime,
    limit: timedelta,
) -> tuple[list[AssetCheckEvaluation], set[str]]:
    """Failing evaluations for partitions newly overdue, and the set overdue now (the next cursor)."""
    evaluations: list[AssetCheckEvaluation] = []
    overdue: set[str] = set()
    for ref in partitions:
        result = fresh_result(synced_at.get((ref.tenant, ref.selection)), now, limit)
        if result.passed:
            continue
        key = str(ref.key)
        overdue.add(key)
        if key not in reported:
            evaluations.append(
                AssetCheckEvaluation(
                    asset_key=AssetKey(ASSET),
                    check_name=FRESH_CHECK,
                    passed=False,
                    severity=AssetCheckSeverity.WARN,
                    metadata=result.metadata,
                    description=result.description,
                    partition=key,
                )
            )
    return evaluations, overdue


def load_cursor(cursor: str | None) -> set[str]:
    return set(json.loads(cursor)) if cursor else set()


def dump_cursor(overdue: set[str]) -> str:
    return json.dumps(sorted(overdue))


def utcnow() -> datetime:
    return datetime.now(UTC)
