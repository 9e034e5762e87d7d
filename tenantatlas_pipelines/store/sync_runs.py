"""The sync-run ledger: a row when a run starts, per-type outcomes as it goes, totals when it ends.

Totals are summed from the per-type rows at finalisation, so the run row can never disagree with its
types. Page counts are added in the same transaction as the page's upsert: a page is counted exactly
when it is visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..errors import ErrorCode
from .scope import TenantScope
from .selections import Selection

RUN_STATUSES = ("running", "succeeded", "partial", "failed", "skipped")
FINISHED_STATUSES = ("succeeded", "partial", "failed")
COUNTERS = (
    "items_observed",
    "items_new",
    "items_changed",
    "items_errors",
    "items_filtered",
    "meta_keys_dropped",
    "requests",
    "throttled",
    "retries",
)


@dataclass(frozen=True)
class TypeOutcome:
    policy_type: str
    status: str
    error_code: str | None = None
    error_message: str | None = None
    items_observed: int = 0
    items_new: int = 0
    items_changed: int = 0
    items_errors: int = 0
    items_filtered: int = 0
    meta_keys_dropped: int = 0
    pages: int = 0
    requests: int = 0
    throttled: int = 0
    retries: int = 0


@dataclass(frozen=True)
class SyncRun:
    id: int
    tenant_id: str
    selection_name: str | None
    selection_hash: str
    selection_payload: dict[str, Any]
    status: str
    had_errors: bool
    error_codes: list[str]
    error_message: str | None
    started_at: datetime
    finished_at: datetime | None
    dagster_run_id: str | None
    items_observed: int
    items_new: int
    items_changed: int
    items_errors: int
    items_filtered: int
    meta_keys_dropped: int
    requests: int
    throttled: int
    retries: int
    types: tuple[TypeOutcome, ...] = field(default=())


def _insert_run(
    scope: TenantScope,
    selection: Selection,
    *,
    dagster_run_id: str | None,
    worker: str,
    skipped: tuple[ErrorCode, str] | None = None,
) -> int:
    """The ledger row: `running`, or (skipped = (code, message)) finished at once as `skipped`."""
    code, message = skipped if skipped else (None, None)
    row = scope.conn.execute(
        """INSERT INTO inventory_sync_runs (tenant_id, selection_name, selection_hash, selection_payload,
               dagster_run_id, worker, status, error_codes, error_message, finished_at)
           VALUES (%(t)s, %(name)s, %(hash)s, %(payload)s, %(dagster)s, %(worker)s,
                   CASE WHEN %(skip)s THEN 'skipped' ELSE 'running' END,
                   CASE WHEN %(skip)s THEN ARRAY[%(code)s::text] ELSE '{}' END, %(message)s,
                   CASE WHEN %(skip)s THEN now() END)
           RETURNING id""",
        {
            "t": scope.tenant_id,
            "name": selection.name,
            "hash": selection.selection_hash,
            "payload": Jsonb(selection.payload),
            "dagster": dagster_run_id,
            "worker": worker,
            "skip": skipped is not None,
            "code": str(code) if code else None,
            "message": message,
        },
    ).fetchone()
    assert row is not None
    return int(row[0])


def start_run(scope: TenantScope, selection: Selection, *, dagster_run_id: str | None, worker: str) -> int:
    """Write the ledger row (status running) and one pending row per policy type; committed at once."""
    run_id = _insert_run(scope, selection, dagster_run_id=dagster_run_id, worker=worker)
    with scope.conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO inventory_sync_run_types (sync_run_id, tenant_id, policy_type) VALUES (%s, %s, %s)",
            [(run_id, scope.tenant_id, t) for t in selection.policy_types],
        )
    scope.conn.commit()
    return run_id


def record_skipped(
    scope: TenantScope,
    selection: Selection,
    *,
    dagster_run_id: str | None,
    worker: str,
    code: ErrorCode,
    message: str,
) -> int:
    """A run that did no work (another run holds the lock): finished at once, status skipped."""
    run_id = _insert_run(
        scope, selection, dagster_run_id=dagster_run_id, worker=worker, skipped=(code, message)
    )
    scope.conn.commit()
    return run_id


def mark_abandoned(scope: TenantScope, selection_hash: str) -> list[int]:
    """Finalise runs of this pair still marked running; only call while holding the pair's run lock,
    because then no live process can own them (their owner died without finalising)."""
    conn = scope.conn
    rows = conn.execute(
        """UPDATE inventory_sync_runs
           SET status = 'failed', had_errors = true, finished_at = now(),
               error_codes = array_append(error_codes, %s),
               error_message = 'the process running this sync ended before finalising it'
           WHERE tenant_id = %s AND selection_hash = %s AND status = 'running' RETURNING id""",
        (str(ErrorCode.RUN_ABANDONED), scope.tenant_id, selection_hash),
    ).fetchall()
    ids = [int(r[0]) for r in rows]
    if ids:
        conn.execute(
            """UPDATE inventory_sync_run_types SET status = 'failed', error_code = %s, finished_at = now()
               WHERE tenant_id = %s AND sync_run_id = ANY(%s) AND status = 'pending'""",
            (str(ErrorCode.RUN_ABANDONED), scope.tenant_id, ids),
        )
    conn.commit()
    return ids


# The ledger half of a page write. `page` is a one-row relation (observed, new, changed) the caller
# puts in front as a CTE: a VALUES row here, the upsert's own count in store/inventory.py, so a page
# and its counts go to the server as one statement.
PAGE_COUNTS_UPDATE = """
UPDATE inventory_sync_run_types t
SET items_observed = t.items_observed + page.observed, items_new = t.items_new + page.new,
    items_changed = t.items_changed + page.changed, items_errors = t.items_errors + %(errors)s,
    items_filtered = t.items_filtered + %(filtered)s,
    meta_keys_dropped = t.meta_keys_dropped + %(meta_keys_dropped)s,
    pages = t.pages + 1, started_at = coalesce(t.started_at, now())
FROM page
WHERE t.tenant_id = %(tenant_id)s AND t.sync_run_id = %(run_id)s AND t.policy_type = %(policy_type)s
RETURNING page.observed, page.new, page.changed"""


def page_counts_params(
    scope: TenantScope, run_id: int, policy_type: str, *, errors: int, filtered: int, meta_keys_dropped: int
) -> dict[str, Any]:
    """The parameters PAGE_COUNTS_UPDATE needs besides the page's own counts."""
    return {
        "tenant_id": scope.tenant_id,
        "run_id": run_id,
        "policy_type": policy_type,
        "errors": errors,
        "filtered": filtered,
        "meta_keys_dropped": meta_keys_dropped,
    }


def add_page_counts(
    scope: TenantScope,
    run_id: int,
    policy_type: str,
    *,
    observed: int,
    new: int,
    changed: int,
    errors: int,
    filtered: int,
    meta_keys_dropped: int,
) -> None:
    """Add one page's counts inside the caller's (page) transaction (a page without stored items).

    Raises LookupError when the run has no row for the policy type: a page must not go uncounted."""
    params = page_counts_params(
        scope, run_id, policy_type, errors=errors, filtered=filtered, meta_keys_dropped=meta_keys_dropped
    )
    counted = scope.conn.execute(
        "WITH page (observed, new, changed) AS (VALUES (%(observed)s::int, %(new)s::int, %(changed)s::int))"
        + PAGE_COUNTS_UPDATE,
        {**params, "observed": observed, "new": new, "changed": changed},
    ).fetchone()
    if counted is None:
        raise LookupError(f"sync run {run_id} has no policy-type row for {policy_type!r}")


def finish_type(
    scope: TenantScope,
    run_id: int,
    policy_type: str,
    *,
    status: str,
    error_code: str | None,
    error_message: str | None,
    requests: int,
    throttled: int,
    retries: int,
) -> None:
    """Record how reading one policy type ended; committed."""
    scope.conn.execute(
        """UPDATE inventory_sync_run_types
           SET status = %s, error_code = %s, error_message = %s, requests = %s, throttled = %s,
               retries = %s, started_at = coalesce(started_at, now()), finished_at = now()
           WHERE tenant_id = %s AND sync_run_id = %s AND policy_type = %s""",
        (
            status,
            error_code,
            error_message,
            requests,
            throttled,
            retries,
            scope.tenant_id,
            run_id,
            policy_type,
        ),
    )
    scope.conn.commit()


def finalize_run(
    scope: TenantScope, run_id: int, *, status: str, error_codes: list[str], error_message: str | None
) -> None:
    """Close the run: status, codes, and totals summed from its per-type rows (pending ones fail)."""
    conn = scope.conn
    conn.execute(
        """UPDATE inventory_sync_run_types SET status = 'failed',
               error_code = coalesce(error_code, %s), finished_at = now()
           WHERE tenant_id = %s AND sync_run_id = %s AND status = 'pending'""",
        (error_codes[0] if error_codes else str(ErrorCode.INTERNAL_ERROR), scope.tenant_id, run_id),
    )
    sums = ", ".join(f"{c} = t.{c}" for c in COUNTERS)
    agg = ", ".join(f"sum({c}) AS {c}" for c in COUNTERS)
    conn.execute(
        f"""UPDATE inventory_sync_runs r SET {sums},
               status = %s, finished_at = now(), error_message = %s,
               error_codes = (SELECT coalesce(array_agg(DISTINCT c ORDER BY c), '{{}}')
                              FROM unnest(r.error_codes || %s::text[] || t.type_codes) AS c),
               had_errors = %s <> 'succeeded' OR t.items_errors > 0 OR t.failed > 0
           FROM (SELECT {agg},
                        count(*) FILTER (WHERE status <> 'succeeded') AS failed,
                        coalesce(array_agg(DISTINCT error_code) FILTER (WHERE error_code IS NOT NULL),
                                 '{{}}') AS type_codes
                 FROM inventory_sync_run_types WHERE tenant_id = %s AND sync_run_id = %s) t
           WHERE r.tenant_id = %s AND r.id = %s""",
        (status, error_message, error_codes, status, scope.tenant_id, run_id, scope.tenant_id, run_id),
    )
    conn.commit()


def get_run(scope: TenantScope, run_id: int) -> SyncRun | None:
    """One run of this tenant with its per-type outcomes (None for another tenant's run id)."""
    with scope.conn.cursor(row_factory=dict_row) as cur:
        run = cur.execute(
            f"""SELECT id, tenant_id, selection_name, selection_hash, selection_payload, status, had_errors,
                       error_codes, error_message, started_at, finished_at, dagster_run_id,
                       {", ".join(COUNTERS)}
                FROM inventory_sync_runs WHERE tenant_id = %s AND id = %s""",
            (scope.tenant_id, run_id),
        ).fetchone()
        if run is None:
            return None
        types = cur.execute(
            f"""SELECT policy_type, status, error_code, error_message, {", ".join(COUNTERS)}, pages
                FROM inventory_sync_run_types WHERE tenant_id = %s AND sync_run_id = %s
                ORDER BY policy_type""",
            (scope.tenant_id, run_id),
        ).fetchall()
    return SyncRun(**run, types=tuple(TypeOutcome(**t) for t in types))


def list_runs(scope: TenantScope, selection_hash: str | None = None, limit: int = 50) -> list[SyncRun]:
    ids = scope.conn.execute(
        """SELECT id FROM inventory_sync_runs
           WHERE tenant_id = %s AND (%s::text IS NULL OR selection_hash = %s)
           ORDER BY started_at DESC, id DESC LIMIT %s""",
        (scope.tenant_id, selection_hash, selection_hash, limit),
    ).fetchall()
    return [r for (i,) in ids if (r := get_run(scope, int(i))) is not None]
