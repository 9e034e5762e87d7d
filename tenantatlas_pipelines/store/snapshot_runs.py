"""The snapshot-run ledger (snapshot_runs / snapshot_run_types): one `RunLedger` (run_ledger.py), the
counts only snapshots keep, and the reads drift, compare, dependencies and the CLI need.

Like the sync ledger: a row when a snapshot starts, per-type outcomes as it goes, totals summed from the
types when it ends. Unlike it, a finalised row never changes again (sql/065 enforces it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from ..errors import ErrorCode, TenantAtlasError
from .run_ledger import LedgerRunRow, LedgerTypeRow, RunLedger
from .scope import TenantScope

COUNTERS = (
    "objects",
    "new_versions",
    "items_errors",
    "references_total",
    "references_unresolved",
    "requests",
    "throttled",
    "retries",
)


@dataclass(frozen=True)
class SnapshotTypeOutcome(LedgerTypeRow):
    objects: int = 0
    new_versions: int = 0
    items_errors: int = 0
    references_total: int = 0
    references_unresolved: int = 0


@dataclass(frozen=True)
class SnapshotRun(LedgerRunRow):
    objects: int
    new_versions: int
    items_errors: int
    references_total: int
    references_unresolved: int
    types: tuple[SnapshotTypeOutcome, ...] = field(default=())

    def type_outcome(self, policy_type: str) -> SnapshotTypeOutcome | None:
        return next((t for t in self.types if t.policy_type == policy_type), None)

    def read_cleanly(self, policy_type: str) -> bool:
        """Whether this snapshot read the type completely and without item errors (drift's `high`)."""
        t = self.type_outcome(policy_type)
        return t is not None and t.status == "succeeded" and t.items_errors == 0


LEDGER: RunLedger[SnapshotRun, SnapshotTypeOutcome] = RunLedger(
    kind="snapshot",
    runs_table="snapshot_runs",
    types_table="snapshot_run_types",
    run_fk="snapshot_run_id",
    counters=COUNTERS,
    run_row=SnapshotRun,
    type_row=SnapshotTypeOutcome,
)

# The ledger half of storing a batch of objects (store/snapshot_objects.py runs it in the same
# transaction as the versions and memberships it counts).
BATCH_COUNTS_UPDATE = """
UPDATE snapshot_run_types
SET objects = objects + %(observed)s, new_versions = new_versions + %(new)s,
    items_errors = items_errors + %(errors)s, pages = pages + %(pages)s,
    started_at = coalesce(started_at, now())
WHERE tenant_id = %(tenant_id)s AND snapshot_run_id = %(run_id)s AND policy_type = %(policy_type)s"""

REFERENCE_COUNTS_UPDATE = """
UPDATE snapshot_run_types
SET references_total = references_total + %(total)s,
    references_unresolved = references_unresolved + %(unresolved)s
WHERE tenant_id = %(tenant_id)s AND snapshot_run_id = %(run_id)s AND policy_type = %(policy_type)s"""


def get_snapshot(scope: TenantScope, snapshot_id: int) -> SnapshotRun:
    """One snapshot of this tenant; SNAPSHOT_NOT_FOUND for an unknown id or another tenant's."""
    run = LEDGER.get_run(scope, snapshot_id)
    if run is None:
        raise TenantAtlasError(
            ErrorCode.SNAPSHOT_NOT_FOUND, f"no snapshot {snapshot_id} for tenant {scope.tenant_id}"
        )
    return run


def latest_snapshot(
    scope: TenantScope, selection_hash: str, *, statuses: tuple[str, ...] = ("succeeded",),
    before_id: int | None = None,
) -> SnapshotRun | None:
    """The latest snapshot of a (tenant, selection_hash) with one of `statuses` (default: succeeded),
    optionally older than snapshot `before_id` (drift's "previous"); None when there is none."""
    found = latest_snapshot_id(
        scope.conn, scope.tenant_id, selection_hash, statuses=statuses, before_id=before_id
    )
    return LEDGER.get_run(scope, found) if found is not None else None


def latest_snapshot_id(
    conn: psycopg.Connection,
    tenant_id: str,
    selection_hash: str,
    *,
    statuses: tuple[str, ...] = ("succeeded",),
    before_id: int | None = None,
) -> int | None:
    """The id `latest_snapshot` reads, on a connection the caller has set up (a tenant scope's, or the
    UI's read-only analyst session); ordered as the snapshot_runs_lineage index is."""
    row = conn.execute(
        """SELECT id FROM snapshot_runs
           WHERE tenant_id = %s AND selection_hash = %s AND status = ANY(%s)
             AND (%s::bigint IS NULL OR id < %s)
           ORDER BY started_at DESC, id DESC LIMIT 1""",
        (tenant_id, selection_hash, list(statuses), before_id, before_id),
    ).fetchone()
    return int(row[0]) if row else None


def latest_succeeded_snapshot(scope: TenantScope, selection_hash: str) -> SnapshotRun | None:
    """The latest succeeded snapshot of a (tenant, selection_hash), or None."""
    return latest_snapshot(scope, selection_hash)


def list_snapshots(
    scope: TenantScope, selection_hash: str | None = None, limit: int = 50
) -> list[SnapshotRun]:
    """This tenant's snapshots, newest first, optionally of one selection lineage."""
    return LEDGER.list_runs(scope, selection_hash, limit)
