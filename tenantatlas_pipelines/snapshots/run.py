"""The snapshot run: capture one (tenant, selection) — Graph -> normal form -> versions -> references.

A thin caller of the run engine (runs/), which gives it the run guarantees shared with sync runs: the
lock per (tenant, selection_hash) in the `snapshot` namespace (a snapshot and a sync of one pair may run
at once, two snapshots may not), `skipped`/`lock_held`, `run_abandoned` recovery, the token first, one
worker per policy type, finalisation. What is the snapshot's own, per policy type:
- pages of complete objects (fetch.py), each page normalised, stored as versions + memberships with its
  counts in one transaction;
- then the references its objects use, resolved (resolve.py) and recorded with the snapshot.
A type that cannot be read completely — listing, details or its references — fails with its code and
the snapshot is `partial`: never silently smaller.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import ErrorCode
from ..runs import RunKind, RunResultDict, TypeContext, execute_run
from ..store import snapshot_runs
from ..store.snapshot_objects import record_objects
from ..store.snapshot_references import record_references
from .capture import capture_object
from .fetch import Strategy, iter_object_pages, strategy_from_env
from .references import RefKind, references_in
from .resolve import ReferenceResolver
from .secrets import snapshot_key_from_env

if TYPE_CHECKING:
    from ..db import Database
    from ..graph.client import GraphClient

SNAPSHOT_NAMESPACE = "snapshot"
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotResult(RunResultDict):
    """What one snapshot run did, read back from its ledger row (the CLI's JSON is `as_dict()`)."""

    snapshot_id: int
    status: str
    tenant_key: str
    tenant_id: str
    selection_name: str
    selection_hash: str
    objects: int
    new_versions: int
    items_errors: int
    references: int
    references_unresolved: int
    requests: int
    throttled: int
    retries: int
    duration_s: float
    had_errors: bool
    error_codes: tuple[str, ...]
    error_message: str | None
    types: tuple[snapshot_runs.SnapshotTypeOutcome, ...] = field(default=())


@dataclass
class _RunState:
    """Shared by a run's type workers: the secret key, the strategy, the run's reference resolver."""

    key: bytes | None
    strategy: Strategy
    resolvers: dict[int, ReferenceResolver] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def resolver_for(self, ctx: TypeContext) -> ReferenceResolver:
        with self.lock:
            if ctx.run_id not in self.resolvers:
                self.resolvers[ctx.run_id] = ReferenceResolver(ctx.graph, ctx.scope.tenant_id)
            return self.resolvers[ctx.run_id]


def _capture_type(state: _RunState, ctx: TypeContext) -> None:
    """One policy type: complete pages, each stored with its counts, then the references it uses."""
    tenant_id = ctx.scope.tenant_id
    used: set[tuple[RefKind, str]] = set()
    seen: set[str] = set()  # Graph may list an object on two pages: it is recorded once
    for page in iter_object_pages(ctx.graph, tenant_id, ctx.policy_type, ctx.stats, state.strategy):
        captured = [
            capture_object(ctx.policy_type, {**raw, "id": external_id}, key=state.key)
            for external_id, raw in page.objects
            if not (external_id in seen or seen.add(external_id))
        ]
        for rejected in page.rejected:
            ctx.item_codes.add(str(rejected.code))
        record_objects(ctx.scope, ctx.run_id, ctx.policy_type, captured, errors=len(page.rejected), pages=1)
        ctx.commit()  # the page and its counts become visible together
        for obj in captured:
            used |= references_in(obj.document)
        del captured, page
    if used:
        refs = state.resolver_for(ctx).resolve(used, ctx.stats)
        record_references(ctx.scope, ctx.run_id, ctx.policy_type, refs)
        ctx.commit()


def snapshot_kind(
    *, key: bytes | None = None, strategy: Strategy = Strategy.EXPAND
) -> RunKind[snapshot_runs.SnapshotRun]:
    """The snapshot run kind with this secret key and fetch strategy (each run's type workers share
    one reference resolver)."""
    state = _RunState(key, strategy)
    return RunKind(
        name="snapshot", lock_namespace=SNAPSHOT_NAMESPACE, ledger=snapshot_runs.LEDGER,
        observe_type=functools.partial(_capture_type, state),
    )


# The kind as the dead-run sweep sees it (defs/sensors.py RUN_KINDS): its ledger and lock namespace.
# Runs themselves get a kind built at their start (run_snapshot), with the key and strategy of then.
SNAPSHOT = snapshot_kind()


def run_snapshot(
    db: Database,
    graph: GraphClient,
    tenant_key: str,
    selection_name: str,
    *,
    dagster_run_id: str | None = None,
    log: logging.Logger | None = None,
    type_concurrency: int | None = None,
    strategy: Strategy | None = None,
) -> SnapshotResult:
    """Capture one (tenant, selection) and return the finalised ledger record of the snapshot.

    The HMAC key for secrets comes from TENANTATLAS_SNAPSHOT_KEY (never stored); the fetch strategy
    from TENANTATLAS_SNAPSHOT_FETCH unless given."""
    log = log or _log
    kind = snapshot_kind(key=snapshot_key_from_env(), strategy=strategy or strategy_from_env())
    outcome = execute_run(
        kind, db, graph, tenant_key, selection_name, dagster_run_id=dagster_run_id, log=log,
        type_concurrency=type_concurrency,
    )
    run, tenant, selection = outcome.run, outcome.tenant, outcome.selection
    if run.status != "skipped":
        log.info(
            "snapshot %s finished: %s, %s objects, %s new versions, %s references (%s unresolved)%s",
            run.id, run.status, run.objects, run.new_versions, run.references_total,
            run.references_unresolved, f" ({', '.join(run.error_codes)})" if run.error_codes else "",
        )
    return SnapshotResult(
        snapshot_id=run.id, status=run.status, tenant_key=tenant.key, tenant_id=tenant.tenant_id,
        selection_name=selection.name, selection_hash=selection.selection_hash, objects=run.objects,
        new_versions=run.new_versions, items_errors=run.items_errors, references=run.references_total,
        references_unresolved=run.references_unresolved, requests=run.requests, throttled=run.throttled,
        retries=run.retries, duration_s=outcome.duration_s, had_errors=run.had_errors,
        error_codes=tuple(run.error_codes), error_message=run.error_message, types=run.types,
    )


__all__ = ["SNAPSHOT", "SNAPSHOT_NAMESPACE", "ErrorCode", "SnapshotResult", "run_snapshot", "snapshot_kind"]
