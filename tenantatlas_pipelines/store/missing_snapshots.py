"""Published missing-item snapshots (sql/020): the table analysts query, one partition at a time.

A partition is one (tenant, selection name). Publishing replaces it whole in one transaction (COPY into
a staging table, DELETE, INSERT ... SELECT, header upsert), so readers see the old snapshot or the new
one, never a mix, and a re-run is always safe. The header row records "computed, nothing missing" as
well, which no item row could.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from psycopg.rows import class_row

from .scope import TenantScope

# The columns of missing_items, in table order (the Dagster asset builds its DataFrame with them).
MISSING_ITEM_COLUMNS = (
    "tenant_id",
    "tenant_key",
    "selection_name",
    "selection_hash",
    "policy_type",
    "external_id",
    "display_name",
    "last_seen_at",
    "last_seen_sync_run_id",
    "confidence",
    "reason",
    "reference_sync_run_id",
    "computed_at",
)


class MissingRow(Protocol):
    """What a published row needs (store.missing.MissingItem and DataFrame itertuples both fit)."""

    policy_type: str
    external_id: str
    display_name: str | None
    last_seen_at: datetime
    last_seen_sync_run_id: int
    confidence: str
    reason: str | None


@dataclass(frozen=True)
class SnapshotHeader:
    """Which partition a snapshot is for and which sync run it rests on."""

    tenant_key: str
    selection_name: str
    selection_hash: str
    reference_sync_run_id: int | None
    reference_status: str | None
    no_reference_reason: str | None
    computed_at: datetime
    dagster_run_id: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """A published partition's header with its counts (read back for the CLI, checks and tests)."""

    tenant_id: str
    tenant_key: str
    selection_name: str
    selection_hash: str
    reference_sync_run_id: int | None
    reference_status: str | None
    no_reference_reason: str | None
    items: int
    items_high: int
    items_low: int
    computed_at: datetime
    dagster_run_id: str | None


@dataclass(frozen=True)
class SnapshotItem:
    policy_type: str
    external_id: str
    display_name: str | None
    last_seen_at: datetime
    last_seen_sync_run_id: int
    confidence: str
    reason: str | None
    reference_sync_run_id: int | None
    computed_at: datetime


# COPY cannot target a table under row-level security (sql/040), so rows go through a session-local
# staging table and one INSERT ... SELECT, which the tenant policy then checks row by row.
_STAGE = """CREATE TEMP TABLE IF NOT EXISTS missing_items_stage (
    policy_type text NOT NULL, external_id text NOT NULL, display_name text,
    last_seen_at timestamptz NOT NULL, last_seen_sync_run_id bigint NOT NULL, confidence text NOT NULL,
    reason text
) ON COMMIT DELETE ROWS"""

_PUBLISH = f"""INSERT INTO missing_items ({", ".join(MISSING_ITEM_COLUMNS)})
SELECT %(tenant_id)s, %(tenant_key)s, %(selection_name)s, %(selection_hash)s, policy_type, external_id,
       display_name, last_seen_at, last_seen_sync_run_id, confidence, reason, %(reference_sync_run_id)s,
       %(computed_at)s
FROM pg_temp.missing_items_stage"""


def replace_partition(scope: TenantScope, header: SnapshotHeader, rows: Iterable[MissingRow]) -> int:
    """Publish one partition's snapshot atomically; returns the number of item rows written."""
    conn = scope.conn
    written = high = 0
    params = {
        "tenant_id": scope.tenant_id,
        "tenant_key": header.tenant_key,
        "selection_name": header.selection_name,
        "selection_hash": header.selection_hash,
        "reference_sync_run_id": header.reference_sync_run_id,
        "computed_at": header.computed_at,
    }
    with conn.transaction():
        conn.execute(_STAGE)
        conn.execute("TRUNCATE pg_temp.missing_items_stage")
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY pg_temp.missing_items_stage (policy_type, external_id, display_name, last_seen_at,"
                " last_seen_sync_run_id, confidence, reason) FROM STDIN"
            ) as copy,
        ):
            for r in rows:
                copy.write_row(
                    (
                        r.policy_type,
                        r.external_id,
                        r.display_name,
                        r.last_seen_at,
                        int(r.last_seen_sync_run_id),
                        r.confidence,
                        r.reason,
                    )
                )
                written += 1
                high += r.confidence == "high"
        conn.execute(
            "DELETE FROM missing_items WHERE tenant_id = %s AND selection_name = %s",
            (scope.tenant_id, header.selection_name),
        )
        conn.execute(_PUBLISH, params)
        conn.execute(
            """INSERT INTO missing_item_snapshots (tenant_id, tenant_key, selection_name, selection_hash,
                   reference_sync_run_id, reference_status, no_reference_reason, items, items_high, items_low,
                   computed_at, dagster_run_id)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (tenant_id, selection_name) DO UPDATE SET
                   tenant_key = EXCLUDED.tenant_key, selection_hash = EXCLUDED.selection_hash,
                   reference_sync_run_id = EXCLUDED.reference_sync_run_id,
                   reference_status = EXCLUDED.reference_status,
                   no_reference_reason = EXCLUDED.no_reference_reason, items = EXCLUDED.items,
                   items_high = EXCLUDED.items_high, items_low = EXCLUDED.items_low,
                   computed_at = EXCLUDED.computed_at, dagster_run_id = EXCLUDED.dagster_run_id""",
            (
                scope.tenant_id,
                header.tenant_key,
                header.selection_name,
                header.selection_hash,
                header.reference_sync_run_id,
                header.reference_status,
                header.no_reference_reason,
                written,
                high,
                written - high,
                header.computed_at,
                header.dagster_run_id,
            ),
        )
    # The block above is a savepoint when the scope's lookup already opened a transaction: commit it.
    conn.commit()
    return written


def get_snapshot(scope: TenantScope, selection_name: str) -> Snapshot | None:
    """The published header of one partition, or None when it was never published."""
    with scope.conn.cursor(row_factory=class_row(Snapshot)) as cur:
        cur.execute(
            """SELECT tenant_id, tenant_key, selection_name, selection_hash, reference_sync_run_id,
                      reference_status, no_reference_reason, items, items_high, items_low, computed_at,
                      dagster_run_id
               FROM missing_item_snapshots WHERE tenant_id = %s AND selection_name = %s""",
            (scope.tenant_id, selection_name),
        )
        return cur.fetchone()


def read_partition(scope: TenantScope, selection_name: str) -> list[SnapshotItem]:
    """The published missing items of one partition, ordered by identity."""
    with scope.conn.cursor(row_factory=class_row(SnapshotItem)) as cur:
        cur.execute(
            """SELECT policy_type, external_id, display_name, last_seen_at, last_seen_sync_run_id, confidence,
                      reason, reference_sync_run_id, computed_at
               FROM missing_items WHERE tenant_id = %s AND selection_name = %s
               ORDER BY policy_type, external_id""",
            (scope.tenant_id, selection_name),
        )
        return cur.fetchall()
