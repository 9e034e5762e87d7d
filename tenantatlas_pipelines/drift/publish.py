"""What the `policy_drift` asset does, as plain functions: compute a partition's drift, publish it, and
say it in numbers (plotted metadata) and markdown (the preview). No Dagster here (defs/drift.py wraps it).

A partition with nothing to compare yet (no snapshot, or only the first one) is published too, as a
summary row with the reason: the first snapshot of every tenant must not turn the asset red.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import ErrorCode, TenantAtlasError
from ..store.drift_items import COUNT_FIELDS, DriftResult, PublishedItem, replace_partition
from ..store.scope import tenant_scope
from ..store.selections import get_selection
from ..store.tenants import get_tenant
from .compute import compute_drift
from .model import DriftCounts, DriftReport

if TYPE_CHECKING:
    from ..db import Database

# Outcomes that mean "nothing to compare yet", not "something is wrong".
NOT_YET = (ErrorCode.NO_SNAPSHOT, ErrorCode.NO_BASELINE_SNAPSHOT)
PREVIEW_ROWS = 20


@dataclass(frozen=True)
class Published:
    """One partition's published drift: the report (None when there was nothing to compare)."""

    tenant_key: str
    selection_name: str
    report: DriftReport | None
    no_drift_reason: str | None
    counts: DriftCounts


def publish_drift(
    db: Database, tenant_key: str, selection_name: str, *, dagster_run_id: str | None = None
) -> Published:
    """Compute and publish the drift of one (tenant, selection) partition (one transaction)."""
    with db.pooled() as conn:
        tenant = get_tenant(conn, tenant_key)
        selection = get_selection(conn, selection_name)
        scope = tenant_scope(conn, tenant.tenant_id)
        report: DriftReport | None = None
        reason: str | None = None
        try:
            report = compute_drift(scope, selection)
        except TenantAtlasError as exc:
            if exc.code not in NOT_YET:
                raise
            reason = f"{exc.code}: {exc.message}"
        counts = DriftCounts.of(report.items if report else ())
        result = DriftResult(
            tenant_id=tenant.tenant_id,
            tenant_key=tenant.key,
            selection_name=selection.name,
            selection_hash=selection.selection_hash,
            status="computed" if report else "no_snapshot",
            no_drift_reason=reason,
            baseline_snapshot_id=report.baseline_snapshot_id if report else None,
            current_snapshot_id=report.current_snapshot_id if report else None,
            baseline_kind=report.baseline_kind if report else None,
            computed_at=datetime.now(UTC),
            dagster_run_id=dagster_run_id,
            **{f: getattr(counts, f) for f in COUNT_FIELDS},
        )
        items = [
            PublishedItem(
                policy_type=i.policy_type,
                external_id=i.external_id,
                display_name=i.display_name,
                kind=i.kind,
                confidence=i.confidence,
                reason=i.reason,
                accepted=i.accepted,
                changes=[c.as_json() for c in i.changes],
            )
            for i in (report.items if report else ())
        ]
        replace_partition(scope, result, items)
    return Published(tenant.key, selection.name, report, reason, counts)


def drift_metadata(published: Published) -> dict[str, Any]:
    """Plain metadata: the counts as ints (plotted over time), which snapshots, why none."""
    meta: dict[str, Any] = {f: int(getattr(published.counts, f)) for f in COUNT_FIELDS}
    report = published.report
    meta["status"] = "computed" if report else "no_snapshot"
    if report is not None:
        meta["baseline_kind"] = report.baseline_kind
        meta["baseline_snapshot_id"] = str(report.baseline_snapshot_id)
        meta["current_snapshot_id"] = str(report.current_snapshot_id)
    else:
        meta["no_drift_reason"] = published.no_drift_reason or ""
    return meta


def _cell(value: object) -> str:
    # Display names and values are attacker-controlled text: keep them from breaking the table.
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ").replace("`", "'")[:80]


def preview_markdown(published: Published) -> str:
    """The asset's preview: what drifted, alerting first, at most PREVIEW_ROWS rows."""
    report = published.report
    if report is None:
        return f"No drift computed: {_cell(published.no_drift_reason)}"
    head = (
        f"Snapshot {report.current_snapshot_id} against {report.baseline_kind} baseline "
        f"{report.baseline_snapshot_id}: {published.counts.items} items, "
        f"{published.counts.unaccepted_high} alerting."
    )
    if not report.items:
        return head + "\n\nNo drift."
    rows = sorted(report.items, key=lambda i: (not i.alerting, i.policy_type, i.external_id))
    lines = [
        head,
        "",
        "| kind | confidence | accepted | policy type | name | first change |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for i in rows[:PREVIEW_ROWS]:
        first = i.changes[0].path if i.changes and i.kind == "changed" else ""  # added/missing: everything
        lines.append(
            f"| {i.kind} | {i.confidence} | {'yes' if i.accepted else 'no'} | {_cell(i.policy_type)} | "
            f"{_cell(i.display_name or i.external_id)} | {_cell(first)} |"
        )
    if len(rows) > PREVIEW_ROWS:
        lines.append(f"\n… and {len(rows) - PREVIEW_ROWS} more (table `drift_items`).")
    return "\n".join(lines)
