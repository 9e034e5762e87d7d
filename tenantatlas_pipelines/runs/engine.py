"""The run engine: one run of one kind over one (tenant, selection). See the package docstring for the API.

Order of a run: tenant (enabled) and selection looked up -> the pair's advisory lock in the kind's
namespace on its own keepalive session (not owned: a `skipped` row with `lock_held`, nothing else) ->
runs of the pair left `running` by dead processes marked `run_abandoned` -> the `running` row -> a token
(without one every type fails with the auth code) -> one worker per policy type on a bounded thread
pool -> finalisation into succeeded / partial / failed with the union of the error codes.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import psycopg

from ..errors import ErrorCode, TenantAtlasError
from ..store.locks import run_lock
from ..store.run_ledger import RunLedger
from ..store.scope import TenantScope, tenant_scope
from ..store.selections import Selection, get_selection
from ..store.tenants import Tenant, get_tenant

if TYPE_CHECKING:
    from ..db import Database
    from ..graph.client import GraphClient, RequestStats

_log = logging.getLogger(__name__)

RunT = TypeVar("RunT")

# Errors that mean the database (not Graph, not the data) failed: they fail the whole run.
_DATABASE_CODES = (ErrorCode.DATABASE_UNAVAILABLE, ErrorCode.DATABASE_ERROR)


@dataclass
class TypeContext:
    """What a kind's worker gets for one policy type of one run."""

    run_id: int
    policy_type: str
    scope: TenantScope  # tenant-bound connection, this worker's alone until it returns
    graph: GraphClient
    stats: RequestStats  # pass to every Graph call: the engine writes requests/throttled/retries
    log: logging.Logger
    item_codes: set[str] = field(default_factory=set)  # item-level codes (e.g. item_without_id)

    def commit(self) -> None:
        """Commit the worker's open transaction (one page); call once per page instead of conn.commit()."""
        self.scope.conn.commit()


@dataclass(frozen=True)
class RunKind(Generic[RunT]):
    """A kind of run: its lock namespace, its ledger, and the function that observes one policy type.

    `observe_type(ctx)` reads ctx.policy_type page by page through ctx.graph (with ctx.stats), writes
    each page and its ledger counts with ctx.scope, and calls ctx.commit() per page. It raises
    TenantAtlasError for a failure of its type (recorded on the type with the code; other types go on);
    database errors fail the run."""

    name: str
    lock_namespace: str
    ledger: RunLedger[RunT, Any]
    observe_type: Callable[[TypeContext], None]


@dataclass(frozen=True)
class RunOutcome(Generic[RunT]):
    """A finished run: the finalised ledger row (the kind's own dataclass) and what it ran on."""

    tenant: Tenant
    selection: Selection
    run: RunT
    duration_s: float


@dataclass(frozen=True)
class _TypeResult:
    policy_type: str
    status: str
    error_code: str | None
    item_codes: tuple[str, ...]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def execute_run(
    kind: RunKind[RunT],
    db: Database,
    graph: GraphClient,
    tenant_key: str,
    selection_name: str,
    *,
    dagster_run_id: str | None = None,
    log: logging.Logger | None = None,
    type_concurrency: int | None = None,
) -> RunOutcome[RunT]:
    """Run `kind` over one (tenant, selection) and return the finalised ledger record of the run."""
    log = log or _log
    started = time.monotonic()
    ledger = kind.ledger
    with db.pooled() as conn:
        tenant = get_tenant(conn, tenant_key)
        if not tenant.enabled:
            raise TenantAtlasError(ErrorCode.TENANT_DISABLED, f"tenant {tenant.key!r} is disabled")
        selection = get_selection(conn, selection_name)
        scope = tenant_scope(conn, tenant.tenant_id)
        with (
            db.connect(autocommit=True) as lock_conn,
            run_lock(lock_conn, scope, selection.selection_hash, kind.lock_namespace) as owned,
        ):
            if not owned:
                msg = (
                    f"another {kind.name} of tenant {tenant.key!r} / selection {selection.name!r} "
                    "is running; this run did nothing"
                )
                log.warning(msg)
                run_id = ledger.record_skipped(
                    scope,
                    selection,
                    dagster_run_id=dagster_run_id,
                    worker=worker_name(),
                    code=ErrorCode.LOCK_HELD,
                    message=msg,
                )
            else:
                abandoned = ledger.mark_abandoned(scope, selection.selection_hash)
                if abandoned:
                    log.warning("marked abandoned %s runs %s as failed (run_abandoned)", kind.name, abandoned)
                run_id = ledger.start_run(
                    scope, selection, dagster_run_id=dagster_run_id, worker=worker_name()
                )
                log.info(
                    "%s run %s started: tenant %s, selection %s (%d types)",
                    kind.name,
                    run_id,
                    tenant.key,
                    selection.name,
                    len(selection.policy_types),
                )
                _observe_and_finalize(
                    kind,
                    db,
                    graph,
                    scope,
                    selection,
                    run_id,
                    log,
                    type_concurrency or getattr(graph, "per_tenant_concurrency", 4),
                )
        run = ledger.get_run(scope, run_id)
    assert run is not None
    return RunOutcome(tenant, selection, run, round(time.monotonic() - started, 3))


def _observe_and_finalize(
    kind: RunKind[Any],
    db: Database,
    graph: GraphClient,
    scope: TenantScope,
    selection: Selection,
    run_id: int,
    log: logging.Logger,
    concurrency: int,
) -> None:
    """Run the types, then finalise the ledger row whatever happened (or leave it to run_abandoned
    when the database itself is gone)."""
    codes: list[str] = []
    message: str | None = None
    try:
        results = _observe(kind, db, graph, scope, selection, run_id, log, concurrency)
        ok = [r for r in results if r.status == "succeeded"]
        status = "succeeded" if len(ok) == len(results) else ("partial" if ok else "failed")
        for r in results:
            codes.extend(c for c in (r.error_code, *r.item_codes) if c)
    except TenantAtlasError as exc:
        status, message = "failed", exc.message
        codes.append(str(exc.code))
    except psycopg.OperationalError as exc:
        status, message = "failed", f"database connection lost: {type(exc).__name__}"
        codes.append(str(ErrorCode.DATABASE_UNAVAILABLE))
    except psycopg.Error as exc:
        status, message = "failed", f"database error: {type(exc).__name__}"
        codes.append(str(ErrorCode.DATABASE_ERROR))
    except Exception as exc:  # the ledger must say the run failed, whatever failed
        log.exception("%s run %s failed unexpectedly", kind.name, run_id)
        status, message = "failed", f"internal error: {type(exc).__name__}"
        codes.append(str(ErrorCode.INTERNAL_ERROR))
    _finalize(kind, scope, run_id, status, sorted(set(codes)), message, log)


def _finalize(
    kind: RunKind[Any],
    scope: TenantScope,
    run_id: int,
    status: str,
    codes: list[str],
    message: str | None,
    log: logging.Logger,
) -> None:
    try:
        if scope.conn.closed or scope.conn.broken:
            raise psycopg.OperationalError("ledger connection lost")
        scope.conn.rollback()
        kind.ledger.finalize_run(scope, run_id, status=status, error_codes=codes, error_message=message)
    except psycopg.OperationalError:
        # The database is unreachable: the row stays 'running' and the next run of this pair marks it
        # failed with run_abandoned. Nothing half-written is visible: pages commit whole.
        raise TenantAtlasError(
            ErrorCode.DATABASE_UNAVAILABLE,
            f"{kind.name} run {run_id} could not be finalised: the database is unavailable",
        ) from None
    except psycopg.Error as exc:
        log.exception("%s run %s could not be finalised", kind.name, run_id)
        raise TenantAtlasError(
            ErrorCode.DATABASE_ERROR,
            f"{kind.name} run {run_id} could not be finalised: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200]}",
        ) from None


def _observe(
    kind: RunKind[Any],
    db: Database,
    graph: GraphClient,
    scope: TenantScope,
    selection: Selection,
    run_id: int,
    log: logging.Logger,
    concurrency: int,
) -> list[_TypeResult]:
    try:
        graph.acquire_token(scope.tenant_id)
    except TenantAtlasError as exc:
        # Without a token no type can be read: every type fails with the auth code.
        for key in selection.policy_types:
            kind.ledger.finish_type(
                scope,
                run_id,
                key,
                status="failed",
                error_code=str(exc.code),
                error_message=exc.message,
                requests=0,
                throttled=0,
                retries=0,
            )
        raise
    workers = max(1, min(concurrency, len(selection.policy_types)))
    with (
        _ScopePool(db, scope.tenant_id) as scopes,
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{kind.name}-{run_id}") as pool,
    ):
        futures = [
            pool.submit(_run_type, kind, scopes, graph, run_id, key, log) for key in selection.policy_types
        ]
        return [f.result() for f in futures]


class _ScopePool:
    """Tenant-bound connections shared by one run's worker threads: one per worker, not one per type
    (connecting and binding a session costs more than reading an empty collection)."""

    def __init__(self, db: Database, tenant_id: str) -> None:
        self._db, self._tenant_id = db, tenant_id
        self._idle: queue.SimpleQueue[TenantScope] = queue.SimpleQueue()
        self._leases = ExitStack()  # connections leased from the database's pool, returned on exit
        self._lock = threading.Lock()

    @contextmanager
    def scope(self) -> Iterator[TenantScope]:
        try:
            scope = self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                conn = self._leases.enter_context(self._db.pooled())
            scope = tenant_scope(conn, self._tenant_id)
        try:
            yield scope
        finally:
            if not (scope.conn.closed or scope.conn.broken):
                scope.conn.rollback()  # nothing uncommitted follows a connection to the next type
                self._idle.put(scope)

    def __enter__(self) -> _ScopePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._leases.close()  # back to the database's pool, or closed if broken


def _run_type(
    kind: RunKind[Any], scopes: _ScopePool, graph: GraphClient, run_id: int, key: str, log: logging.Logger
) -> _TypeResult:
    """One policy type: the kind's worker, then the type's outcome in the ledger."""
    from ..graph.client import RequestStats

    stats = RequestStats()
    with scopes.scope() as scope:
        ctx = TypeContext(run_id, key, scope, graph, stats, log)
        status, code, message = "succeeded", None, None
        try:
            kind.observe_type(ctx)
        except TenantAtlasError as exc:
            if exc.code in _DATABASE_CODES:
                raise
            status, code, message = "failed", str(exc.code), exc.message
            log.warning("policy type %s failed: %s", key, exc.message)
            scope.conn.rollback()  # a page the type did not commit stays unwritten
        kind.ledger.finish_type(
            scope,
            run_id,
            key,
            status=status,
            error_code=code,
            error_message=message,
            requests=stats.requests,
            throttled=stats.throttled,
            retries=stats.retries,
        )
    return _TypeResult(key, status, code, tuple(sorted(ctx.item_codes)))
