"""The snapshot-run ledger: like the sync ledger, a row when a snapshot starts, per-type outcomes as it
goes, totals summed from the types when it ends. A finalised row never changes (sql/065 enforces it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..errors import ErrorCode, TenantAtlasError
from .scope import TenantScope
from .selections import Selection

FINISHED_STATUSES = ("succeeded", "partial", "failed")
TYPE_COUNTERS = ("objects_observed", "versions_new", "objects_errors", "requests", "throttled", "retries")
RUN_COUNTERS = (*TYPE_COUNTERS, "references_total", "references_unresolved")


@dataclass(frozen=True)
class SnapshotTypeOutcome:
    policy_type: str
    status: str
    error_code: str | None = None
    error_message: str | None = None
    objects_observed: int = 0
    versions_new: int = 0
    objects_errors: int = 0
    pages: int = 0
    requests: int = 0
    throttled: int = 0
    retries: int = 0


@dataclass(frozen=True)
class SnapshotRun:
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
    objects_observed: int
    versions_new: int
    objects_errors: int
    references_total: int
    references_unresolved: int
    requests: int
    throttled: int
    retries: int
    types: tuple[SnapshotTypeOutcome, ...] = field(default=())

    def type_outcome(self, policy_type: str) -> SnapshotTypeOutcome | None:
        return next((t for t in self.types if t.policy_type == policy_type), None)

    def read_cleanly(self, policy_type: str) -> bool:
        """Whether this snapshot read the type completely and without item errors (drift's `high`)."""
        t = self.type_outcome(policy_type)
        return t is not None and t.status == "succeeded" and t.objects_errors == 0


def start_snapshot(
    scope: TenantScope, selection: Selection, *, dagster_run_id: str | None, worker: str,
    skipped: tuple[ErrorCode, str] | None = None,
) -> int:
    """The ledger row (running, with a pending row per type), or one finished at once as `skipped`."""
    code, message = skipped if skipped else (None, None)
    row = scope.conn.execute(
        """INSERT INTO snapshot_runs (tenant_id, selection_name, selection_hash, selection_payload,
               dagster_run_id, worker, status, error_codes, error_message, finished_at)
           VALUES (%(t)s, %(name)s, %(hash)s, %(payload)s, %(dagster)s, %(worker)s,
                   CASE WHEN %(skip)s THEN 'skipped' ELSE 'running' END,
                   CASE WHEN %(skip)s THEN ARRAY[%(code)s::text] ELSE '{}' END, %(message)s,
                   CASE WHEN %(skip)s THEN now() END)
           RETURNING id""",
        {"t": scope.tenant_id, "name": selection.name, "hash": selection.selection_hash,
         "payload": Jsonb(selection.payload), "dagster": dagster_run_id, "worker": worker,
         "skip": skipped is not None, "code": str(code) if code else None, "message": message},
    ).fetchone()
    assert row is not None
    run_id = int(row[0])
    if skipped is None:
        with scope.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO snapshot_run_types (snapshot_run_id, tenant_id, policy_type)"
                " VALUES (%s, %s, %s)",
                [(run_id, scope.tenant_id, t) for t in selection.policy_types],
            )
    scope.conn.commit()
    return run_id


# The ledger half of storing a batch of objects (store/snapshot_objects.py runs it in the same
# transaction as the versions and memberships it counts).
BATCH_COUNTS_UPDATE = """
UPDATE snapshot_run_types
SET objects_observed = objects_observed + %(observed)s, versions_new = versions_new + %(new)s,
    objects_errors = objects_errors + %(errors)s, pages = pages + %(pages)s,
    started_at = coalesce(started_at, now())
WHERE tenant_id = %(tenant_id)s AND snapshot_run_id = %(run_id)s AND policy_type = %(policy_type)s"""


def finish_type(
    scope: TenantScope, run_id: int, policy_type: str, *, status: str, error_code: str | None = None,
    error_message: str | None = None, requests: int = 0, throttled: int = 0, retries: int = 0,
) -> None:
    """Record how capturing one policy type ended; committed."""
    scope.conn.execute(
        """UPDATE snapshot_run_types
           SET status = %s, error_code = %s, error_message = %s, requests = %s, throttled = %s,
               retries = %s, started_at = coalesce(started_at, now()), finished_at = now()
           WHERE tenant_id = %s AND snapshot_run_id = %s AND policy_type = %s""",
        (status, error_code, error_message, requests, throttled, retries, scope.tenant_id, run_id,
         policy_type),
    )
    scope.conn.commit()


def finalize_snapshot(
    scope: TenantScope, run_id: int, *, status: str, error_codes: list[str] | tuple[str, ...] = (),
    error_message: str | None = None, references_total: int = 0, references_unresolved: int = 0,
    requests: int = 0, throttled: int = 0, retries: int = 0,
) -> None:
    """Close the snapshot: status, codes, totals summed from its types (pending types fail) plus the
    requests spent outside any type (reference resolution). The last write this row ever gets."""
    conn = scope.conn
    conn.execute(
        """UPDATE snapshot_run_types SET status = 'failed', error_code = coalesce(error_code, %s),
               finished_at = now()
           WHERE tenant_id = %s AND snapshot_run_id = %s AND status = 'pending'""",
        (error_codes[0] if error_codes else str(ErrorCode.INTERNAL_ERROR), scope.tenant_id, run_id),
    )
    agg = ", ".join(f"coalesce(sum({c}), 0) AS {c}" for c in TYPE_COUNTERS)
    conn.execute(
        f"""UPDATE snapshot_runs r
            SET objects_observed = t.objects_observed, versions_new = t.versions_new,
                objects_errors = t.objects_errors, requests = t.requests + %(requests)s,
                throttled = t.throttled + %(throttled)s, retries = t.retries + %(retries)s,
                references_total = %(refs)s, references_unresolved = %(unresolved)s,
                status = %(status)s, finished_at = now(), error_message = %(message)s,
                error_codes = (SELECT coalesce(array_agg(DISTINCT c ORDER BY c), '{{}}')
                               FROM unnest(r.error_codes || %(codes)s::text[] || t.type_codes) AS c),
                had_errors = %(status)s <> 'succeeded' OR t.objects_errors > 0 OR t.failed > 0
            FROM (SELECT {agg}, count(*) FILTER (WHERE status <> 'succeeded') AS failed,
                         coalesce(array_agg(DISTINCT error_code) FILTER (WHERE error_code IS NOT NULL),
                                  '{{}}') AS type_codes
                  FROM snapshot_run_types WHERE tenant_id = %(t)s AND snapshot_run_id = %(id)s) t
            WHERE r.tenant_id = %(t)s AND r.id = %(id)s""",
        {"requests": requests, "throttled": throttled, "retries": retries, "refs": references_total,
         "unresolved": references_unresolved, "status": status, "message": error_message,
         "codes": list(error_codes), "t": scope.tenant_id, "id": run_id},
    )
    conn.commit()


def mark_abandoned(scope: TenantScope, selection_hash: str) -> list[int]:
    """Finalise snapshots of this pair still marked running. Only call while holding the pair's
    snapshot lock: then no live process owns them."""
    conn = scope.conn
    ids = [int(r[0]) for r in conn.execute(
        """SELECT id FROM snapshot_runs
           WHERE tenant_id = %s AND selection_hash = %s AND status = 'running'""",
        (scope.tenant_id, selection_hash),
    ).fetchall()]
    conn.commit()
    for run_id in ids:
        finalize_snapshot(
            scope, run_id, status="failed", error_codes=[str(ErrorCode.RUN_ABANDONED)],
            error_message="the process taking this snapshot ended before finalising it",
        )
    return ids


_RUN_COLUMNS = (
    "id, tenant_id, selection_name, selection_hash, selection_payload, status, had_errors, error_codes, "
    "error_message, started_at, finished_at, dagster_run_id, " + ", ".join(RUN_COUNTERS)
)


def _load(scope: TenantScope, rows: list[dict[str, Any]]) -> list[SnapshotRun]:
    if not rows:
        return []
    with scope.conn.cursor(row_factory=dict_row) as cur:
        types = cur.execute(
            f"""SELECT snapshot_run_id, policy_type, status, error_code, error_message,
                       {", ".join(TYPE_COUNTERS)}, pages
                FROM snapshot_run_types WHERE tenant_id = %s AND snapshot_run_id = ANY(%s)
                ORDER BY policy_type""",
            (scope.tenant_id, [r["id"] for r in rows]),
        ).fetchall()
    by_run: dict[int, list[SnapshotTypeOutcome]] = {}
    for t in types:
        by_run.setdefault(t.pop("snapshot_run_id"), []).append(SnapshotTypeOutcome(**t))
    return [SnapshotRun(**r, types=tuple(by_run.get(r["id"], ()))) for r in rows]


def get_snapshot(scope: TenantScope, snapshot_id: int) -> SnapshotRun:
    """One snapshot of this tenant; SNAPSHOT_NOT_FOUND for an unknown id or another tenant's."""
    with scope.conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_RUN_COLUMNS} FROM snapshot_runs WHERE tenant_id = %s AND id = %s",
            (scope.tenant_id, snapshot_id),
        ).fetchall()
    found = _load(scope, rows)
    if not found:
        raise TenantAtlasError(
            ErrorCode.SNAPSHOT_NOT_FOUND, f"no snapshot {snapshot_id} for tenant {scope.tenant_id}"
        )
    return found[0]


def latest_snapshot(
    scope: TenantScope, selection_hash: str, *, statuses: tuple[str, ...] = ("succeeded",),
    before_id: int | None = None,
) -> SnapshotRun | None:
    """The latest snapshot of a (tenant, selection_hash) with one of `statuses` (default: succeeded),
    optionally started before snapshot `before_id` (drift's "previous"); None when there is none."""
    with scope.conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""SELECT {_RUN_COLUMNS} FROM snapshot_runs
                WHERE tenant_id = %s AND selection_hash = %s AND status = ANY(%s)
                  AND (%s::bigint IS NULL OR id < %s)
                ORDER BY started_at DESC, id DESC LIMIT 1""",
            (scope.tenant_id, selection_hash, list(statuses), before_id, before_id),
        ).fetchall()
    found = _load(scope, rows)
    return found[0] if found else None


def latest_succeeded_snapshot(scope: TenantScope, selection_hash: str) -> SnapshotRun | None:
    """The latest succeeded snapshot of a (tenant, selection_hash), or None."""
    return latest_snapshot(scope, selection_hash)


def list_snapshots(
    scope: TenantScope, selection_hash: str | None = None, limit: int = 50
) -> list[SnapshotRun]:
    """This tenant's snapshots, newest first, optionally of one selection lineage."""
    with scope.conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""SELECT {_RUN_COLUMNS} FROM snapshot_runs
                WHERE tenant_id = %s AND (%s::text IS NULL OR selection_hash = %s)
                ORDER BY started_at DESC, id DESC LIMIT %s""",
            (scope.tenant_id, selection_hash, selection_hash, limit),
        ).fetchall()
    return _load(scope, rows)
