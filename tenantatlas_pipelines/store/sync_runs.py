"""The sync-run ledger (inventory_sync_runs / inventory_sync_run_types): one `RunLedger` (run_ledger.py)
plus what only sync runs count per page.

A row when a run starts, per-type outcomes as it goes, totals when it ends (summed from the per-type rows,
so the run row can never disagree with its types). Page counts are added in the same transaction as the
page's upsert: a page is counted exactly when it is visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .run_ledger import LedgerRunRow, LedgerTypeRow, RunLedger
from .scope import TenantScope

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
class TypeOutcome(LedgerTypeRow):
    items_observed: int = 0
    items_new: int = 0
    items_changed: int = 0
    items_errors: int = 0
    items_filtered: int = 0
    meta_keys_dropped: int = 0


@dataclass(frozen=True)
class SyncRun(LedgerRunRow):
    items_observed: int
    items_new: int
    items_changed: int
    items_errors: int
    items_filtered: int
    meta_keys_dropped: int
    types: tuple[TypeOutcome, ...] = field(default=())


LEDGER: RunLedger[SyncRun, TypeOutcome] = RunLedger(
    kind="sync",
    runs_table="inventory_sync_runs",
    types_table="inventory_sync_run_types",
    run_fk="sync_run_id",
    counters=COUNTERS,
    run_row=SyncRun,
    type_row=TypeOutcome,
)

# The generic ledger operations, under the names the rest of the code (and the benchmarks) use.
start_run = LEDGER.start_run
record_skipped = LEDGER.record_skipped
mark_abandoned = LEDGER.mark_abandoned
finish_type = LEDGER.finish_type
finalize_run = LEDGER.finalize_run
get_run = LEDGER.get_run
list_runs = LEDGER.list_runs


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
    return {"tenant_id": scope.tenant_id, "run_id": run_id, "policy_type": policy_type, "errors": errors,
            "filtered": filtered, "meta_keys_dropped": meta_keys_dropped}


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
