"""The run ledger, generic over run kinds: a row when a run starts, per-type outcomes as it goes, totals
when it ends. Sync runs (store/sync_runs.py) and snapshot runs each own a pair of tables of this shape and
one `RunLedger` naming them; the run engine (runs/engine.py) only ever talks to a `RunLedger`.

Required table shape (see sql/001_core.sql, inventory_sync_runs / inventory_sync_run_types):
- runs table: id (identity), tenant_id, selection_name, selection_hash, selection_payload jsonb,
  dagster_run_id, worker, status (running|succeeded|partial|failed|skipped, default 'running'),
  had_errors, error_codes text[], error_message, started_at, finished_at, plus one integer column per
  counter; CHECK ((status = 'running') = (finished_at IS NULL)).
- types table: <run_fk> -> runs.id, tenant_id, policy_type, status (pending|succeeded|failed|skipped,
  default 'pending'), error_code, error_message, started_at, finished_at, pages, plus the same counters
  (which must include requests, throttled, retries: the engine writes those from its request stats).

Totals are summed from the per-type rows at finalisation, so the run row can never disagree with its
types. Finalisation only moves a row that is still `running`: a row another process already closed
(run_abandoned after this run lost its lock) is never overwritten, and the caller is told.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..errors import ErrorCode
from .scope import TenantScope
from .selections import Selection

RUN_STATUSES = ("running", "succeeded", "partial", "failed", "skipped")
FINISHED_STATUSES = ("succeeded", "partial", "failed")
# Written by the engine from the request statistics of each type, so every ledger counts them.
REQUEST_COUNTERS = ("requests", "throttled", "retries")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

RunT = TypeVar("RunT")
TypeT = TypeVar("TypeT")

# Columns every run row has besides the counters (what get_run reads into the run dataclass).
RUN_COLUMNS = (
    "id, tenant_id, selection_name, selection_hash, selection_payload, status, had_errors, error_codes, "
    "error_message, started_at, finished_at, dagster_run_id"
)


@dataclass(frozen=True)
class LedgerTypeRow:
    """What every ledger's per-type row has; a kind's own row adds its counters (with defaults)."""

    policy_type: str
    status: str
    error_code: str | None = None
    error_message: str | None = None
    pages: int = 0
    requests: int = 0
    throttled: int = 0
    retries: int = 0


@dataclass(frozen=True)
class LedgerRunRow:
    """The RUN_COLUMNS and the REQUEST_COUNTERS of every ledger's run row; a kind's own row adds its
    counters and `types` (its type rows)."""

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
    requests: int
    throttled: int
    retries: int


@dataclass(frozen=True)
class RunLedger(Generic[RunT, TypeT]):
    """One run kind's ledger tables and the kind's own frozen dataclasses for reading them back:
    `run_row` is called with the RUN_COLUMNS, one keyword per counter and `types=` (a tuple of type
    rows); `type_row` with policy_type, status, error_code, error_message, one keyword per counter and
    pages (see store/sync_runs.py: SyncRun, TypeOutcome)."""

    kind: str  # 'sync', 'snapshot': used in messages ("sync run 12 ...")
    runs_table: str
    types_table: str
    run_fk: str
    counters: tuple[str, ...]
    run_row: Callable[..., RunT]
    type_row: Callable[..., TypeT]
    _sql: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in (self.runs_table, self.types_table, self.run_fk, *self.counters):
            if not _IDENT.match(name):
                raise ValueError(f"not a plain SQL identifier: {name!r}")
        missing = set(REQUEST_COUNTERS) - set(self.counters)
        if missing:
            raise ValueError(f"ledger counters must include {sorted(missing)}")
        self._sql.update(_statements(self))

    # --- writing -------------------------------------------------------------------------------

    def start_run(
        self, scope: TenantScope, selection: Selection, *, dagster_run_id: str | None, worker: str
    ) -> int:
        """Write the ledger row (status running) and one pending row per policy type; committed at once."""
        run_id = self._insert_run(scope, selection, dagster_run_id=dagster_run_id, worker=worker)
        with scope.conn.cursor() as cur:
            cur.executemany(
                self._sql["insert_type"], [(run_id, scope.tenant_id, t) for t in selection.policy_types]
            )
        scope.conn.commit()
        return run_id

    def record_skipped(
        self,
        scope: TenantScope,
        selection: Selection,
        *,
        dagster_run_id: str | None,
        worker: str,
        code: ErrorCode,
        message: str,
    ) -> int:
        """A run that did no work (another run holds the lock): finished at once, status skipped."""
        run_id = self._insert_run(
            scope, selection, dagster_run_id=dagster_run_id, worker=worker, skipped=(code, message)
        )
        scope.conn.commit()
        return run_id

    def _insert_run(
        self,
        scope: TenantScope,
        selection: Selection,
        *,
        dagster_run_id: str | None,
        worker: str,
        skipped: tuple[ErrorCode, str] | None = None,
    ) -> int:
        code, message = skipped if skipped else (None, None)
        row = scope.conn.execute(
            self._sql["insert_run"],
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

    def mark_abandoned(self, scope: TenantScope, selection_hash: str) -> list[int]:
        """Finalise runs of this pair still marked running; only call while holding the pair's run lock,
        because then no live process can own them (their owner died without finalising)."""
        rows = scope.conn.execute(
            self._sql["abandon_pair"], (str(ErrorCode.RUN_ABANDONED), scope.tenant_id, selection_hash)
        ).fetchall()
        ids = [int(r[0]) for r in rows]
        self._abandon_types(scope, ids)
        scope.conn.commit()
        return ids

    def abandon_unlocked(self, conn: psycopg.Connection, lock_held: str) -> list[tuple[str, int]]:
        """Fleet-wide (a session outside any tenant scope): finalise every `running` row whose pair's
        run lock nobody holds — its worker is gone, whatever its selection hash. `lock_held` is the
        kind's SQL test (store/locks.lock_held_sql over r.tenant_id, r.selection_hash).

        Safe against a live run: its lock is taken before its row is written and released after the
        row is closed, and a row closed while this statement runs is re-checked and left alone."""
        rows = conn.execute(
            f"""UPDATE {self.runs_table} r
               SET status = 'failed', had_errors = true, finished_at = now(),
                   error_codes = array_append(r.error_codes, %s),
                   error_message = 'the process running this {self.kind} ended or lost its lock before '
                                   'finalising it (found running with nobody holding its lock)'
               WHERE r.status = 'running' AND NOT {lock_held}
               RETURNING r.tenant_id, r.id""",
            (str(ErrorCode.RUN_ABANDONED),),
        ).fetchall()
        if rows:
            conn.execute(
                f"""UPDATE {self.types_table} SET status = 'failed', error_code = %s, finished_at = now()
                   WHERE {self.run_fk} = ANY(%s) AND status = 'pending'""",
                (str(ErrorCode.RUN_ABANDONED), [int(r[1]) for r in rows]),
            )
        conn.commit()
        return [(str(t), int(i)) for t, i in rows]

    def _abandon_types(self, scope: TenantScope, ids: Sequence[int]) -> None:
        if ids:
            scope.conn.execute(
                self._sql["abandon_types"], (str(ErrorCode.RUN_ABANDONED), scope.tenant_id, list(ids))
            )

    def finish_type(
        self,
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
        """Record how reading one policy type ended; committed. A type of a run that is no longer
        `running` (closed by another process) is left as that process closed it."""
        scope.conn.execute(
            self._sql["finish_type"],
            (status, error_code, error_message, requests, throttled, retries, scope.tenant_id, run_id,
             policy_type),
        )
        scope.conn.commit()

    def finalize_run(
        self,
        scope: TenantScope,
        run_id: int,
        *,
        status: str,
        error_codes: list[str],
        error_message: str | None,
    ) -> bool:
        """Close the run: status, codes, and totals summed from its per-type rows (pending ones fail).

        Returns False, changing nothing, when the row is no longer `running` (another process closed
        it, e.g. as run_abandoned after this run lost its lock): a closed row is never rewritten."""
        conn = scope.conn
        conn.execute(
            self._sql["fail_pending"],
            (error_codes[0] if error_codes else str(ErrorCode.INTERNAL_ERROR), scope.tenant_id, run_id,
             scope.tenant_id, run_id),
        )
        row = conn.execute(
            self._sql["finalize"],
            (status, error_message, error_codes, status, scope.tenant_id, run_id, scope.tenant_id, run_id),
        ).fetchone()
        conn.commit()
        return row is not None

    # --- reading -------------------------------------------------------------------------------

    def get_run(self, scope: TenantScope, run_id: int) -> RunT | None:
        """One run of this tenant with its per-type outcomes (None for another tenant's run id)."""
        with scope.conn.cursor(row_factory=dict_row) as cur:
            run = cur.execute(self._sql["get_run"], (scope.tenant_id, run_id)).fetchone()
            if run is None:
                return None
            types = cur.execute(self._sql["get_types"], (scope.tenant_id, run_id)).fetchall()
        return self.run_row(**run, types=tuple(self.type_row(**t) for t in types))

    def list_runs(self, scope: TenantScope, selection_hash: str | None = None, limit: int = 50) -> list[RunT]:
        ids = scope.conn.execute(
            self._sql["list_runs"], (scope.tenant_id, selection_hash, selection_hash, limit)
        ).fetchall()
        return [r for (i,) in ids if (r := self.get_run(scope, int(i))) is not None]

    def status_of(self, scope: TenantScope, run_id: int) -> str | None:
        row = scope.conn.execute(self._sql["status"], (scope.tenant_id, run_id)).fetchone()
        return None if row is None else str(row[0])


def _statements(ledger: RunLedger[Any, Any]) -> dict[str, str]:
    runs, types, fk, counters = ledger.runs_table, ledger.types_table, ledger.run_fk, ledger.counters
    sums = ", ".join(f"{c} = t.{c}" for c in counters)
    agg = ", ".join(f"sum({c}) AS {c}" for c in counters)
    cols = ", ".join(counters)
    return {
        "insert_run": f"""INSERT INTO {runs} (tenant_id, selection_name, selection_hash, selection_payload,
               dagster_run_id, worker, status, error_codes, error_message, finished_at)
           VALUES (%(t)s, %(name)s, %(hash)s, %(payload)s, %(dagster)s, %(worker)s,
                   CASE WHEN %(skip)s THEN 'skipped' ELSE 'running' END,
                   CASE WHEN %(skip)s THEN ARRAY[%(code)s::text] ELSE '{{}}' END, %(message)s,
                   CASE WHEN %(skip)s THEN now() END)
           RETURNING id""",
        "insert_type": f"INSERT INTO {types} ({fk}, tenant_id, policy_type) VALUES (%s, %s, %s)",
        "abandon_pair": f"""UPDATE {runs}
           SET status = 'failed', had_errors = true, finished_at = now(),
               error_codes = array_append(error_codes, %s),
               error_message = 'the process running this {ledger.kind} ended before finalising it'
           WHERE tenant_id = %s AND selection_hash = %s AND status = 'running' RETURNING id""",
        "abandon_types": f"""UPDATE {types} SET status = 'failed', error_code = %s, finished_at = now()
           WHERE tenant_id = %s AND {fk} = ANY(%s) AND status = 'pending'""",
        "finish_type": f"""UPDATE {types} ty
           SET status = %s, error_code = %s, error_message = %s, requests = %s, throttled = %s,
               retries = %s, started_at = coalesce(ty.started_at, now()), finished_at = now()
           FROM {runs} r
           WHERE ty.tenant_id = %s AND ty.{fk} = %s AND ty.policy_type = %s
             AND r.tenant_id = ty.tenant_id AND r.id = ty.{fk} AND r.status = 'running'""",
        "fail_pending": f"""UPDATE {types} SET status = 'failed',
               error_code = coalesce(error_code, %s), finished_at = now()
           WHERE tenant_id = %s AND {fk} = %s AND status = 'pending'
             AND EXISTS (SELECT FROM {runs} WHERE tenant_id = %s AND id = %s AND status = 'running')""",
        "finalize": f"""UPDATE {runs} r SET {sums},
               status = %s, finished_at = now(), error_message = %s,
               error_codes = (SELECT coalesce(array_agg(DISTINCT c ORDER BY c), '{{}}')
                              FROM unnest(r.error_codes || %s::text[] || t.type_codes) AS c),
               had_errors = %s <> 'succeeded' OR t.items_errors_ > 0 OR t.failed > 0
           FROM (SELECT {agg}, {_errors_sum(counters)} AS items_errors_,
                        count(*) FILTER (WHERE status <> 'succeeded') AS failed,
                        coalesce(array_agg(DISTINCT error_code) FILTER (WHERE error_code IS NOT NULL),
                                 '{{}}') AS type_codes
                 FROM {types} WHERE tenant_id = %s AND {fk} = %s) t
           WHERE r.tenant_id = %s AND r.id = %s AND r.status = 'running'
           RETURNING r.id""",
        "get_run": f"SELECT {RUN_COLUMNS}, {cols} FROM {runs} WHERE tenant_id = %s AND id = %s",
        "get_types": f"""SELECT policy_type, status, error_code, error_message, {cols}, pages
                FROM {types} WHERE tenant_id = %s AND {fk} = %s ORDER BY policy_type""",
        "list_runs": f"""SELECT id FROM {runs}
           WHERE tenant_id = %s AND (%s::text IS NULL OR selection_hash = %s)
           ORDER BY started_at DESC, id DESC LIMIT %s""",
        "status": f"SELECT status FROM {runs} WHERE tenant_id = %s AND id = %s",
    }


def _errors_sum(counters: tuple[str, ...]) -> str:
    """Item-level errors make a run `had_errors`: the sum of the kind's `items_errors` counter if it has
    one (a kind without item errors never has them)."""
    return "coalesce(sum(items_errors), 0)" if "items_errors" in counters else "0"
