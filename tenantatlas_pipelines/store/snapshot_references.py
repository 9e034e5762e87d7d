"""snapshot_references: the groups, assignment filters and scope tags a snapshot resolved, once each."""

from __future__ import annotations

from collections.abc import Iterable

from ..snapshots.references import GroupType, Reference, RefKind
from .scope import TenantScope


def record_references(scope: TenantScope, run_id: int, references: Iterable[Reference]) -> int:
    """Store a snapshot's resolved references (inside the caller's transaction); returns how many."""
    rows = [
        (run_id, scope.tenant_id, str(r.kind), r.ref_id, r.name if r.resolved else None,
         str(r.group_type) if r.group_type else None, r.resolved)
        for r in {(r.kind, r.ref_id): r for r in references}.values()
    ]
    with scope.conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO snapshot_references (snapshot_run_id, tenant_id, ref_kind, ref_id, name,
                   group_type, resolved) VALUES (%s, %s, %s, %s, %s, %s, %s)""",
            rows,
        )
    return len(rows)


def references_of_snapshot(
    scope: TenantScope, snapshot_id: int, kind: RefKind | None = None
) -> list[Reference]:
    """The references a snapshot resolved (optionally of one kind), ordered by kind and id."""
    rows = scope.conn.execute(
        """SELECT ref_kind, ref_id, name, group_type, resolved FROM snapshot_references
           WHERE tenant_id = %s AND snapshot_run_id = %s AND (%s::text IS NULL OR ref_kind = %s)
           ORDER BY ref_kind, ref_id""",
        (scope.tenant_id, snapshot_id, kind and str(kind), kind and str(kind)),
    ).fetchall()
    return [
        Reference(RefKind(k), i, n, GroupType(g) if g else None, bool(r)) for k, i, n, g, r in rows
    ]
