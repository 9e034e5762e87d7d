"""snapshot_objects: which version of each object a snapshot saw, with its display name.

`record_objects` is the write side: versions, memberships and the per-type counts of one batch go in
one transaction, so a snapshot's counts and its contents never disagree. The read side gives drift,
compare, dependencies and the UI the objects of a snapshot with their normal-form content.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ..snapshots.assignments import with_reference_names
from ..snapshots.capture import CapturedObject
from ..snapshots.references import ReferenceIndex
from . import snapshot_runs
from .object_versions import store_versions
from .scope import TenantScope
from .snapshot_references import read_references


@dataclass(frozen=True)
class BatchCounts:
    observed: int
    new_versions: int


def record_objects(
    scope: TenantScope, run_id: int, policy_type: str, objects: Sequence[CapturedObject], *,
    errors: int = 0, pages: int = 0,
) -> BatchCounts:
    """Store one batch (page) of captured objects of one type in a snapshot, with its counts, inside the
    caller's transaction: the caller commits, so a page and its counts become visible together.

    An object listed twice in one batch is recorded once (the first capture wins); across batches the
    caller passes each object once (the snapshot run de-duplicates ids across a type's pages)."""
    unique: dict[str, CapturedObject] = {}
    for obj in objects:
        unique.setdefault(obj.external_id, obj)
    batch = list(unique.values())
    conn = scope.conn
    new = 0
    if batch:
        ids, new = store_versions(scope, run_id, batch)
        conn.execute(
            """INSERT INTO snapshot_objects (snapshot_run_id, version_id, tenant_id, display_name)
               SELECT %s, v, %s, n FROM unnest(%s::bigint[], %s::text[]) AS m (v, n)""",
            (run_id, scope.tenant_id, [ids[(o.policy_type, o.external_id, o.content_hash)] for o in batch],
             [o.display_name for o in batch]),
        )
    conn.execute(
        snapshot_runs.BATCH_COUNTS_UPDATE,
        {"observed": len(batch), "new": new, "errors": errors, "pages": pages,
         "tenant_id": scope.tenant_id, "run_id": run_id, "policy_type": policy_type},
    )
    return BatchCounts(len(batch), new)


@dataclass(frozen=True)
class SnapshotObject:
    """One object as a snapshot saw it; `content` has its assignments named from the snapshot's
    references unless read with `names=False` (the stored, hashed form)."""

    policy_type: str
    external_id: str
    display_name: str | None
    version_id: int
    content_hash: str
    content: dict[str, Any] | None


_SELECT = """
SELECT v.policy_type, v.external_id, o.display_name, v.id AS version_id, v.content_hash,
       {content} AS content
FROM snapshot_objects o JOIN object_versions v ON v.id = o.version_id
WHERE o.tenant_id = %(t)s AND o.snapshot_run_id = %(s)s AND v.tenant_id = %(t)s
  AND (%(types)s::text[] IS NULL OR v.policy_type = ANY(%(types)s))
  AND (%(ext)s::text IS NULL OR v.external_id = %(ext)s)
ORDER BY v.policy_type, v.external_id"""


def _read(
    conn: psycopg.Connection,
    tenant_id: str,
    snapshot_id: int,
    types: Sequence[str] | None,
    external_id: str | None,
    with_content: bool,
    names: bool,
    parse: Callable[[str], Any] | None = None,
) -> list[SnapshotObject]:
    content = "NULL::jsonb" if not with_content else "v.content::text" if parse else "v.content"
    sql = _SELECT.format(content=content)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            sql,
            {
                "t": tenant_id,
                "s": snapshot_id,
                "types": list(types) if types is not None else None,
                "ext": external_id,
            },
        ).fetchall()
    if parse is not None and with_content:
        for row in rows:
            row["content"] = parse(row["content"])
    if with_content and names and rows:
        refs = ReferenceIndex(read_references(conn, tenant_id, snapshot_id))
        for row in rows:
            row["content"] = with_reference_names(row["content"], refs)
    return [SnapshotObject(**r) for r in rows]


def objects_of_snapshot(
    scope: TenantScope, snapshot_id: int, *, policy_types: Sequence[str] | None = None,
    with_content: bool = True, names: bool = True, parse: Callable[[str], Any] | None = None,
) -> list[SnapshotObject]:
    """Every object a snapshot saw (optionally of some types), ordered by type and id, with its
    normal-form content (assignments named from the snapshot's references unless `names=False`).

    `parse`: turns each document's JSON text into its content instead of the plain JSON parse — compare
    rewrites tenant-specific strings in the text it has to parse anyway (compare/canonical.py)."""
    return read_objects(
        scope.conn,
        scope.tenant_id,
        snapshot_id,
        policy_types=policy_types,
        with_content=with_content,
        names=names,
        parse=parse,
    )


def read_objects(
    conn: psycopg.Connection,
    tenant_id: str,
    snapshot_id: int,
    *,
    policy_types: Sequence[str] | None = None,
    with_content: bool = True,
    names: bool = True,
    parse: Callable[[str], Any] | None = None,
) -> list[SnapshotObject]:
    """`objects_of_snapshot` on a connection the caller has set up: a tenant scope's, or the UI's
    read-only analyst session (which may read every tenant, so the tenant filter is the caller's)."""
    return _read(conn, tenant_id, snapshot_id, policy_types, None, with_content, names, parse)


def object_in_snapshot(
    scope: TenantScope, snapshot_id: int, policy_type: str, external_id: str, *, names: bool = True
) -> SnapshotObject | None:
    """One object in one snapshot, or None when the snapshot did not see it."""
    found = _read(scope.conn, scope.tenant_id, snapshot_id, [policy_type], external_id, True, names)
    return found[0] if found else None


@dataclass(frozen=True)
class VersionPair:
    """One object whose version differs between two snapshots of a tenant (a side None: not in it)."""

    policy_type: str
    external_id: str
    baseline_display_name: str | None
    current_display_name: str | None
    baseline_content: dict[str, Any] | None
    current_content: dict[str, Any] | None
    current_hash: str | None


# The two snapshots' version lists joined on identity; only objects whose version differs come back,
# with their stored (id-only, hashed) content. Unchanged objects cost one index entry each on both
# sides and no content read: this is what keeps drift of a large, quiet tenant close to the bare join.
_PAIRS = """
WITH b AS (SELECT v.policy_type, v.external_id, o.version_id, o.display_name
           FROM snapshot_objects o JOIN object_versions v ON v.id = o.version_id
           WHERE o.tenant_id = %(t)s AND o.snapshot_run_id = %(b)s),
     c AS (SELECT v.policy_type, v.external_id, o.version_id, o.display_name
           FROM snapshot_objects o JOIN object_versions v ON v.id = o.version_id
           WHERE o.tenant_id = %(t)s AND o.snapshot_run_id = %(c)s)
SELECT coalesce(b.policy_type, c.policy_type) AS policy_type,
       coalesce(b.external_id, c.external_id) AS external_id,
       b.display_name AS baseline_display_name, c.display_name AS current_display_name,
       vb.content AS baseline_content, vc.content AS current_content, vc.content_hash AS current_hash
FROM b FULL JOIN c ON b.policy_type = c.policy_type AND b.external_id = c.external_id
LEFT JOIN object_versions vb ON vb.id = b.version_id
LEFT JOIN object_versions vc ON vc.id = c.version_id
WHERE b.version_id IS DISTINCT FROM c.version_id
ORDER BY 1, 2"""


def version_pairs(scope: TenantScope, baseline_id: int, current_id: int) -> list[VersionPair]:
    """Objects whose version differs between two snapshots of this tenant (drift's one read of
    content), with the stored id-only content; ordered by type and id."""
    with scope.conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_PAIRS, {"t": scope.tenant_id, "b": baseline_id, "c": current_id}).fetchall()
    return [VersionPair(**r) for r in rows]
