"""drift_items + drift_results (sql/080): the published drift of each (tenant, selection) partition.

The `policy_drift` asset publishes a partition by replacing it whole in one transaction (DELETE, INSERT,
summary upsert), so analysts see the previous result or the new one, never a mix, and a re-run is always
safe. The summary row also records "computed, no drift" and "nothing to compare yet", which no item row
could.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from .scope import TenantScope


@dataclass(frozen=True)
class PublishedItem:
    """One item row as written and read back (changes as a list of {path, baseline, current})."""

    policy_type: str
    external_id: str
    display_name: str | None
    kind: str
    confidence: str
    reason: str | None
    accepted: bool
    changes: list[dict[str, Any]]


@dataclass(frozen=True)
class DriftCountColumns:
    """The counts a partition's summary row keeps (drift_results, and the analyst view over it): declared
    once for the row written here, the counts drift computes (drift/model.py) and the UI's row."""

    items: int
    changed: int
    added: int
    missing: int
    high: int
    low: int
    accepted: int
    unaccepted_high: int


COUNT_FIELDS = tuple(f.name for f in fields(DriftCountColumns))


@dataclass(frozen=True)
class DriftResult(DriftCountColumns):
    """The summary row of one published partition: its counts and these."""

    tenant_id: str
    tenant_key: str
    selection_name: str
    selection_hash: str
    status: str  # computed | no_snapshot
    no_drift_reason: str | None
    baseline_snapshot_id: int | None
    current_snapshot_id: int | None
    baseline_kind: str | None
    computed_at: datetime
    dagster_run_id: str | None


_RESULT_COLUMNS = (
    "tenant_id",
    "tenant_key",
    "selection_name",
    "selection_hash",
    "status",
    "no_drift_reason",
    "baseline_snapshot_id",
    "current_snapshot_id",
    "baseline_kind",
    *COUNT_FIELDS,
    "computed_at",
    "dagster_run_id",
)

_INSERT_ITEM = """INSERT INTO drift_items (tenant_id, tenant_key, selection_name, selection_hash,
    baseline_snapshot_id, current_snapshot_id, baseline_kind, policy_type, external_id, display_name, kind,
    confidence, reason, accepted, changes, change_count, computed_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"""

_UPSERT_RESULT = f"""INSERT INTO drift_results ({", ".join(_RESULT_COLUMNS)})
VALUES ({", ".join(["%s"] * len(_RESULT_COLUMNS))})
ON CONFLICT (tenant_id, selection_name) DO UPDATE SET
{", ".join(f"{c} = EXCLUDED.{c}" for c in _RESULT_COLUMNS[2:])}"""


def replace_partition(scope: TenantScope, result: DriftResult, items: Sequence[PublishedItem]) -> int:
    """Publish one partition atomically: its items replaced whole and its summary row; returns the
    number of item rows written."""
    assert result.tenant_id == scope.tenant_id
    conn = scope.conn
    rows = [
        (
            scope.tenant_id,
            result.tenant_key,
            result.selection_name,
            result.selection_hash,
            result.baseline_snapshot_id,
            result.current_snapshot_id,
            result.baseline_kind,
            i.policy_type,
            i.external_id,
            i.display_name,
            i.kind,
            i.confidence,
            i.reason,
            i.accepted,
            Jsonb(i.changes),
            len(i.changes),
            result.computed_at,
        )
        for i in items
    ]
    with conn.transaction():
        conn.execute(
            "DELETE FROM drift_items WHERE tenant_id = %s AND selection_name = %s",
            (scope.tenant_id, result.selection_name),
        )
        if rows:
            with conn.cursor() as cur:
                cur.executemany(_INSERT_ITEM, rows)
        conn.execute(_UPSERT_RESULT, tuple(getattr(result, c) for c in _RESULT_COLUMNS))
    conn.commit()  # the block is a savepoint when the scope's binding left a transaction open
    return len(rows)


def get_result(scope: TenantScope, selection_name: str) -> DriftResult | None:
    """The summary of one published partition, or None when it was never published."""
    with scope.conn.cursor(row_factory=class_row(DriftResult)) as cur:
        return cur.execute(
            f"""SELECT {", ".join(_RESULT_COLUMNS)} FROM drift_results
                WHERE tenant_id = %s AND selection_name = %s""",
            (scope.tenant_id, selection_name),
        ).fetchone()


def read_partition(scope: TenantScope, selection_name: str) -> list[PublishedItem]:
    """The published items of one partition, ordered by identity."""
    with scope.conn.cursor(row_factory=class_row(PublishedItem)) as cur:
        return cur.execute(
            """SELECT policy_type, external_id, display_name, kind, confidence, reason, accepted, changes
               FROM drift_items WHERE tenant_id = %s AND selection_name = %s
               ORDER BY policy_type, external_id""",
            (scope.tenant_id, selection_name),
        ).fetchall()
