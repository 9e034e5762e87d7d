"""Which partitions to add, drop and request: plain functions the sensor and schedule wrap.

Kept free of Dagster and of I/O so the decisions (the part worth testing) are tested with plain values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from .partitions import PartitionRef


@dataclass(frozen=True)
class RegistryTenant:
    """What the planner needs of a tenant-registry row (store.tenants.Tenant satisfies it)."""

    key: str
    enabled: bool


@dataclass(frozen=True)
class PartitionDiff:
    """How the dynamic `tenant` partitions must change to mirror the registry."""

    add: tuple[str, ...]
    remove: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.add and not self.remove


def mirror_tenants(registry: Iterable[RegistryTenant], current_keys: Iterable[str]) -> PartitionDiff:
    """Partition keys = keys of the *enabled* tenants: add new ones, remove disabled or deleted ones.

    Why remove rather than keep disabled tenants: the partition set is what backfills ("all partitions")
    and the schedule act on, so a disabled tenant must leave it; Dagster keeps the materialization
    history under the key, and it reappears when the tenant is enabled again.
    """
    wanted = {t.key for t in registry if t.enabled}
    current = set(current_keys)
    return PartitionDiff(add=tuple(sorted(wanted - current)), remove=tuple(sorted(current - wanted)))


def scheduled_partitions(
    partition_tenants: Iterable[str],
    selections: Sequence[str],
    enabled_tenants: Iterable[str] | None = None,
) -> list[PartitionRef]:
    """Every (tenant, selection) the schedule requests, tenant-major so one tenant's runs queue together.

    Only tenants that are dynamic partitions can be requested (a RunRequest for an unknown key fails the
    tick); when the registry was readable, tenants disabled since the sensor's last tick are left out too.
    """
    tenants = set(partition_tenants)
    if enabled_tenants is not None:
        tenants &= set(enabled_tenants)
    return [PartitionRef(t, s) for t in sorted(tenants) for s in selections]


def schedule_run_key(scheduled_at: datetime, ref: PartitionRef) -> str:
    """Unique per (tick, partition): a retried or re-evaluated tick never launches a partition twice."""
    return f"sync:{scheduled_at.isoformat()}:{ref.tenant}:{ref.selection}"


def onboarding_run_key(ref: PartitionRef, generation: str) -> str:
    """Run key for the first sync of a tenant the registry sensor just added (once per addition)."""
    return f"onboard:{generation}:{ref.tenant}:{ref.selection}"


def followup_run_key(materialization_storage_id: int, ref: PartitionRef) -> str:
    """Run key for refreshing missing items after one sync materialization (once per materialization)."""
    return f"missing-after:{materialization_storage_id}:{ref.tenant}:{ref.selection}"
