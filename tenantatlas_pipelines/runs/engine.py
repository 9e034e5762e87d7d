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
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import psycopg

from ..errors import ErrorCode, TenantAtlasError
from ..store.locks import LockGuard, enable_keepalives, lock_held_sql, run_lock
from ..store.run_ledger import RunLedger
from ..store.scope import TenantScope, tenant_scope
from ..store.selections import Selection, get_selection
from ..store.tenants import Tenant, get_tenant_by_key

if TYPE_CHECKING:
    from ..db import Database
    from ..graph.client import GraphClient, RequestStats

_log = logging.getLogger(__name__)

RunT = TypeVar("RunT")

# Errors that mean the database (not Graph, not the data) failed: they fail the whole run.
_DATABASE_CODES = (ErrorCode.DATABASE_UNAVAILABLE, ErrorCode.DATABASE_ERROR)
# How long a terminated run waits for its workers to reach their next commit point (where they stop)
# before it finalises anyway; a worker still busy after that can no longer commit (the gate is shut).
STOP_GRACE_S = 10.0

_STOP_MESSAGES = {
    ErrorCode.LOCK_LOST: "the run lost its lock (its PostgreSQL session ended) and stopped, so that two "
    "runs of the pair never overlap",
    ErrorCode.RUN_CANCELLED: "the run was terminated before this finished",
}


class _RunControl:
    """The run's commit gate: before a page commits, the lock must still be held and the run not
    stopping. Stopping (lock lost, termination) shuts the gate; `quiesce` waits for commits already
    through it, so nothing commits after the run is finalised."""

    def __init__(self, guard: LockGuard) -> None:
        self.guard = guard
        self.stop_code: ErrorCode | None = None
        self._cond = threading.Condition()
        self._inflight = 0

    def stop(self, code: ErrorCode) -> None:
        with self._cond:
            if self.stop_code is None:
                self.stop_code = code

    def raise_if_stopped(self) -> None:
        if self.stop_code is None and not self.guard.held():
            self.stop(ErrorCode.LOCK_LOST)
        code = self.stop_code
        if code is not None:
            raise TenantAtlasError(code, _STOP_MESSAGES[code])

    @contextmanager
    def committing(self) -> Iterator[None]:
        self.raise_if_stopped()
        with self._cond:
            if self.stop_code is not None:
                self.raise_if_stopped()
            self._inflight += 1
        try:
            yield
        finally:
            with self._cond:
                self._inflight -= 1
                self._cond.notify_all()

    def quiesce(self, timeout: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._inflight == 0, timeout)


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
    _control: _RunControl | None = field(default=None, repr=False)

    def commit(self) -> None:
        """Commit the worker's open transaction (one page); call once per page instead of conn.commit().

        Raises TenantAtlasError(lock_lost | run_cancelled), committing nothing, when the run lost its lock
        or is being terminated: the worker must let it propagate (the engine records it on the type)."""
        if self._control is None:
            self.scope.conn.commit()
            return
        with self._control.committing():
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


class RunResultDict:
    """`as_dict` of a kind's result dataclass (sync.py SyncResult, snapshots/run.py SnapshotResult): its
    fields in order, JSON-ready (error codes as a list, per-type outcomes as dicts)."""

    error_codes: tuple[str, ...]
    types: tuple[Any, ...]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)  # type: ignore[call-overload]
        data["error_codes"] = list(self.error_codes)
        data["types"] = [asdict(t) for t in self.types]
        return data


@dataclass(frozen=True)
class _Run:
    """One started run, as its parts see it."""

    kind: RunKind[Any]
    db: Database
    graph: GraphClient
    scope: TenantScope  # the ledger's connection (the run's main thread only)
    selection: Selection
    run_id: int
    log: logging.Logger
    concurrency: int
    control: _RunControl


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
        tenant = get_tenant_by_key(conn, tenant_key)  # a partition key: never read as a GUID
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
                enable_keepalives(lock_conn)
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
                concurrency = type_concurrency or getattr(graph, "per_tenant_concurrency", 4)
                _observe_and_finalize(
                    _Run(
                        kind,
                        db,
                        graph,
                        scope,
                        selection,
                        run_id,
                        log,
                        concurrency,
                        _RunControl(LockGuard(lock_conn)),
                    )
                )
        run = ledger.get_run(scope, run_id)
    assert run is not None
    return RunOutcome(tenant, selection, run, round(time.monotonic() - started, 3))


def sweep_dead_runs(conn: psycopg.Connection, kinds: Iterable[RunKind[Any]]) -> dict[str, list[int]]:
    """Finalise, fleet-wide, the `running` rows of these kinds whose pair's lock nobody holds (their
    worker died, was cancelled past its grace, or lost its lock) as failed / run_abandoned. The next run
    of the same pair would do it too, but that run may never come (selection redefined, tenant
    disabled). Returns the run ids closed, per kind. Call with a session outside any tenant scope."""
    closed: dict[str, list[int]] = {}
    for kind in kinds:
        held = lock_held_sql(kind.lock_namespace, "r.tenant_id", "r.selection_hash")
        ids = [run_id for _, run_id in kind.ledger.abandon_unlocked(conn, held)]
        if ids:
            closed[kind.name] = ids
    return closed


def _observe_and_finalize(run: _Run) -> None:
    """Run the types, then finalise the ledger row whatever happened — termination included (Dagster's
    cancel arrives as a BaseException) — or leave it to run_abandoned when the database itself is gone."""
    kind, run_id, log, control = run.kind, run.run_id, run.log, run.control
    codes: list[str] = []
    message: str | None = None
    try:
        results = _observe(run)
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
    except BaseException as exc:  # terminated: finalise, then let the termination go on
        log.warning(
            "%s run %s terminated (%s): finalising it as failed", kind.name, run_id, type(exc).__name__
        )
        code = ErrorCode.RUN_CANCELLED
        try:
            _finalize(run, "failed", [str(code)], _STOP_MESSAGES[code])
        except TenantAtlasError as fin:
            log.error("%s", fin.message)
        raise
    # Finished types do not prove the lock was held to the end: ask once more before closing the row.
    if control.stop_code is None and not control.guard.held():
        control.stop(ErrorCode.LOCK_LOST)
    if control.stop_code == ErrorCode.LOCK_LOST:
        log.warning("%s run %s lost its lock: stopped and finalised as failed (lock_lost)", kind.name, run_id)
        status, message = "failed", _STOP_MESSAGES[ErrorCode.LOCK_LOST]
        codes.append(str(ErrorCode.LOCK_LOST))
    _finalize(run, status, sorted(set(codes)), message)


def _finalize(run: _Run, status: str, codes: list[str], message: str | None) -> None:
    kind, scope, run_id, log = run.kind, run.scope, run.run_id, run.log
    try:
        if scope.conn.closed or scope.conn.broken:
            raise psycopg.OperationalError("ledger connection lost")
        scope.conn.rollback()
        if not kind.ledger.finalize_run(
            scope, run_id, status=status, error_codes=codes, error_message=message
        ):
            log.warning(
                "%s run %s was already closed by another process (%s); left as it is instead of %s",
                kind.name,
                run_id,
                kind.ledger.status_of(scope, run_id),
                status,
            )
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


def _observe(run: _Run) -> list[_TypeResult]:
    kind, scope, selection, run_id = run.kind, run.scope, run.selection, run.run_id
    try:
        run.graph.acquire_token(scope.tenant_id)
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
    workers = max(1, min(run.concurrency, len(selection.policy_types)))
    scopes = _ScopePool(run.db, scope.tenant_id)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{kind.name}-{run_id}")
    futures: list[Future[_TypeResult]] = []
    workers_done = True
    try:
        futures = [pool.submit(_run_type, run, scopes, key) for key in selection.policy_types]
        return [f.result() for f in futures]
    except BaseException as exc:
        if not isinstance(exc, Exception):
            # Terminated while the workers run: shut the commit gate, drop the types not started, give
            # the running ones a moment to reach a commit point, and no commit gets through after it.
            run.control.stop(ErrorCode.RUN_CANCELLED)
            pool.shutdown(wait=False, cancel_futures=True)
            workers_done = not wait_futures(futures, timeout=STOP_GRACE_S).not_done
            run.control.quiesce(STOP_GRACE_S)
        raise
    finally:
        pool.shutdown(wait=workers_done)
        if workers_done:
            scopes.close()
        # else: a worker still holds one of the connections; they close with the process


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

    def close(self) -> None:
        self._leases.close()  # back to the database's pool, or closed if broken


def _run_type(run: _Run, scopes: _ScopePool, key: str) -> _TypeResult:
    """One policy type: the kind's worker, then the type's outcome in the ledger. Whatever goes wrong
    inside one type fails that type only; the database failing fails the run."""
    from ..graph.client import RequestStats

    kind, run_id, log, control = run.kind, run.run_id, run.log, run.control
    stats = RequestStats()
    with scopes.scope() as scope:
        ctx = TypeContext(run_id, key, scope, run.graph, stats, log, _control=control)
        status, code, message = "succeeded", None, None
        try:
            control.raise_if_stopped()  # a type not started when the run stopped is not read at all
            kind.observe_type(ctx)
        except TenantAtlasError as exc:
            if exc.code in _DATABASE_CODES:
                raise
            status, code, message = "failed", str(exc.code), exc.message
            log.warning("policy type %s failed: %s", key, exc.message)
        except psycopg.Error:
            raise
        except Exception as exc:
            log.exception("policy type %s failed unexpectedly", key)
            status, code = "failed", str(ErrorCode.INTERNAL_ERROR)
            message = f"internal error: {type(exc).__name__}"
        if status == "failed":
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
