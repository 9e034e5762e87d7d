"""What the assets do, as plain functions: run one partition's sync, derive and publish its missing items.

No Dagster here: the assets call these and only wrap the results in MaterializeResult/metadata, so the
logic is tested without an instance, and the CLI prints exactly what the assets recorded. pandas is
imported inside functions so definitions and run workers that do not derive missing items never load it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..store.missing_snapshots import MISSING_ITEM_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

    from ..db import Database
    from ..graph.client import GraphClient
    from ..store.missing import MissingResult
    from ..store.missing_snapshots import SnapshotHeader
    from ..store.sync_runs import SyncRun
    from ..sync import SyncResult

# Numeric metadata every sync materialization carries (the UI plots these per partition over time).
SYNC_COUNTERS: tuple[str, ...] = (
    "observed",
    "new",
    "changed",
    "errors",
    "filtered",
    "meta_keys_dropped",
    "requests",
    "throttled",
    "retries",
)
# The published table's columns, in its order (one list: the store owns it).
MISSING_COLUMNS: tuple[str, ...] = MISSING_ITEM_COLUMNS
# The columns `tenantatlas missing --json` prints, in this order.
MISSING_CLI_FIELDS: tuple[str, ...] = (
    "policy_type",
    "external_id",
    "display_name",
    "last_seen_at",
    "confidence",
    "reason",
)
PREVIEW_ROWS = 20


def run_partition_sync(
    db: Database,
    graph: GraphClient,
    tenant_key: str,
    selection_name: str,
    *,
    dagster_run_id: str | None,
    log: logging.Logger | None = None,
) -> SyncResult:
    """Exactly one engine run for one partition (the engine owns locking, the ledger and status)."""
    from ..sync import run_sync

    return run_sync(db, graph, tenant_key, selection_name, dagster_run_id=dagster_run_id, log=log)


def sync_metadata(result: SyncResult) -> dict[str, Any]:
    """Plain metadata for a sync materialization: the counters, duration, run id, status, codes."""
    meta: dict[str, Any] = {name: int(getattr(result, name)) for name in SYNC_COUNTERS}
    meta["duration_s"] = float(result.duration_s)
    if result.sync_run_id is not None:
        meta["sync_run_id"] = int(result.sync_run_id)
    meta["status"] = result.status
    meta["had_errors"] = bool(result.had_errors)
    meta["error_codes"] = ", ".join(result.error_codes) or "none"
    return meta


def ledger_summary(result: SyncResult) -> dict[str, Any]:
    """The JSON view of a sync (CLI, materialization metadata): run id, status, counts, error codes."""
    return {
        "sync_run_id": result.sync_run_id,
        "status": result.status,
        "tenant_key": result.tenant_key,
        "tenant_id": result.tenant_id,
        "selection_name": result.selection_name,
        "selection_hash": result.selection_hash,
        "counts": {name: int(getattr(result, name)) for name in SYNC_COUNTERS},
        "duration_s": float(result.duration_s),
        "had_errors": bool(result.had_errors),
        "error_codes": list(result.error_codes),
        "error_message": result.error_message,
    }


def summary_from_sync_run(run: SyncRun, *, tenant_key: str) -> dict[str, Any]:
    """The same view as ledger_summary, read back from a ledger row (what the CLI prints)."""
    duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
    counts = {name: int(getattr(run, _LEDGER_COLUMN.get(name, name))) for name in SYNC_COUNTERS}
    return {
        "sync_run_id": run.id,
        "status": run.status,
        "tenant_key": tenant_key,
        "tenant_id": run.tenant_id,
        "selection_name": run.selection_name,
        "selection_hash": run.selection_hash,
        "counts": counts,
        "duration_s": round(duration, 3) if duration is not None else None,
        "had_errors": run.had_errors,
        "error_codes": list(run.error_codes),
        "error_message": run.error_message,
        "dagster_run_id": run.dagster_run_id,
    }


_LEDGER_COLUMN = {
    "observed": "items_observed",
    "new": "items_new",
    "changed": "items_changed",
    "errors": "items_errors",
    "filtered": "items_filtered",
}


def skipped_message(result: SyncResult) -> str:
    """The log line a skipped run gets: plain about what happened and that nothing is wrong."""
    return (
        f"SKIPPED: sync of tenant {result.tenant_key!r} / selection {result.selection_name!r} did nothing "
        f"because another run holds its lock ({', '.join(result.error_codes) or 'lock_held'}); that run "
        f"observes this partition. Ledger row {result.sync_run_id} has status 'skipped'."
    )


@dataclass(frozen=True)
class PublishedMissing:
    """One partition's published missing items: the frame that was written and its header."""

    frame: pd.DataFrame
    header: SnapshotHeader
    tenant_id: str

    @property
    def high(self) -> int:
        return int((self.frame["confidence"] == "high").sum()) if len(self.frame) else 0

    @property
    def low(self) -> int:
        return int((self.frame["confidence"] == "low").sum()) if len(self.frame) else 0


def missing_frame(result: MissingResult, *, tenant_id: str, header: SnapshotHeader) -> pd.DataFrame:
    """The missing items as a DataFrame with the published table's columns (empty frame keeps them)."""
    import pandas as pd

    rows = [
        {
            "tenant_id": tenant_id,
            "tenant_key": header.tenant_key,
            "selection_name": header.selection_name,
            "selection_hash": header.selection_hash,
            "policy_type": i.policy_type,
            "external_id": i.external_id,
            "display_name": i.display_name,
            "last_seen_at": i.last_seen_at,
            "last_seen_sync_run_id": i.last_seen_sync_run_id,
            "confidence": i.confidence,
            "reason": getattr(i, "reason", None),
            "reference_sync_run_id": header.reference_sync_run_id,
            "computed_at": header.computed_at,
        }
        for i in result.items
    ]
    return pd.DataFrame(rows, columns=list(MISSING_COLUMNS))


def publish_missing(
    db: Database,
    tenant_key: str,
    selection_name: str,
    *,
    dagster_run_id: str | None,
    now: datetime | None = None,
) -> PublishedMissing:
    """Derive one partition's missing items and replace its published snapshot in one transaction."""
    from ..store.missing import missing_items
    from ..store.missing_snapshots import SnapshotHeader, replace_partition
    from ..store.scope import tenant_scope
    from ..store.selections import get_selection
    from ..store.tenants import get_tenant_by_key

    with db.pooled() as conn:  # the sync's idle connection: no new backend (and staging table) per run
        tenant = get_tenant_by_key(conn, tenant_key)
        selection = get_selection(conn, selection_name)
        scope = tenant_scope(conn, tenant.tenant_id)
        result = missing_items(scope, selection.selection_hash)
        header = SnapshotHeader(
            tenant_key=tenant.key,
            selection_name=selection.name,
            selection_hash=selection.selection_hash,
            reference_sync_run_id=result.run_id,
            reference_status=result.run_status,
            no_reference_reason=result.reason,
            computed_at=now or datetime.now(UTC),
            dagster_run_id=dagster_run_id,
        )
        frame = missing_frame(result, tenant_id=tenant.tenant_id, header=header)
        replace_partition(scope, header, frame.itertuples(index=False))
        conn.commit()  # one transaction: pooled() rolls back whatever is not committed
    return PublishedMissing(frame=frame, header=header, tenant_id=tenant.tenant_id)


def missing_metadata(published: PublishedMissing) -> dict[str, Any]:
    """Plain metadata for a missing-items materialization (the preview is added by the asset)."""
    h = published.header
    meta: dict[str, Any] = {
        "missing": len(published.frame),
        "missing_high": published.high,
        "missing_low": published.low,
        "reference_status": h.reference_status or "none",
    }
    if h.reference_sync_run_id is not None:
        meta["reference_sync_run_id"] = int(h.reference_sync_run_id)
    if h.no_reference_reason:
        meta["no_reference_reason"] = h.no_reference_reason
    return meta


def preview_markdown(frame: pd.DataFrame, limit: int = PREVIEW_ROWS) -> str:
    """A markdown table of the first rows (what an analyst glances at in the UI), or a plain sentence."""
    if frame.empty:
        return "No missing items."
    cols = ["policy_type", "external_id", "display_name", "last_seen_at", "confidence", "reason"]
    head = frame[cols].head(limit)

    def cell(value: Any) -> str:
        text = value.isoformat() if isinstance(value, datetime) else ("" if value is None else str(value))
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in head.itertuples(index=False)]
    if len(frame) > limit:
        lines.append(f"\n… and {len(frame) - limit} more (query table `missing_items`).")
    return "\n".join(lines)


def explain_codes(result: SyncResult) -> list[str]:
    """One line per error code of the run, naming the policy types it hit and the docs' sentence.

    Types that failed differently get their own line, so "17 types unlicensed, 1 forbidden" reads as
    two reasons with two things to do, not one code list.
    """
    from ..error_docs import explain

    by_code: dict[str, list[str]] = {}
    for t in result.types:
        if t.error_code:
            by_code.setdefault(t.error_code, []).append(t.policy_type)
    lines = []
    total = len(result.types)
    for code, types in sorted(by_code.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        shown = ", ".join(sorted(types)[:5]) + (f" and {len(types) - 5} more" if len(types) > 5 else "")
        lines.append(f"{explain(code)} [{len(types)} of {total} types: {shown}]")
    for code in result.error_codes:  # run-level codes (database, internal) and item codes
        if code not in by_code:
            lines.append(explain(code))
    return lines


def outcome_description(result: SyncResult) -> str:
    """What a failed or partial sync means, in words: a headline, then one line per reason."""
    failed_types = sum(1 for t in result.types if t.status != "succeeded")
    where = f"{result.tenant_key}/{result.selection_name}"
    if result.status == "partial":
        head = (
            f"Sync run {result.sync_run_id} of {where} was partial: {failed_types} of "
            f"{len(result.types)} policy types could not be read, so missing items of this partition "
            "are low confidence."
        )
    elif result.types and failed_types == len(result.types):
        head = (
            f"Sync run {result.sync_run_id} of {where} failed: none of its {failed_types} policy types "
            "could be read."
        )
    else:
        head = f"Sync run {result.sync_run_id} of {where} {result.status}."
    lines = [head, *(f"- {line}" for line in explain_codes(result))]
    if result.error_message:
        lines.append(f"Detail: {result.error_message}")
    return "\n".join(lines)


def refusal_description(tenant_key: str, selection_name: str, code: str, message: str) -> str:
    """Why a sync could not start (no ledger row): the engine's message, then the docs' sentence."""
    from ..error_docs import explain

    return f"Sync of {tenant_key}/{selection_name} could not start: {message}\n- {explain(code)}"


def analyst_query_markdown(tenant_key: str, selection_name: str) -> str:
    """The SQL an analyst runs for the whole list behind the preview (docs/analysts.md)."""
    return (
        "The full list is in the analyst table `missing_items` (see docs/analysts.md):\n\n"
        "```sql\nSELECT policy_type, external_id, display_name, last_seen_at, confidence, reason\n"
        f"FROM missing_items\nWHERE tenant_key = '{tenant_key}' AND selection_name = '{selection_name}'\n"
        "ORDER BY confidence, policy_type, display_name;\n```"
    )
