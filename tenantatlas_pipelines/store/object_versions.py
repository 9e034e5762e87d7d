"""object_versions: one immutable row per distinct (tenant, policy type, object, content hash).

Inserting a batch is one statement: what exists already is looked up, what is new is inserted, and
nothing is ever updated (sql/065 refuses UPDATE and DELETE). An unchanged object therefore costs no
version row at all, only its snapshot membership (store/snapshot_objects.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ..snapshots.capture import CapturedObject
from .scope import TenantScope

VersionKey = tuple[str, str, str]  # (policy_type, external_id, content_hash)

# ON CONFLICT DO NOTHING + the lookup in one statement: rows inserted by `ins` are not visible to the
# lookup (same statement snapshot), so each key comes back exactly once, flagged new or not.
# The documents go as a binary array (%b): in the text format psycopg escapes every quote of every
# JSON document with a Python callback per match, which cost more than normalising the objects.
_UPSERT = """
WITH input AS (
    SELECT * FROM unnest(%(types)s::text[], %(ids)s::text[], %(hashes)s::text[], %(contents)b::text[])
        AS i (policy_type, external_id, content_hash, content)
), ins AS (
    INSERT INTO object_versions (tenant_id, policy_type, external_id, content_hash, content,
                                 first_snapshot_run_id)
    SELECT DISTINCT ON (policy_type, external_id, content_hash)
           %(tenant_id)s, policy_type, external_id, content_hash, content::jsonb, %(run_id)s
    FROM input
    ON CONFLICT (tenant_id, policy_type, external_id, content_hash) DO NOTHING
    RETURNING id, policy_type, external_id, content_hash
)
SELECT id, policy_type, external_id, content_hash, true AS new FROM ins
UNION ALL
SELECT v.id, v.policy_type, v.external_id, v.content_hash, false
FROM object_versions v JOIN (SELECT DISTINCT policy_type, external_id, content_hash FROM input) i
  USING (policy_type, external_id, content_hash)
WHERE v.tenant_id = %(tenant_id)s"""

_LOOKUP = """
SELECT v.id, v.policy_type, v.external_id, v.content_hash
FROM object_versions v
JOIN unnest(%(types)s::text[], %(ids)s::text[], %(hashes)s::text[])
     AS i (policy_type, external_id, content_hash)
  USING (policy_type, external_id, content_hash)
WHERE v.tenant_id = %(tenant_id)s"""


def store_versions(
    scope: TenantScope, run_id: int, objects: Sequence[CapturedObject]
) -> tuple[dict[VersionKey, int], int]:
    """Version ids for every object (inserting the new ones) and how many were new; inside the
    caller's transaction."""
    params: dict[str, Any] = {
        "tenant_id": scope.tenant_id,
        "run_id": run_id,
        "types": [o.policy_type for o in objects],
        "ids": [o.external_id for o in objects],
        "hashes": [o.content_hash for o in objects],
        "contents": [o.document_json for o in objects],
    }
    ids: dict[VersionKey, int] = {}
    new = 0
    for vid, ptype, ext, digest, is_new in scope.conn.execute(_UPSERT, params).fetchall():
        ids[(ptype, ext, digest)] = int(vid)
        new += bool(is_new)
    if len(ids) < len({(o.policy_type, o.external_id, o.content_hash) for o in objects}):
        # Another snapshot of this tenant inserted the same version concurrently; it is visible now.
        for vid, ptype, ext, digest in scope.conn.execute(_LOOKUP, params).fetchall():
            ids.setdefault((ptype, ext, digest), int(vid))
    return ids, new


@dataclass(frozen=True)
class ObjectVersion:
    """One stored version of an object and the snapshots that saw it."""

    version_id: int
    policy_type: str
    external_id: str
    content_hash: str
    first_captured_at: datetime
    first_snapshot_id: int
    snapshot_ids: tuple[int, ...]
    content: dict[str, Any] | None = None


def versions_of_object(
    scope: TenantScope, policy_type: str, external_id: str, *, with_content: bool = False
) -> list[ObjectVersion]:
    """Every version of one object, oldest first, with the ids of the snapshots that saw each."""
    return read_versions(scope.conn, scope.tenant_id, policy_type, external_id, with_content=with_content)


def read_versions(
    conn: psycopg.Connection,
    tenant_id: str,
    policy_type: str,
    external_id: str,
    *,
    with_content: bool = False,
) -> list[ObjectVersion]:
    """`versions_of_object` on a connection the caller has set up: a tenant scope's, or the UI's
    read-only analyst session (which may read every tenant, so the tenant filter is the caller's)."""
    content = "v.content" if with_content else "NULL::jsonb"
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""SELECT v.id AS version_id, v.policy_type, v.external_id, v.content_hash,
                       v.captured_at AS first_captured_at, v.first_snapshot_run_id AS first_snapshot_id,
                       coalesce(array_agg(o.snapshot_run_id ORDER BY o.snapshot_run_id)
                                FILTER (WHERE o.snapshot_run_id IS NOT NULL), '{{}}') AS snapshot_ids,
                       {content} AS content
                FROM object_versions v
                LEFT JOIN snapshot_objects o ON o.version_id = v.id AND o.tenant_id = v.tenant_id
                WHERE v.tenant_id = %s AND v.policy_type = %s AND v.external_id = %s
                GROUP BY v.id ORDER BY v.captured_at, v.id""",
            (tenant_id, policy_type, external_id),
        ).fetchall()
    return [ObjectVersion(**{**r, "snapshot_ids": tuple(r["snapshot_ids"])}) for r in rows]
