"""inventory_items: the last observed state of each object, written one page at a time.

A page goes through COPY into a temporary staging table and one INSERT ... ON CONFLICT, so a page is
written whole or not at all and the cost per row stays close to a raw bulk upsert. first_seen_at is
never touched after insert; last_seen_* only move forward, so a slower run of another selection cannot
pull an item's observation back in time.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import pq

from ..normalize import InventoryRecord
from .scope import TenantScope

# Connections whose session already has the staging table (weak: closed connections drop out).
_staged: weakref.WeakSet[psycopg.Connection] = weakref.WeakSet()

_STAGE = """CREATE TEMP TABLE IF NOT EXISTS inventory_stage (
    policy_type text NOT NULL, external_id text NOT NULL, display_name text, meta_jsonb jsonb NOT NULL
) ON COMMIT DELETE ROWS"""

# xmax = 0 marks a freshly inserted row. prev_seen_sync_run_id keeps the run that saw the row before
# this write, so an object Graph listed twice in one run (on two pages) is recognised and counted once.
# last_seen_* and the observed values only ever move forward in time: a slower run of another
# selection that read the object earlier cannot overwrite a newer observation.
_UPSERT = """
INSERT INTO inventory_items AS i (tenant_id, policy_type, external_id, display_name, meta_jsonb,
                                  first_seen_at, last_seen_at, last_changed_at, last_seen_sync_run_id)
SELECT DISTINCT ON (policy_type, external_id)
       %(tenant_id)s, policy_type, external_id, display_name, meta_jsonb, now(), now(), now(), %(run_id)s
FROM pg_temp.inventory_stage
ORDER BY policy_type, external_id
ON CONFLICT (tenant_id, policy_type, external_id) DO UPDATE
SET prev_seen_sync_run_id = i.last_seen_sync_run_id,
    display_name = CASE WHEN newer THEN EXCLUDED.display_name ELSE i.display_name END,
    meta_jsonb = CASE WHEN newer THEN EXCLUDED.meta_jsonb ELSE i.meta_jsonb END,
    last_seen_at = CASE WHEN newer THEN EXCLUDED.last_seen_at ELSE i.last_seen_at END,
    last_seen_sync_run_id = CASE WHEN newer THEN EXCLUDED.last_seen_sync_run_id
                                 ELSE i.last_seen_sync_run_id END,
    last_changed_at = CASE
        WHEN newer AND (i.display_name IS DISTINCT FROM EXCLUDED.display_name
                        OR i.meta_jsonb <> EXCLUDED.meta_jsonb)
        THEN EXCLUDED.last_seen_at ELSE i.last_changed_at END
RETURNING (xmax = 0) AS inserted,
          (last_changed_at = last_seen_at AND last_seen_sync_run_id = %(run_id)s) AS changed,
          (prev_seen_sync_run_id IS NOT DISTINCT FROM %(run_id)s AND xmax <> 0) AS repeated
""".replace("newer", "(i.last_seen_at <= EXCLUDED.last_seen_at)")


@dataclass(frozen=True)
class UpsertCounts:
    observed: int
    new: int
    changed: int


def upsert_items(
    scope: TenantScope, run_id: int, policy_type: str, records: Sequence[InventoryRecord]
) -> UpsertCounts:
    """Upsert one page of records inside the caller's transaction; duplicates (in the page or the run)
    are stored and counted once."""
    if not records:
        return UpsertCounts(0, 0, 0)
    conn = scope.conn
    idle = conn.info.transaction_status == pq.TransactionStatus.IDLE
    if conn not in _staged:
        conn.execute(_STAGE)
        # Creating a table is transactional: only a creation committed on its own (no transaction was
        # open) is known to last for the session; otherwise ask again next time.
        if idle:
            conn.commit()
            _staged.add(conn)
    with conn.cursor() as cur:
        with cur.copy(
            "COPY pg_temp.inventory_stage (policy_type, external_id, display_name, meta_jsonb) FROM STDIN"
        ) as copy:
            for r in records:
                copy.write_row((policy_type, r.external_id, r.display_name, json.dumps(r.meta)))
        cur.execute(_UPSERT, {"tenant_id": scope.tenant_id, "run_id": run_id})
        rows = cur.fetchall()
    new = sum(1 for inserted, _, _ in rows if inserted)
    changed = sum(1 for inserted, changed, repeated in rows if changed and not inserted and not repeated)
    observed = sum(1 for _, _, repeated in rows if not repeated)
    return UpsertCounts(observed, new, changed)


@dataclass(frozen=True)
class InventoryItem:
    policy_type: str
    external_id: str
    display_name: str | None
    meta: dict[str, Any]
    first_seen_at: datetime
    last_seen_at: datetime
    last_changed_at: datetime
    last_seen_sync_run_id: int


def list_items(scope: TenantScope, policy_type: str | None = None) -> list[InventoryItem]:
    """The tenant's inventory, optionally of one type, ordered by identity."""
    rows = scope.conn.execute(
        """SELECT policy_type, external_id, display_name, meta_jsonb, first_seen_at, last_seen_at,
                  last_changed_at, last_seen_sync_run_id
           FROM inventory_items WHERE tenant_id = %s AND (%s::text IS NULL OR policy_type = %s)
           ORDER BY policy_type, external_id""",
        (scope.tenant_id, policy_type, policy_type),
    ).fetchall()
    return [InventoryItem(*row) for row in rows]


def count_items(scope: TenantScope) -> dict[str, int]:
    rows = scope.conn.execute(
        "SELECT policy_type, count(*) FROM inventory_items WHERE tenant_id = %s GROUP BY 1 ORDER BY 1",
        (scope.tenant_id,),
    ).fetchall()
    return dict(rows)
