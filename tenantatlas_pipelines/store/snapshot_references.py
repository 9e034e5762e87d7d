"""snapshot_references: the groups, assignment filters and scope tags a snapshot resolved, once each."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from ..snapshots.references import GroupType, Reference, RefKind
from .scope import TenantScope
from .snapshot_runs import REFERENCE_COUNTS_UPDATE


def record_references(
    scope: TenantScope, run_id: int, policy_type: str, references: Iterable[Reference]
) -> tuple[int, int]:
    """Store references a snapshot resolved while capturing `policy_type`, and count them on that type,
    inside the caller's transaction (the caller commits). A reference another type of the run already
    recorded is not stored or counted again. Returns (recorded, of which unresolved)."""
    rows = [
        (run_id, scope.tenant_id, str(r.kind), r.ref_id, r.name if r.resolved else None,
         str(r.group_type) if r.group_type else None, r.resolved)
        for r in {(r.kind, r.ref_id): r for r in references}.values()
    ]
    conn = scope.conn
    inserted = conn.execute(
        """INSERT INTO snapshot_references (snapshot_run_id, tenant_id, ref_kind, ref_id, name,
               group_type, resolved)
           SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[],
                                %s::text[], %s::boolean[])
           ON CONFLICT DO NOTHING RETURNING resolved""",
        [list(col) for col in zip(*rows, strict=True)] if rows else [[]] * 7,
    ).fetchall()
    total, unresolved = len(inserted), sum(not r[0] for r in inserted)
    conn.execute(
        REFERENCE_COUNTS_UPDATE,
        {"total": total, "unresolved": unresolved, "tenant_id": scope.tenant_id, "run_id": run_id,
         "policy_type": policy_type},
    )
    return total, unresolved


def references_of_snapshot(
    scope: TenantScope, snapshot_id: int, kind: RefKind | None = None
) -> list[Reference]:
    """The references a snapshot resolved (optionally of one kind), ordered by kind and id."""
    return read_references(scope.conn, scope.tenant_id, snapshot_id, kind)


def read_references(
    conn: psycopg.Connection, tenant_id: str, snapshot_id: int, kind: RefKind | None = None
) -> list[Reference]:
    """`references_of_snapshot` on a connection the caller has set up: a tenant scope's, or the UI's
    read-only analyst session (which may read every tenant, so the tenant filter is the caller's)."""
    rows = conn.execute(
        """SELECT ref_kind, ref_id, name, group_type, resolved FROM snapshot_references
           WHERE tenant_id = %s AND snapshot_run_id = %s AND (%s::text IS NULL OR ref_kind = %s)
           ORDER BY ref_kind, ref_id""",
        (tenant_id, snapshot_id, kind and str(kind), kind and str(kind)),
    ).fetchall()
    return [
        Reference(RefKind(k), i, n, GroupType(g) if g else None, bool(r)) for k, i, n, g, r in rows
    ]
