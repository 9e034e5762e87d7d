"""The inventory sync: observe one (tenant, selection) — Graph -> normalize -> store -> ledger.

A plain function the Dagster asset, the CLI and the benchmarks call; a thin caller of the run engine
(runs/), which gives it the run guarantees (lock per (tenant, selection_hash) in the `sync` namespace,
`skipped`/`lock_held`, `run_abandoned` recovery, per-type outcomes, finalisation). What is sync's own:
- each page is normalised and upserted into inventory_items with its counts in one statement;
- nothing is ever deleted from inventory: absence is derived later, with confidence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .normalize import InventoryRecord, ItemFiltered, ItemRejected, normalize_item
from .policy_types import get_policy_type
from .runs import RunKind, RunResultDict, TypeContext, execute_run
from .store import sync_runs
from .store.inventory import write_page
from .store.locks import SYNC_NAMESPACE
from .store.scope import TenantScope

if TYPE_CHECKING:
    from .db import Database
    from .graph.client import GraphClient

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncResult(RunResultDict):
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
    outcome = execute_run(
        SYNC,
        db,
        graph,
        tenant_key,
        selection_name,
        dagster_run_id=dagster_run_id,
        log=log,
        type_concurrency=type_concurrency,
    )
    run, tenant, selection = outcome.run, outcome.tenant, outcome.selection
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
        duration_s=outcome.duration_s,
        had_errors=run.had_errors,
        error_codes=tuple(run.error_codes),
        error_message=run.error_message,
        types=run.types,
    )


def _sync_type(ctx: TypeContext) -> None:
    """Read one policy type page by page; each page is normalised and committed whole."""
    policy_type = get_policy_type(ctx.policy_type)
    for page in ctx.graph.iter_pages(ctx.scope.tenant_id, ctx.policy_type, stats=ctx.stats):
        normalized = [normalize_item(policy_type, i) for i in page.items]
        del page  # the raw page (blobs and all) is not kept while the next one is fetched
        _store_page(ctx.scope, ctx.run_id, policy_type.key, normalized, ctx.item_codes)
        del normalized
        ctx.commit()  # the page and its counts become visible together


def _store_page(
    scope: TenantScope, run_id: int, policy_type: str, normalized: list[Any], item_codes: set[str]
) -> None:
    records: list[InventoryRecord] = []
    filtered_ids: list[str] = []
    errors = dropped = 0
    for n in normalized:
        if isinstance(n, InventoryRecord):
            records.append(n)
            dropped += n.meta_keys_dropped
        elif isinstance(n, ItemRejected):
            errors += 1
            item_codes.add(str(n.code))
        elif isinstance(n, ItemFiltered):
            filtered_ids.append(n.external_id)
    write_page(
        scope, run_id, policy_type, records, errors=errors, filtered=len(filtered_ids),
        meta_keys_dropped=dropped, filtered_ids=filtered_ids,
    )


SYNC: RunKind[sync_runs.SyncRun] = RunKind(
    name="sync", lock_namespace=SYNC_NAMESPACE, ledger=sync_runs.LEDGER, observe_type=_sync_type
)
