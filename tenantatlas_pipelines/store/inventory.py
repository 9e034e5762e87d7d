"""inventory_items: the last observed state of each object, written one page at a time.

A page goes through COPY into a temporary staging table and one INSERT ... ON CONFLICT, so a page is
written whole or not at all and the cost per row stays close to a raw bulk upsert. first_seen_at is
never touched after insert; last_seen_* only move forward, so a slower run of another selection cannot
pull an item's observation back in time.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import pq

from ..normalize import InventoryRecord
from . import sync_runs
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
FROM staged
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


# One page, one statement: the upsert, its counts, and the ledger's page counts (sync_runs.py), so the
# engine pays one round trip per page for all three and the counts never travel to Python row by row.
# The page is taken out of the staging table by the same statement (DELETE ... RETURNING), so whatever
# a caller does with its transaction, a staged row is upserted and counted exactly once.
_PAGE = (
    "WITH staged AS (DELETE FROM pg_temp.inventory_stage\n"
    "                RETURNING policy_type, external_id, display_name, meta_jsonb),\n"
    f"up AS ({_UPSERT}),\n"
    """page AS (SELECT count(*) FILTER (WHERE NOT repeated)::int AS observed,
                     count(*) FILTER (WHERE inserted)::int AS new,
                     count(*) FILTER (WHERE changed AND NOT inserted AND NOT repeated)::int AS changed
              FROM up)""" + sync_runs.PAGE_COUNTS_UPDATE
)


@dataclass(frozen=True)
class UpsertCounts:
    observed: int
    new: int
    changed: int


def write_page(
    scope: TenantScope,
    run_id: int,
    policy_type: str,
    records: Sequence[InventoryRecord],
    *,
    errors: int,
    filtered: int,
    meta_keys_dropped: int,
) -> UpsertCounts:
    """Upsert one page of records and add the page's counts to the run's policy-type row, inside the
    caller's (page) transaction. Duplicates (in the page or the run) are stored and counted once; a page
    without records only adds its counts."""
    if not records:
        sync_runs.add_page_counts(
            scope,
            run_id,
            policy_type,
            observed=0,
            new=0,
            changed=0,
            errors=errors,
            filtered=filtered,
            meta_keys_dropped=meta_keys_dropped,
        )
        return UpsertCounts(0, 0, 0)
    params = sync_runs.page_counts_params(
        scope, run_id, policy_type, errors=errors, filtered=filtered, meta_keys_dropped=meta_keys_dropped
    )
    with _staged_cursor(scope, policy_type, records) as cur:
        row = cur.execute(_PAGE, params).fetchone()
    if row is None:  # no ledger row for the type: the page is written but could not be counted
        raise LookupError(f"sync run {run_id} has no policy-type row for {policy_type!r}")
    return UpsertCounts(*row)


@contextmanager
def _staged_cursor(
    scope: TenantScope, policy_type: str, records: Sequence[InventoryRecord]
) -> Iterator[psycopg.Cursor[Any]]:
    """A cursor after the records were COPYed into the session's staging table (made on first use)."""
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
        yield cur


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


@dataclass(frozen=True)
class IntegrityFacts:
    """What the inventory checks decide on, aggregated by the server (a tenant may hold 100,000 items;
    only the aggregates travel)."""

    items: int
    duplicates: int  # identities (policy_type, id compared case-insensitively) stored more than once
    duplicate_examples: list[tuple[str, str]]  # the first of them, sorted: (policy_type, lower-cased id)
    meta_keys: dict[str, list[str]]  # per policy type, the distinct metadata keys stored


def integrity_facts(scope: TenantScope, policy_types: Sequence[str], examples: int = 20) -> IntegrityFacts:
    """Item count, duplicate identities (ids compared with PostgreSQL lower(): Graph ids are GUIDs) and the
    stored metadata keys per type, for the tenant's items of `policy_types`."""
    conn, params = scope.conn, {"tenant_id": scope.tenant_id, "types": list(policy_types)}
    (items,) = conn.execute(
        """SELECT count(*) FROM inventory_items
           WHERE tenant_id = %(tenant_id)s AND policy_type = ANY(%(types)s)""",
        params,
    ).fetchone() or (0,)
    dupes = conn.execute(
        """SELECT policy_type, lower(external_id), count(*) OVER () FROM inventory_items
           WHERE tenant_id = %(tenant_id)s AND policy_type = ANY(%(types)s)
           GROUP BY 1, 2 HAVING count(*) > 1 ORDER BY 1, 2 LIMIT %(examples)s""",
        {**params, "examples": examples},
    ).fetchall()
    keys: dict[str, list[str]] = {}
    for policy_type, key in conn.execute(
        """SELECT DISTINCT i.policy_type, k.key
           FROM inventory_items i CROSS JOIN LATERAL jsonb_object_keys(i.meta_jsonb) AS k(key)
           WHERE i.tenant_id = %(tenant_id)s AND i.policy_type = ANY(%(types)s) ORDER BY 1, 2""",
        params,
    ):
        keys.setdefault(policy_type, []).append(key)
    return IntegrityFacts(
        items=items,
        duplicates=dupes[0][2] if dupes else 0,
        duplicate_examples=[(t, i) for t, i, _ in dupes],
        meta_keys=keys,
    )
