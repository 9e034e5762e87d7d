"""The two inventory assets, partitioned by (tenant, selection); thin wrappers over defs/reporting.py.

`inventory_sync`: materializing a partition is exactly one sync run of the engine.
- succeeded / partial: a materialization with the counters; partial also logs a warning (the ledger and
  the missing items' `low` confidence say what could not be read);
- skipped (another run holds the (tenant, selection) lock): a materialization with status=skipped and a
  plain warning, and the Dagster run succeeds: nothing is wrong, the lock holder is doing the work and a
  red run would page someone for a non-event (documented in docs/orchestration.md);
- failed, or the engine refused (unknown/disabled tenant, invalid config): the step fails with
  `dagster.Failure` carrying the same metadata, so the run is red and alerts fire; `missing_items` does
  not run after it.
`missing_items`: derives the partition's missing items as a DataFrame, publishes it to the
`missing_items` table (one transaction per partition) and previews it as markdown.

Neither has a BackfillPolicy on purpose: every partition is its own run, which is what gives each run the
`dagster/partition/tenant` tag the run queue's per-tenant limit keys on.
"""

from collections.abc import Iterator
from typing import Any

import psycopg
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckResult,
    AssetExecutionContext,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from ..db import Database
from ..errors import TenantAtlasError
from . import freshness, reporting
from .automation import publish_partition
from .checks import MISSING_CHECK_NAMES, MISSING_CHECK_SPECS, missing_items_check_results
from .failures import ExplainedFailure
from .inventory_checks import INVENTORY_CHECK_SPECS, inventory_check_results, sync_complete_result
from .partitions import PartitionRef, partition_ref, sync_partitions
from .resources import GraphResource, InventoryDatabase

GROUP = "inventory"
# Identifiers, not quantities: shown as text so the UI does not plot them as a series.
_TEXT_FIELDS = frozenset({"sync_run_id", "reference_sync_run_id"})


def _metadata(plain: dict[str, Any]) -> dict[str, Any]:
    # Counters as ints/floats (plotted by the UI), everything else (ids included) as text.
    return {
        k: v if isinstance(v, bool | int | float) and k not in _TEXT_FIELDS else MetadataValue.text(str(v))
        for k, v in plain.items()
    }


@asset(
    partitions_def=sync_partitions,
    group_name=GROUP,
    kinds={"python", "postgres"},
    check_specs=INVENTORY_CHECK_SPECS,
    description="Observes one tenant's Intune objects of one named selection through Microsoft Graph "
    "into the inventory (one engine sync run per partition).",
)
def inventory_sync(
    context: AssetExecutionContext, inventory_db: InventoryDatabase, graph: GraphResource
) -> Iterator[MaterializeResult | AssetCheckResult]:
    ref = partition_ref(context.partition_key)
    db = inventory_db.get_database()
    try:
        result = reporting.run_partition_sync(
            db, graph.get_client(), ref.tenant, ref.selection, dagster_run_id=context.run_id, log=context.log
        )
    except TenantAtlasError as exc:  # refused before a ledger row existed (unknown tenant, credentials…)
        why = reporting.refusal_description(ref.tenant, ref.selection, exc.code, exc.message)
        yield from _checks_after_failure(context, db, ref, why)
        raise ExplainedFailure(why, metadata={"status": "failed", "error_codes": str(exc.code)}) from None
    metadata = _metadata(reporting.sync_metadata(result))
    metadata["ledger"] = MetadataValue.json(reporting.ledger_summary(result))
    if result.status == "failed":
        why = reporting.outcome_description(result)
        yield from _checks_after_failure(context, db, ref, why)
        raise ExplainedFailure(why, metadata=metadata)
    explanation = None
    if result.status == "skipped":
        context.log.warning(reporting.skipped_message(result))
    elif result.status == "partial":
        explanation = reporting.outcome_description(result)
        context.log.warning(explanation)
    # A success is already told by the engine's own "finished" line (with its counts) and the metadata.
    if result.status == "skipped":  # read nothing: the lock holder's run refreshes the partition
        fresh = _fresh_from_ledger(db, ref)
    else:
        now = freshness.utcnow()
        fresh = freshness.fresh_result(now, now, freshness.schedule_limit(now))
    yield MaterializeResult(
        metadata=metadata,
        check_results=[
            sync_complete_result(result.status, explanation),
            fresh,
            *inventory_check_results(db, ref),
        ],
    )


def _fresh_from_ledger(db: Database, ref: PartitionRef) -> AssetCheckResult:
    """Freshness from the ledger's last good sync (after a failed or skipped sync of this run)."""
    from ..store.status import latest_synced_at

    now = freshness.utcnow()
    with db.pooled() as conn:
        synced = latest_synced_at(conn).get((ref.tenant, ref.selection))
    return freshness.fresh_result(synced, now, freshness.schedule_limit(now))


def _checks_after_failure(
    context: AssetExecutionContext, db: Database, ref: PartitionRef, why: str
) -> Iterator[AssetCheckResult]:
    """Every check this run planned gets a result, so none reads "execution failed" when only the sync
    failed: `inventory_sync_complete` fails with the reason; the integrity checks and (when the run
    planned them) the missing-items checks report on the inventory and the published missing items as
    the failed sync left them, i.e. unchanged. When the store itself is unreachable they cannot be
    evaluated, and Dagster then shows them as not executed, which is the truth."""
    yield sync_complete_result("failed", why)
    try:
        yield _fresh_from_ledger(db, ref)
        yield from inventory_check_results(db, ref)
        planned = _planned_missing_checks(context)
        if planned:
            for r in missing_items_check_results(db, ref):
                if r.check_name in planned:
                    context.log_event(_as_evaluation(r, context.partition_key))
    except (TenantAtlasError, psycopg.Error) as exc:
        context.log.warning(f"checks not evaluated after the failed sync: {type(exc).__name__}: {exc}")


def _planned_missing_checks(context: AssetExecutionContext) -> set[str]:
    """The missing-items checks this run planned (the sync job plans them; a sync alone does not)."""
    keys = {AssetCheckKey(missing_items.key, name) for name in MISSING_CHECK_NAMES}
    selection = context.run.asset_check_selection
    planned = (
        keys & set(selection)
        if selection is not None
        else keys & set(context.job_def.asset_layer.asset_graph.asset_check_keys)
    )
    return {k.name for k in planned}


def _as_evaluation(result: AssetCheckResult, partition_key: str) -> AssetCheckEvaluation:
    return AssetCheckEvaluation(
        asset_key=result.asset_key,
        check_name=result.check_name,
        passed=result.passed,
        metadata=result.metadata,
        severity=result.severity,
        description="Evaluated on the published missing items, which stay as they were: this "
        "partition's sync failed, so missing_items was not refreshed in this run.",
        partition=str(partition_key),
    )


def _missing_failure(ref: PartitionRef, exc: TenantAtlasError) -> Exception:
    from ..error_docs import explain

    return ExplainedFailure(
        f"Missing items of {ref.tenant}/{ref.selection} could not be derived: {exc.message}\n"
        f"- {explain(exc.code)}"
    )


@asset(
    partitions_def=sync_partitions,
    deps=[inventory_sync],
    group_name=GROUP,
    kinds={"pandas", "postgres"},
    # Refreshed after every sync even when someone materializes only `inventory_sync` (UI, backfill):
    # the schedule's job materializes both in one run, and this condition catches the rest.
    automation_condition=AutomationCondition.eager(),
    check_specs=MISSING_CHECK_SPECS,
    description="Items of the partition's tenant and selection not observed by its latest finished sync "
    "run, with confidence (high only after a clean run); published to the `missing_items` table.",
)
def missing_items(context: AssetExecutionContext, inventory_db: InventoryDatabase) -> MaterializeResult:
    ref, published = publish_partition(context, inventory_db, reporting.publish_missing, _missing_failure)
    metadata = _metadata(reporting.missing_metadata(published))
    metadata["dagster/row_count"] = len(published.frame)
    metadata["preview"] = MetadataValue.md(reporting.preview_markdown(published.frame))
    metadata["query"] = MetadataValue.md(reporting.analyst_query_markdown(ref.tenant, ref.selection))
    context.log.info(
        f"published {len(published.frame)} missing items for {ref.tenant}/{ref.selection} "
        f"({published.high} high, {published.low} low confidence)"
    )
    selected = context.selected_asset_check_keys
    checks = [
        r
        for r in missing_items_check_results(inventory_db.get_database(), ref)
        if AssetCheckKey(missing_items.key, r.check_name) in selected
    ]
    return MaterializeResult(metadata=metadata, check_results=checks)
