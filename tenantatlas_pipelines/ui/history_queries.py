"""The UI's reads over snapshots and drift (sql/065, sql/080): SELECTs only, bounded by indexes.

Kept apart from queries.py (inventory, runs, missing) because these tables belong to the snapshot and
drift capabilities; the diff between two versions is not computed here but by the snapshots package's
one diff (inventory_pages.py calls it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from ..snapshots import ReferenceIndex
from ..store.drift_items import DriftCountColumns, PublishedItem
from ..store.object_versions import read_versions
from ..store.snapshot_references import read_references
from ..store.snapshot_runs import LEDGER as SNAPSHOT_LEDGER
from ..store.snapshot_runs import latest_snapshot_id
from .queries import Page, Timed, ledger_run, ledger_run_types, ledger_runs_page


@dataclass(frozen=True)
class SnapshotRow(Timed):
    id: int
    tenant_id: str
    tenant_key: str
    selection_name: str | None
    status: str
    error_codes: list[str]
    error_message: str | None
    started_at: datetime
    finished_at: datetime | None
    objects: int
    new_versions: int
    items_errors: int
    references_total: int
    references_unresolved: int
    requests: int
    throttled: int
    failed_types: list[str]


@dataclass(frozen=True)
class SnapshotTypeRow(Timed):
    policy_type: str
    status: str
    error_code: str | None
    error_message: str | None
    objects: int
    new_versions: int
    items_errors: int
    references_total: int
    references_unresolved: int
    pages: int
    requests: int
    throttled: int
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class VersionRow:
    version_id: int
    content_hash: str
    captured_at: datetime
    first_snapshot_id: int
    snapshots: int
    last_snapshot_id: int | None


@dataclass(frozen=True)
class DriftSummaryRow(DriftCountColumns):
    tenant_key: str
    tenant_name: str
    selection_name: str
    status: str
    no_drift_reason: str | None
    baseline_snapshot_id: int | None
    current_snapshot_id: int | None
    baseline_kind: str | None
    pinned_snapshot_id: int | None
    computed_at: datetime


@dataclass(frozen=True)
class DriftItemRow(PublishedItem):
    """A published item (drift_items, through the analyst view) with its partition and whether it alerts."""

    tenant_key: str
    selection_name: str
    alerting: bool
    baseline_snapshot_id: int
    current_snapshot_id: int
    baseline_kind: str
    computed_at: datetime


@dataclass(frozen=True)
class AcceptanceRow:
    acceptance_id: int
    selection_name: str
    policy_type: str
    external_id: str
    path: str | None
    kind: str
    accepted_value: Any
    note: str
    accepted_by: str
    accepted_at: datetime


# --- snapshots -----------------------------------------------------------------------------------------


def snapshots_page(
    conn: psycopg.Connection, tenant_id: str, *, size: int, before_id: int | None = None
) -> Page[SnapshotRow]:
    """A tenant's snapshots newest first, keyset-paged on the id."""
    return ledger_runs_page(
        conn, SNAPSHOT_LEDGER, SnapshotRow, tenant_id=tenant_id, size=size, before_id=before_id
    )


def get_snapshot(conn: psycopg.Connection, snapshot_id: int) -> SnapshotRow | None:
    return ledger_run(conn, SNAPSHOT_LEDGER, SnapshotRow, snapshot_id)


def snapshot_types(conn: psycopg.Connection, snapshot_id: int) -> list[SnapshotTypeRow]:
    """Per-type outcomes of a snapshot, failed types first."""
    return ledger_run_types(conn, SNAPSHOT_LEDGER, SnapshotTypeRow, snapshot_id)


def object_versions(
    conn: psycopg.Connection, tenant_id: str, policy_type: str, external_id: str
) -> list[VersionRow]:
    """Every stored version of one object, oldest first, with how many snapshots saw it."""
    return [
        VersionRow(
            version_id=v.version_id,
            content_hash=v.content_hash,
            captured_at=v.first_captured_at,
            first_snapshot_id=v.first_snapshot_id,
            snapshots=len(v.snapshot_ids),
            last_snapshot_id=max(v.snapshot_ids, default=None),
        )
        for v in read_versions(conn, tenant_id, policy_type, external_id)
    ]


def version_contents(
    conn: psycopg.Connection, tenant_id: str, policy_type: str, external_id: str, version_ids: list[int]
) -> dict[int, dict[str, Any]]:
    """The normal-form content of some versions of one object (only that object's versions)."""
    rows = conn.execute(
        """SELECT id, content FROM object_versions
           WHERE tenant_id = %s AND policy_type = %s AND external_id = %s AND id = ANY(%s)""",
        (tenant_id, policy_type, external_id, version_ids),
    ).fetchall()
    return {int(r[0]): r[1] for r in rows}


# --- drift ---------------------------------------------------------------------------------------------


def drift_summaries(conn: psycopg.Connection, tenant_id: str | None = None) -> list[DriftSummaryRow]:
    """Published drift per (tenant, selection), alerting partitions first."""
    with conn.cursor(row_factory=class_row(DriftSummaryRow)) as cur:
        return cur.execute(
            """SELECT tenant_key, tenant_name, selection_name, status, no_drift_reason, baseline_snapshot_id,
                      current_snapshot_id, baseline_kind, pinned_snapshot_id, items, changed, added, missing,
                      high, low, accepted, unaccepted_high, computed_at
               FROM analyst_drift_summary
               WHERE %(t)s::text IS NULL OR tenant_id = %(t)s
               ORDER BY unaccepted_high DESC, tenant_key, selection_name""",
            {"t": tenant_id},
        ).fetchall()


def unaccepted_drift_by_tenant(conn: psycopg.Connection) -> dict[str, int]:
    """Unaccepted high-confidence drift items per tenant id, over its published partitions."""
    return {
        r[0]: int(r[1])
        for r in conn.execute("SELECT tenant_id, sum(unaccepted_high) FROM drift_results GROUP BY tenant_id")
    }


_DRIFT_ITEM_COLUMNS = """tenant_key, selection_name, policy_type, external_id, display_name, kind,
    confidence, reason, accepted, alerting, changes, baseline_snapshot_id, current_snapshot_id, baseline_kind,
    computed_at"""


def drift_items(
    conn: psycopg.Connection, tenant_id: str, selection: str | None = None, limit: int = 500
) -> list[DriftItemRow]:
    """A tenant's published drift items: alerting first, then low confidence, then accepted."""
    with conn.cursor(row_factory=class_row(DriftItemRow)) as cur:
        return cur.execute(
            f"""SELECT {_DRIFT_ITEM_COLUMNS} FROM analyst_drift_items
                WHERE tenant_id = %(t)s AND (%(s)s::text IS NULL OR selection_name = %(s)s)
                ORDER BY accepted, NOT alerting, selection_name, kind, coalesce(display_name, ''), external_id
                LIMIT %(limit)s""",
            {"t": tenant_id, "s": selection, "limit": limit},
        ).fetchall()


def object_drift(
    conn: psycopg.Connection, tenant_id: str, policy_type: str, external_id: str
) -> list[DriftItemRow]:
    with conn.cursor(row_factory=class_row(DriftItemRow)) as cur:
        return cur.execute(
            f"""SELECT {_DRIFT_ITEM_COLUMNS} FROM analyst_drift_items
                WHERE tenant_id = %s AND policy_type = %s AND external_id = %s ORDER BY selection_name""",
            (tenant_id, policy_type, external_id),
        ).fetchall()


def active_acceptances(conn: psycopg.Connection, tenant_id: str) -> list[AcceptanceRow]:
    """Accepted deviations in force for a tenant, newest first (who, when, why)."""
    with conn.cursor(row_factory=class_row(AcceptanceRow)) as cur:
        return cur.execute(
            """SELECT acceptance_id, selection_name, policy_type, external_id, path, kind, accepted_value,
                      note, accepted_by, accepted_at
               FROM analyst_drift_acceptances WHERE tenant_id = %s AND active
               ORDER BY accepted_at DESC, acceptance_id DESC""",
            (tenant_id,),
        ).fetchall()


# --- dependencies ----------------------------------------------------------------------------------------

TARGET_KINDS = ("group", "assignment_filter", "scope_tag")


@dataclass(frozen=True)
class EdgeRow:
    selection_name: str | None
    snapshot_id: int
    policy_type: str
    external_id: str
    display_name: str | None
    relation: str
    target_type: str
    target_id: str
    target_name: str | None
    group_type: str | None
    filter_mode: str | None
    intent: str | None
    via_target_type: str | None
    via_target_id: str | None
    resolved: bool | None


@dataclass(frozen=True)
class UsageRow:
    target_id: str
    name: str | None
    resolved: bool | None
    objects: int
    detail: str  # includes / excludes, filter modes, or filters counted apart
    policy_types: list[str]


_EDGE_SELECT = """SELECT selection_name, snapshot_id, policy_type, external_id, display_name, relation,
    target_type, target_id, target_name, group_type, filter_mode, intent, via_target_type, via_target_id,
    resolved
FROM analyst_dependency_edges WHERE tenant_id = %(t)s AND {where}
ORDER BY policy_type, coalesce(display_name, ''), external_id, relation, target_type, target_id"""


def _edges(conn: psycopg.Connection, where: str, params: dict[str, Any]) -> list[EdgeRow]:
    with conn.cursor(row_factory=class_row(EdgeRow)) as cur:
        return cur.execute(_EDGE_SELECT.format(where=where), params).fetchall()


def edges_of_object(
    conn: psycopg.Connection, tenant_id: str, policy_type: str, external_id: str
) -> list[EdgeRow]:
    """What one object uses (index on tenant, policy type, external id)."""
    return _edges(
        conn,
        "policy_type = %(pt)s AND external_id = %(ei)s",
        {"t": tenant_id, "pt": policy_type, "ei": external_id},
    )


def edges_using(conn: psycopg.Connection, tenant_id: str, target_type: str, target_id: str) -> list[EdgeRow]:
    """What uses one target (index on tenant, target type, target id)."""
    return _edges(
        conn,
        "target_type = %(tt)s AND target_id = %(ti)s",
        {"t": tenant_id, "tt": target_type, "ti": target_id},
    )


def dangling_edges(conn: psycopg.Connection, tenant_id: str) -> list[EdgeRow]:
    """Edges whose target Graph no longer returned (partial index on unresolved edges)."""
    return _edges(conn, "resolved = false", {"t": tenant_id})


def target_candidates(
    conn: psycopg.Connection, tenant_id: str, target_type: str, value: str
) -> list[tuple[str, str | None]]:
    """(id, name) of the targets whose id is `value` or whose name is `value` (case-insensitive); two
    indexed lookups (an OR of the two would scan)."""
    rows = conn.execute(
        """SELECT target_id, target_name FROM dependency_edges_current
           WHERE tenant_id = %(t)s AND target_type = %(tt)s AND target_id = %(v)s
           UNION
           SELECT target_id, target_name FROM dependency_edges_current
           WHERE tenant_id = %(t)s AND target_type = %(tt)s AND target_name_key = %(name)s""",
        {"t": tenant_id, "tt": target_type, "v": value, "name": value.strip().lower()},
    ).fetchall()
    return [(str(i), n) for i, n in rows]


_USAGE = {
    "group": """SELECT group_id, group_name, resolved, objects,
                       includes || ' include · ' || excludes || ' exclude', policy_types
                FROM analyst_group_usage WHERE tenant_id = %s ORDER BY objects DESC, group_name""",
    "assignment_filter": """SELECT filter_id, filter_name, resolved, objects,
                       include_mode || ' include mode · ' || exclude_mode || ' exclude mode', policy_types
                FROM analyst_filter_usage WHERE tenant_id = %s ORDER BY objects DESC, filter_name""",
    "scope_tag": """SELECT scope_tag_id, scope_tag_name, resolved, objects,
                       assignment_filters || ' assignment filters', policy_types
                FROM analyst_scope_tag_usage WHERE tenant_id = %s ORDER BY objects DESC, scope_tag_name""",
}


def usage(conn: psycopg.Connection, tenant_id: str, kind: str, limit: int = 200) -> list[UsageRow]:
    """Targets of one kind with how many objects use them, most used first."""
    return [
        UsageRow(str(r[0]), r[1], r[2], int(r[3]), r[4], list(r[5]))
        for r in conn.execute(_USAGE[kind], (tenant_id,))
    ][:limit]


def snapshot_references(conn: psycopg.Connection, tenant_id: str, snapshot_id: int) -> ReferenceIndex:
    """The groups, filters and scope tags one snapshot resolved (to name a version's assignments)."""
    return ReferenceIndex(read_references(conn, tenant_id, snapshot_id))


# --- compare -----------------------------------------------------------------------------------------------


def latest_succeeded_snapshot_id(conn: psycopg.Connection, tenant_id: str, selection_hash: str) -> int | None:
    """The tenant's latest succeeded snapshot of a selection lineage (snapshot_runs_lineage index)."""
    return latest_snapshot_id(conn, tenant_id, selection_hash)


@dataclass(frozen=True)
class AlignmentRow:
    tenant_id: str
    score: float
    golden_key: str
    selection_name: str


def alignment_by_tenant(conn: psycopg.Connection) -> dict[str, AlignmentRow]:
    """Each tenant's latest alignment to the golden tenant (fleet_alignment: one row per tenant)."""
    with conn.cursor(row_factory=class_row(AlignmentRow)) as cur:
        return {
            r.tenant_id: r
            for r in cur.execute(
                """SELECT a.tenant_id, a.score, g.key AS golden_key, a.selection_name
                   FROM fleet_alignment a JOIN tenants g ON g.tenant_id = a.golden_tenant_id"""
            )
        }
