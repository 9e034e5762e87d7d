"""Plain Python behind the `policy_snapshots` asset: one snapshot run per partition, its metadata and
its JSON summary (the CLI's `snapshot --json` prints the same summary). Tested without Dagster."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..db import Database
    from ..graph.client import GraphClient
    from ..snapshots.run import SnapshotResult
    from ..store.snapshot_runs import SnapshotRun

# Numeric metadata of a materialization, plotted over time by the Dagster UI.
SNAPSHOT_COUNTERS = ("objects", "new_versions", "references", "references_unresolved", "requests",
                     "throttled", "retries", "items_errors")


def run_partition_snapshot(
    db: Database, graph: GraphClient, tenant_key: str, selection_name: str, *,
    dagster_run_id: str | None, log: logging.Logger | None = None,
) -> SnapshotResult:
    """Exactly one snapshot run for one partition (the engine owns locking, the ledger and status)."""
    from ..snapshots.run import run_snapshot

    return run_snapshot(db, graph, tenant_key, selection_name, dagster_run_id=dagster_run_id, log=log)


def snapshot_metadata(result: SnapshotResult) -> dict[str, Any]:
    """Plain metadata for a snapshot materialization: counters, duration, ids, status, codes."""
    meta: dict[str, Any] = {name: int(getattr(result, name)) for name in SNAPSHOT_COUNTERS}
    meta["duration_s"] = float(result.duration_s)
    meta["snapshot_id"] = int(result.snapshot_id)
    meta["status"] = result.status
    meta["had_errors"] = bool(result.had_errors)
    meta["error_codes"] = ", ".join(result.error_codes) or "none"
    return meta


def snapshot_summary(run: SnapshotRun, *, tenant_key: str) -> dict[str, Any]:
    """The JSON view of a snapshot (CLI `snapshot --json`, `snapshots list --json`) from its ledger row."""
    return {
        "snapshot_id": run.id,
        "status": run.status,
        "tenant_key": tenant_key,
        "selection_name": run.selection_name,
        "selection_hash": run.selection_hash,
        "objects": run.objects,
        "new_versions": run.new_versions,
        "references": run.references_total,
        "references_unresolved": run.references_unresolved,
        "requests": run.requests,
        "throttled": run.throttled,
        "had_errors": run.had_errors,
        "error_codes": list(run.error_codes),
        "error_message": run.error_message,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "dagster_run_id": run.dagster_run_id,
        "types": {t.policy_type: {"status": t.status, "error_code": t.error_code, "objects": t.objects}
                  for t in run.types},
    }
