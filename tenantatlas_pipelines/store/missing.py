"""Missing items: derived in SQL (sql/001_core.sql `missing_items_for`), never stored as item state.

An item is missing when its type is in the selection and it was not observed since the latest finished
run of the same (tenant, selection_hash) started. Confidence is high only when that run succeeded
without errors, so "we could not look" never reads as "it is gone".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .scope import TenantScope

NO_FINISHED_RUN = "no_finished_run"


@dataclass(frozen=True)
class MissingItem:
    policy_type: str
    external_id: str
    display_name: str | None
    last_seen_at: datetime
    last_seen_sync_run_id: int
    confidence: str  # 'high' | 'low'
    reason: str  # 'not_observed' | 'run_incomplete' | 'type_failed'


@dataclass(frozen=True)
class MissingResult:
    items: list[MissingItem]
    run_id: int | None
    run_status: str | None
    # Why there can be no missing items (e.g. no finished run yet); None when a reference run exists.
    reason: str | None

    @property
    def high(self) -> int:
        return sum(1 for i in self.items if i.confidence == "high")

    @property
    def low(self) -> int:
        return sum(1 for i in self.items if i.confidence == "low")


def missing_items(scope: TenantScope, selection_hash: str) -> MissingResult:
    """Missing items of this tenant for one selection lineage, with the reference run they rest on."""
    ref = scope.conn.execute(
        """SELECT id, status FROM inventory_sync_runs
           WHERE tenant_id = %s AND selection_hash = %s AND status IN ('succeeded', 'partial', 'failed')
           ORDER BY started_at DESC, id DESC LIMIT 1""",
        (scope.tenant_id, selection_hash),
    ).fetchone()
    if ref is None:
        return MissingResult([], None, None, NO_FINISHED_RUN)
    rows = scope.conn.execute(
        """SELECT policy_type, external_id, display_name, last_seen_at, last_seen_sync_run_id,
                  confidence, reason
           FROM missing_items_for(%s, %s)""",
        (scope.tenant_id, selection_hash),
    ).fetchall()
    return MissingResult([MissingItem(*r) for r in rows], int(ref[0]), ref[1], None)
