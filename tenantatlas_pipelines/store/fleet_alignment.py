"""fleet_alignment / fleet_alignment_deviations: a tenant's latest alignment with the golden tenant.

Replaced whole per tenant in one transaction (delete, insert the row and its deviations, commit), so an
analyst never sees a tenant's score with another run's deviations, or half of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from ..compare.alignment import Alignment
from ..compare.model import change_dict
from .scope import TenantScope


@dataclass(frozen=True)
class AlignmentRecord:
    """What was stored for a tenant (golden side and snapshots, its score and counts)."""

    golden_tenant_id: str
    selection_name: str
    selection_hash: str
    snapshot_id: int
    golden_snapshot_id: int


@dataclass(frozen=True)
class AlignmentRow:
    tenant_id: str
    golden_tenant_id: str
    selection_name: str
    snapshot_id: int
    golden_snapshot_id: int
    score: float
    golden_objects: int
    identical: int
    different: int
    only_in_golden: int
    only_in_tenant: int
    ambiguous: int
    computed_at: datetime
    dagster_run_id: str | None


def replace_alignment(scope: TenantScope, record: AlignmentRecord, alignment: Alignment, *,
                      dagster_run_id: str | None = None) -> None:
    """Store this tenant's alignment, replacing the previous one and its deviations atomically."""
    conn = scope.conn
    with conn.transaction():
        conn.execute("DELETE FROM fleet_alignment WHERE tenant_id = %s", (scope.tenant_id,))
        c = alignment.counts
        conn.execute(
            """INSERT INTO fleet_alignment (tenant_id, golden_tenant_id, selection_name, selection_hash,
                   snapshot_id, golden_snapshot_id, score, golden_objects, identical, different,
                   only_in_golden, only_in_tenant, ambiguous, dagster_run_id)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (scope.tenant_id, record.golden_tenant_id, record.selection_name, record.selection_hash,
             record.snapshot_id, record.golden_snapshot_id, alignment.score, alignment.golden_objects,
             c["identical"], c["different"], c["only_in_golden"], c["only_in_tenant"], c["ambiguous"],
             dagster_run_id),
        )
        rows = [
            (scope.tenant_id, d.policy_type, d.display_name, str(d.match), list(d.source_external_ids),
             list(d.target_external_ids), Jsonb([change_dict(ch) for ch in d.changes]), len(d.changes))
            for d in alignment.deviations
        ]
        if rows:
            with conn.cursor() as cur:
                cur.executemany(
                    """INSERT INTO fleet_alignment_deviations (tenant_id, policy_type, display_name, match,
                           golden_external_ids, tenant_external_ids, changes, change_count)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
                    rows,
                )
    conn.commit()


def get_alignment(scope: TenantScope) -> AlignmentRow | None:
    """This tenant's stored alignment, or None before the first one."""
    with scope.conn.cursor(row_factory=class_row(AlignmentRow)) as cur:
        return cur.execute(
            """SELECT tenant_id, golden_tenant_id, selection_name, snapshot_id, golden_snapshot_id, score,
                      golden_objects, identical, different, only_in_golden, only_in_tenant, ambiguous,
                      computed_at, dagster_run_id
               FROM fleet_alignment WHERE tenant_id = %s""",
            (scope.tenant_id,),
        ).fetchone()


def deviations(scope: TenantScope) -> list[tuple[str, str, str, int]]:
    """(policy_type, display_name, match, change_count) of this tenant's stored deviations."""
    return [
        (r[0], r[1], r[2], int(r[3]))
        for r in scope.conn.execute(
            """SELECT policy_type, display_name, match, change_count FROM fleet_alignment_deviations
               WHERE tenant_id = %s ORDER BY policy_type, display_name""",
            (scope.tenant_id,),
        ).fetchall()
    ]
