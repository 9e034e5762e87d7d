"""The sync engine: observe one (tenant, selection) — Graph -> normalize -> store -> ledger.

A plain function the Dagster asset, the CLI and the benchmarks call. Guarantees:
- at most one run per (tenant, selection_hash) at a time (advisory lock); a second one is `skipped`;
- every run that starts is finalised (succeeded / partial / failed), or found `running` by the next
  run of its pair and marked failed with `run_abandoned`;
- one policy type's failure never stops or spoils the others; it is recorded on that type;
- nothing is ever deleted from inventory: absence is derived later, with confidence.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import psycopg

from .errors import ErrorCode, TenantAtlasError
from .normalize import InventoryRecord, ItemFiltered, ItemRejected, normalize_item
from .policy_types import get_policy_type
from .store import sync_runs
from .store.inventory import write_page
from .store.locks import run_lock
from .store.scope import TenantScope, tenant_scope
from .store.selections import Selection, get_selection
from .store.tenants import get_tenant_by_key

if TYPE_CHECKING:
    from .db import Database
    from .graph.client import GraphClient

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TypeResult:
    policy_type: str
    status: str
    error_code: str | None
    item_codes: tuple[str, ...]


@dataclass(frozen=True)
class SyncResult:
    """What one sync run did, read back from the ledger."""

    sync_run_id: int | None
    status: str
    tenant_key: str
    tenant_id: str
    selection_name: str
    selection_hash: str
    observed: int
    new: int
    changed: int
    errors: int
    filtered: int
    meta_keys_dropped: int
    requests: int
    throttled: int
    retries: int
    duration_s: float
    had_errors: bool
    error_codes: tuple[str, ...]
    error_message: str | None
    types: tuple[sync_runs.TypeOutcome, ...]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["error_codes"] = list(self.error_codes)
        data["types"] = [asdict(t) for t in self.types]
        return data


def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_sync(
    db: Database,
    graph: GraphClient,
    tenant_key: str,
    selection_name: str,
    *,
    dagster_run_id: str | None = None,
    log: logging.Logger | None = None,
    type_concurrency: int | None = None,
) -> SyncResult:
    """Observe one (tenant, selection) and return the finalised ledger record of the run."""
    log = log or _log
    started = time.monotonic()
    with db.pooled() as conn:
        tenant = get_tenant_by_key(conn, tenant_key)  # a partition key: never read as a GUID
        if not tenant.enabled:
            raise TenantAtlasError(ErrorCode.TENANT_DISABLED, f"tenant {tenant.key!r} is disabled")
        selection = get_selection(conn, selection_name)
        scope = tenant_scope(conn, tenant.tenant_id)
        with (
            db.connect(autocommit=True) as lock_conn,
            run_lock(lock_conn, scope, selection.selection_hash) as owned,
        ):
            if not owned:
                msg = (
                    f"another sync of tenant {tenant.key!r} / selection {selection.name!r} is running; "
                    "this run did nothing"
                )
                log.warning(msg)
                run_id = sync_runs.record_skipped(
                    scope,
                    selection,
                    dagster_run_id=dagster_run_id,
                    worker=_worker(),
                    code=ErrorCode.LOCK_HELD,
                    message=msg,
                )
            else:
                abandoned = sync_runs.mark_abandoned(scope, selection.selection_hash)
                if abandoned:
                    log.warning("marked abandoned runs %s as failed (run_abandoned)", abandoned)
                run_id = sync_runs.start_run(
                    scope, selection, dagster_run_id=dagster_run_id, worker=_worker()
                )
                log.info(
                    "sync run %s started: tenant %s, selection %s (%d types)",
                    run_id,
                    tenant.key,
                    selection.name,
                    len(selection.policy_types),
                )
                _observe_and_finalize(
                    db,
                    graph,
                    scope,
                    selection,
                    run_id,
                    log,
                    type_concurrency or getattr(graph, "per_tenant_concurrency", 4),
                )
        run = sync_runs.get_run(scope, run_id)
    assert run is not None
    if run.status != "skipped":
        log.info(
            "sync run %s finished: %s, %s observed, %s new, %s changed%s",
            run.id,
            run.status,
            run.items_observed,
            run.items_new,
            run.items_changed,
            f" ({', '.join(run.error_codes)})" if run.error_codes else "",
        )
    return SyncResult(
        sync_run_id=run.id,
        status=run.status,
        tenant_key=tenant.key,
        tenant_id=tenant.tenant_id,
        selection_name=selection.name,
        selection_hash=selection.selection_hash,
        observed=run.items_observed,
        new=run.items_new,
        changed=run.items_changed,
        errors=run.items_errors,
        filtered=run.items_filtered,
        meta_keys_dropped=run.meta_keys_dropped,
        requests=run.requests,
        throttled=run.throttled,
        retries=run.retries,
        duration_s=round(time.monotonic() - started, 3),
        had_errors=run.had_errors,
        error_codes=tuple(run.error_codes),
        error_message=run.error_message,
        types=run.types,
    )


def _observe_and_finalize(
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
        results = _observe(db, graph, scope, selection, run_id, log, concurrency)
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
        log.exception("sync run %s failed unexpectedly", run_id)
        status, message = "failed", f"internal error: {type(exc).__name__}"
        codes.append(str(ErrorCode.INTERNAL_ERROR))
    try:
        if scope.conn.closed or scope.conn.broken:
            raise psycopg.OperationalError("ledger connection lost")
        scope.conn.rollback()
        sync_runs.finalize_run(
            scope, run_id, status=status, error_codes=sorted(set(codes)), error_message=message
        )
    except psycopg.OperationalError:
        # The database is unreachable: the row stays 'running' and the next run of this pair marks it
        # failed with run_abandoned. Nothing half-written is visible: pages commit whole.
        raise TenantAtlasError(
            ErrorCode.DATABASE_UNAVAILABLE,
            f"sync run {run_id} could not be finalised: the database is unavailable",
        ) from None
    except psycopg.Error as exc:
        log.exception("sync run %s could not be finalised", run_id)
        raise TenantAtlasError(
            ErrorCode.DATABASE_ERROR,
            f"sync run {run_id} could not be finalised: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200]}",
        ) from None


def _observe(
    db: Database,
    graph: GraphClient,
    scope: TenantScope,
    selection: Selection,
    run_id: int,
    log: logging.Logger,
    concurrency: int,
) -> list[TypeResult]:
    try:
        graph.acquire_token(scope.tenant_id)
    except TenantAtlasError as exc:
        # Without a token no type can be read: every type fails with the auth code.
        for key in selection.policy_types:
            sync_runs.finish_type(
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
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"sync-{run_id}") as pool,
    ):
        futures = [pool.submit(_sync_type, scopes, graph, run_id, key, log) for key in selection.policy_types]
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


def _sync_type(
    scopes: _ScopePool, graph: GraphClient, run_id: int, key: str, log: logging.Logger
) -> TypeResult:
    """Read one policy type page by page; each page is normalised and committed whole."""
    from .graph.client import RequestStats

    policy_type = get_policy_type(key)
    stats = RequestStats()
    item_codes: set[str] = set()
    with scopes.scope() as scope:
        tenant_id = scope.tenant_id
        status, code, message = "succeeded", None, None
        try:
            for page in graph.iter_pages(tenant_id, key, stats=stats):
                normalized = [normalize_item(policy_type, i) for i in page.items]
                del page  # the raw page (blobs and all) is not kept while the next one is fetched
                _store_page(scope, run_id, policy_type.key, normalized, item_codes)
                del normalized
        except TenantAtlasError as exc:
            if exc.code in (ErrorCode.DATABASE_UNAVAILABLE, ErrorCode.DATABASE_ERROR):
                raise
            status, code, message = "failed", str(exc.code), exc.message
            log.warning("policy type %s failed: %s", key, exc.message)
        sync_runs.finish_type(
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
    return TypeResult(key, status, code, tuple(sorted(item_codes)))


def _store_page(
    scope: TenantScope, run_id: int, policy_type: str, normalized: list[Any], item_codes: set[str]
) -> None:
    records: list[InventoryRecord] = []
    errors = filtered = dropped = 0
    for n in normalized:
        if isinstance(n, InventoryRecord):
            records.append(n)
            dropped += n.meta_keys_dropped
        elif isinstance(n, ItemRejected):
            errors += 1
            item_codes.add(str(n.code))
        elif isinstance(n, ItemFiltered):
            filtered += 1
    write_page(
        scope, run_id, policy_type, records, errors=errors, filtered=filtered, meta_keys_dropped=dropped
    )
    scope.conn.commit()  # the page and its counts become visible together
