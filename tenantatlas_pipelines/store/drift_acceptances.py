"""drift_acceptances (sql/080): deviations an operator accepted, with who, when and a note.

Rows are never deleted: revoking records who and when, and accepting the same object and path again
supersedes (revokes) the earlier acceptance in the same transaction. What an acceptance covers and when
it still applies is decided in drift/accept.py; this module only stores and reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from .scope import TenantScope

_COLUMNS = """id, policy_type, external_id, path, kind, value_hash, accepted_value, note, accepted_by,
              accepted_at, snapshot_run_id, selection_name, revoked_by, revoked_at"""


@dataclass(frozen=True)
class Acceptance:
    """One accepted deviation as stored (`path` None: the whole item)."""

    id: int
    policy_type: str
    external_id: str
    path: str | None
    kind: str
    value_hash: str
    accepted_value: Any
    note: str
    accepted_by: str
    accepted_at: datetime
    snapshot_run_id: int
    selection_name: str
    revoked_by: str | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class NewAcceptance:
    """What `record_acceptance` stores (the fingerprint is computed by the caller)."""

    selection_hash: str
    selection_name: str
    policy_type: str
    external_id: str
    path: str | None
    kind: str
    value_hash: str
    accepted_value: Any
    note: str
    accepted_by: str
    snapshot_run_id: int


def record_acceptance(scope: TenantScope, new: NewAcceptance) -> Acceptance:
    """Store an acceptance, superseding an active one of the same object and path; committed."""
    conn = scope.conn
    with conn.transaction():
        conn.execute(
            """UPDATE drift_acceptances SET revoked_by = %s, revoked_at = now()
               WHERE tenant_id = %s AND selection_hash = %s AND policy_type = %s AND external_id = %s
                 AND coalesce(path, '') = coalesce(%s, '') AND revoked_at IS NULL""",
            (
                new.accepted_by,
                scope.tenant_id,
                new.selection_hash,
                new.policy_type,
                new.external_id,
                new.path,
            ),
        )
        with conn.cursor(row_factory=class_row(Acceptance)) as cur:
            row = cur.execute(
                f"""INSERT INTO drift_acceptances (tenant_id, selection_hash, selection_name, policy_type,
                        external_id, path, kind, value_hash, accepted_value, note, accepted_by,
                        snapshot_run_id)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                    RETURNING {_COLUMNS}""",
                (
                    scope.tenant_id,
                    new.selection_hash,
                    new.selection_name,
                    new.policy_type,
                    new.external_id,
                    new.path,
                    new.kind,
                    new.value_hash,
                    Jsonb(new.accepted_value),
                    new.note,
                    new.accepted_by,
                    new.snapshot_run_id,
                ),
            ).fetchone()
    conn.commit()
    assert row is not None
    return row


def active_acceptances(scope: TenantScope, selection_hash: str) -> list[Acceptance]:
    """The acceptances that apply to a selection lineage now (not revoked)."""
    with scope.conn.cursor(row_factory=class_row(Acceptance)) as cur:
        return cur.execute(
            f"""SELECT {_COLUMNS} FROM drift_acceptances
                WHERE tenant_id = %s AND selection_hash = %s AND revoked_at IS NULL ORDER BY id""",
            (scope.tenant_id, selection_hash),
        ).fetchall()


def list_acceptances(
    scope: TenantScope, selection_hash: str | None = None, *, include_revoked: bool = False
) -> list[Acceptance]:
    """This tenant's acceptances (optionally of one lineage), oldest first."""
    with scope.conn.cursor(row_factory=class_row(Acceptance)) as cur:
        return cur.execute(
            f"""SELECT {_COLUMNS} FROM drift_acceptances
                WHERE tenant_id = %s AND (%s::text IS NULL OR selection_hash = %s)
                  AND (%s OR revoked_at IS NULL)
                ORDER BY id""",
            (scope.tenant_id, selection_hash, selection_hash, include_revoked),
        ).fetchall()


def acceptance_tenant(conn: psycopg.Connection, acceptance_id: int) -> str | None:
    """Which tenant an acceptance belongs to (to build its scope), or None for an unknown id."""
    row = conn.execute("SELECT tenant_id FROM drift_acceptances WHERE id = %s", (acceptance_id,)).fetchone()
    return str(row[0]) if row else None


def revoke_acceptance(scope: TenantScope, acceptance_id: int, revoked_by: str) -> Acceptance | None:
    """Revoke an active acceptance (the row stays, with who and when); None if there is none. Committed."""
    with scope.conn.cursor(row_factory=class_row(Acceptance)) as cur:
        row = cur.execute(
            f"""UPDATE drift_acceptances SET revoked_by = %s, revoked_at = now()
                WHERE tenant_id = %s AND id = %s AND revoked_at IS NULL RETURNING {_COLUMNS}""",
            (revoked_by, scope.tenant_id, acceptance_id),
        ).fetchone()
    scope.conn.commit()
    return row
