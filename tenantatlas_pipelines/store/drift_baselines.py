"""drift_baselines (sql/080): the snapshot an operator pinned as the baseline of a (tenant, selection).

At most one pin per selection lineage (selection hash); no pin means drift compares against the previous
succeeded snapshot. Which snapshots may be pinned is decided by the caller (drift/baselines.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row

from .scope import TenantScope


@dataclass(frozen=True)
class Baseline:
    tenant_id: str
    selection_hash: str
    selection_name: str
    snapshot_run_id: int
    pinned_by: str
    pinned_at: datetime


def pin_baseline(
    scope: TenantScope, selection_hash: str, selection_name: str, snapshot_id: int, pinned_by: str
) -> Baseline:
    """Pin (or re-pin) the baseline of a selection lineage; committed."""
    with scope.conn.cursor(row_factory=class_row(Baseline)) as cur:
        row = cur.execute(
            """INSERT INTO drift_baselines (tenant_id, selection_hash, selection_name, snapshot_run_id,
                   pinned_by)
               VALUES (%s, %s, %s, %s, %s)
               ON CONFLICT (tenant_id, selection_hash) DO UPDATE SET
                   selection_name = EXCLUDED.selection_name, snapshot_run_id = EXCLUDED.snapshot_run_id,
                   pinned_by = EXCLUDED.pinned_by, pinned_at = now()
               RETURNING tenant_id, selection_hash, selection_name, snapshot_run_id, pinned_by, pinned_at""",
            (scope.tenant_id, selection_hash, selection_name, snapshot_id, pinned_by),
        ).fetchone()
    scope.conn.commit()
    assert row is not None
    return row


def get_baseline(scope: TenantScope, selection_hash: str) -> Baseline | None:
    """The pinned baseline of a selection lineage, or None."""
    with scope.conn.cursor(row_factory=class_row(Baseline)) as cur:
        return cur.execute(
            """SELECT tenant_id, selection_hash, selection_name, snapshot_run_id, pinned_by, pinned_at
               FROM drift_baselines WHERE tenant_id = %s AND selection_hash = %s""",
            (scope.tenant_id, selection_hash),
        ).fetchone()


def clear_baseline(scope: TenantScope, selection_hash: str) -> bool:
    """Remove the pin (drift falls back to the previous snapshot); whether there was one. Committed."""
    cur = scope.conn.execute(
        "DELETE FROM drift_baselines WHERE tenant_id = %s AND selection_hash = %s",
        (scope.tenant_id, selection_hash),
    )
    scope.conn.commit()
    return cur.rowcount > 0


@dataclass(frozen=True)
class Candidates:
    """The snapshot ids drift chooses from, read in one statement: the current one (latest succeeded or
    partial), the pinned baseline and the previous succeeded one before the current (None: none)."""

    current_id: int | None
    pinned_id: int | None
    previous_id: int | None


# The same orderings as store.snapshot_runs.latest_snapshot, in one round trip (drift runs after every
# snapshot of every tenant; three statements here would be most of its time on a quiet tenant).
_CANDIDATES = """
WITH cur AS (
    SELECT id FROM snapshot_runs
    WHERE tenant_id = %(t)s AND selection_hash = %(h)s AND status IN ('succeeded', 'partial')
    ORDER BY started_at DESC, id DESC LIMIT 1)
SELECT (SELECT id FROM cur),
       (SELECT snapshot_run_id FROM drift_baselines WHERE tenant_id = %(t)s AND selection_hash = %(h)s),
       (SELECT id FROM snapshot_runs
        WHERE tenant_id = %(t)s AND selection_hash = %(h)s AND status = 'succeeded'
          AND id < (SELECT id FROM cur)
        ORDER BY started_at DESC, id DESC LIMIT 1)"""


def drift_candidates(scope: TenantScope, selection_hash: str) -> Candidates:
    """Current, pinned and previous snapshot ids of a selection lineage (see Candidates)."""
    row = scope.conn.execute(_CANDIDATES, {"t": scope.tenant_id, "h": selection_hash}).fetchone()
    assert row is not None
    return Candidates(*(int(v) if v is not None else None for v in row))
