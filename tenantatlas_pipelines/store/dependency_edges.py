"""dependency_edges / dependency_partitions: the dependency graph of each (tenant, selection) partition.

The write side replaces a partition's edges whole in one transaction (a reader sees the old graph or
the new one, never half). The read side answers both directions through the indexes of sql/100 and the
`dependency_edges_current` view (an object seen by several selections answers from its newest
snapshot): what uses a target (by id or name), what an object uses, what dangles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from ..dependencies.edges import Edge, SnapshotEdges
from .scope import TenantScope

# Columns written per edge, in Edge's field order after the partition's own columns.
_EDGE_COLUMNS = ("policy_type", "external_id", "display_name", "relation", "target_type", "target_id",
                 "target_name", "group_type", "filter_mode", "intent", "via_target_type", "via_target_id",
                 "resolved")
_ARRAY_TYPES = ["text"] * 12 + ["boolean"]
# What a read returns per edge (the CLI's JSON fields are these, in this order).
EDGE_FIELDS = (*_EDGE_COLUMNS, "snapshot_id", "selection_name")


@dataclass(frozen=True)
class PartitionHeader:
    """What a partition's published graph came from, and its counts."""

    tenant_id: str
    selection_hash: str
    selection_name: str | None
    snapshot_run_id: int
    snapshot_status: str
    objects: int
    edges: int
    dangling: int
    unverified: int
    unknown_targets: int
    derived_at: datetime
    dagster_run_id: str | None


def replace_partition(
    scope: TenantScope, *, selection_hash: str, selection_name: str | None, snapshot_id: int,
    snapshot_status: str, derived: SnapshotEdges, dagster_run_id: str | None = None,
) -> PartitionHeader:
    """Publish a partition's edges, replacing what it had, in one transaction (committed here)."""
    conn = scope.conn
    t = scope.tenant_id
    conn.commit()  # the replacement is its own transaction, whatever the caller had open
    try:
        conn.execute(
            """INSERT INTO dependency_partitions (tenant_id, selection_hash, selection_name, snapshot_run_id,
                   snapshot_status, objects, edges, dangling, unverified, unknown_targets, dagster_run_id)
               VALUES (%(t)s, %(h)s, %(n)s, %(s)s, %(st)s, %(o)s, %(e)s, %(d)s, %(u)s, %(k)s, %(r)s)
               ON CONFLICT (tenant_id, selection_hash) DO UPDATE SET
                   selection_name = EXCLUDED.selection_name, snapshot_run_id = EXCLUDED.snapshot_run_id,
                   snapshot_status = EXCLUDED.snapshot_status, objects = EXCLUDED.objects,
                   edges = EXCLUDED.edges, dangling = EXCLUDED.dangling, unverified = EXCLUDED.unverified,
                   unknown_targets = EXCLUDED.unknown_targets, derived_at = now(),
                   dagster_run_id = EXCLUDED.dagster_run_id""",
            {"t": t, "h": selection_hash, "n": selection_name, "s": snapshot_id, "st": snapshot_status,
             "o": derived.objects, "e": len(derived.edges), "d": derived.dangling, "u": derived.unverified,
             "k": derived.unknown_targets, "r": dagster_run_id},
        )
        conn.execute("DELETE FROM dependency_edges WHERE tenant_id = %s AND selection_hash = %s",
                     (t, selection_hash))
        insert_edges(scope, selection_hash, snapshot_id, derived.edges)
    except BaseException:
        conn.rollback()  # the published graph stays as it was
        raise
    conn.commit()
    header = partition_header(scope, selection_hash)
    assert header is not None
    return header


def insert_edges(
    scope: TenantScope, selection_hash: str, snapshot_id: int, edges: Sequence[Edge], *,
    batch: int = 50_000,
) -> None:
    """Append edges to a partition inside the caller's transaction (replace_partition; benchmarks)."""
    casts = ", ".join(f"%s::{t}[]" for t in _ARRAY_TYPES)
    sql = (f"INSERT INTO dependency_edges (tenant_id, selection_hash, snapshot_run_id, "
           f"{', '.join(_EDGE_COLUMNS)}) SELECT %s, %s, %s, * FROM unnest({casts})")
    for start in range(0, len(edges), batch):
        chunk = edges[start : start + batch]
        columns: list[list[Any]] = [
            [None if (v := getattr(e, c)) is None else (v if isinstance(v, bool) else str(v)) for e in chunk]
            for c in _EDGE_COLUMNS
        ]
        scope.conn.execute(sql, [scope.tenant_id, selection_hash, snapshot_id, *columns])


def partition_header(scope: TenantScope, selection_hash: str) -> PartitionHeader | None:
    """The published partition's header, or None when it was never derived."""
    with scope.conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT * FROM dependency_partitions WHERE tenant_id = %s AND selection_hash = %s",
            (scope.tenant_id, selection_hash),
        ).fetchone()
    return PartitionHeader(**row) if row else None


def list_partitions(scope: TenantScope) -> list[PartitionHeader]:
    """The tenant's published partitions (the CLI says which snapshots its answer comes from)."""
    with scope.conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT * FROM dependency_partitions WHERE tenant_id = %s ORDER BY selection_name",
            (scope.tenant_id,),
        ).fetchall()
    return [PartitionHeader(**r) for r in rows]


_SELECT = f"""SELECT {', '.join(_EDGE_COLUMNS)}, snapshot_run_id AS snapshot_id, selection_name
FROM dependency_edges_current WHERE tenant_id = %(t)s AND {{where}}
ORDER BY policy_type, external_id, relation, target_type, target_id, via_target_type NULLS FIRST"""


def _edges(scope: TenantScope, where: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with scope.conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_SELECT.format(where=where), {"t": scope.tenant_id, **params}).fetchall()


def edges_using(scope: TenantScope, target_type: str, target_id: str) -> list[dict[str, Any]]:
    """Current edges to one target (index on tenant, target type, target id)."""
    return _edges(scope, "target_type = %(tt)s AND target_id = %(ti)s", {"tt": target_type, "ti": target_id})


def target_candidates(scope: TenantScope, target_type: str, value: str) -> list[tuple[str, str | None]]:
    """(id, name) of the targets whose id is `value` or whose name is `value` (case-insensitive),
    from the tenant's current edges; both lookups indexed."""
    # Two lookups, not one OR: each uses its own index (an OR of the two would scan). The name key is
    # PostgreSQL's lower(); Python's lower() agrees with it on the names people type.
    rows = scope.conn.execute(
        """SELECT target_id, target_name FROM dependency_edges_current
           WHERE tenant_id = %(t)s AND target_type = %(tt)s AND target_id = %(v)s
           UNION
           SELECT target_id, target_name FROM dependency_edges_current
           WHERE tenant_id = %(t)s AND target_type = %(tt)s AND target_name_key = %(name)s""",
        {"t": scope.tenant_id, "tt": target_type, "v": value, "name": value.strip().lower()},
    ).fetchall()
    return [(str(i), n) for i, n in rows]


def edges_of_object(scope: TenantScope, policy_type: str, external_id: str) -> list[dict[str, Any]]:
    """What one object uses (index on tenant, policy type, external id)."""
    return _edges(scope, "policy_type = %(pt)s AND external_id = %(ei)s",
                  {"pt": policy_type, "ei": external_id})


def dangling_edges(scope: TenantScope) -> list[dict[str, Any]]:
    """The tenant's current edges whose target Graph no longer returned (partial index)."""
    return _edges(scope, "resolved = false", {})


def partition_dangling_edges(scope: TenantScope, selection_hash: str) -> list[dict[str, Any]]:
    """One published partition's own dangling edges (what its asset check reports)."""
    sql = _SELECT.replace("dependency_edges_current", "dependency_edges JOIN dependency_partitions "
                          "USING (tenant_id, selection_hash, snapshot_run_id)")
    with scope.conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql.format(where="resolved = false AND selection_hash = %(h)s"),
                           {"t": scope.tenant_id, "h": selection_hash}).fetchall()


def newer_snapshots(scope: TenantScope) -> list[tuple[str | None, int, int]]:
    """(selection name, published snapshot, newer usable snapshot) for partitions whose graph is behind
    their lineage's latest succeeded/partial snapshot: the CLI warns instead of silently answering
    from an older snapshot."""
    rows = scope.conn.execute(
        """SELECT p.selection_name, p.snapshot_run_id, r.id FROM dependency_partitions p
           JOIN LATERAL (SELECT id FROM snapshot_runs s
                         WHERE s.tenant_id = p.tenant_id AND s.selection_hash = p.selection_hash
                           AND s.status IN ('succeeded', 'partial')
                         ORDER BY s.started_at DESC, s.id DESC LIMIT 1) r ON true
           WHERE p.tenant_id = %s AND r.id <> p.snapshot_run_id""",
        (scope.tenant_id,),
    ).fetchall()
    return [(n, int(s), int(r)) for n, s, r in rows]


def assigned_group(scope: TenantScope) -> tuple[str, str | None] | None:
    """(id, name) of a resolved group some object includes, chosen stably (the demo removes it)."""
    row = scope.conn.execute(
        """SELECT target_id, target_name FROM dependency_edges_current
           WHERE tenant_id = %s AND target_type = 'group' AND relation = 'include' AND resolved
           ORDER BY target_id LIMIT 1""",
        (scope.tenant_id,),
    ).fetchone()
    return (str(row[0]), row[1]) if row else None
