"""Accepting and revoking deviations (`drift accept` / `drift revoke`).

An acceptance is taken against the drift as it is now (the default baseline): the named object must
show drift, and a path must cover at least one of its changes, so nobody accepts something they have
not seen. What is stored is the fingerprint of what was accepted (drift/accept.py).
"""

from __future__ import annotations

import psycopg

from ..errors import ErrorCode, TenantAtlasError
from ..store.drift_acceptances import (
    Acceptance,
    NewAcceptance,
    acceptance_tenant,
    record_acceptance,
    revoke_acceptance,
)
from ..store.scope import TenantScope, tenant_scope
from ..store.selections import Selection
from . import accept
from .compute import compute_drift


def accept_deviation(
    scope: TenantScope,
    selection: Selection,
    *,
    policy_type: str,
    external_id: str,
    path: str | None,
    note: str,
    accepted_by: str,
) -> Acceptance:
    """Accept the current drift of one object (or the changes at or under `path`)."""
    if not note.strip():
        raise ValueError("an acceptance needs a note saying why")
    report = compute_drift(scope, selection)
    item = next(
        (i for i in report.items if (i.policy_type, i.external_id) == (policy_type, external_id)), None
    )
    where = f"{policy_type} {external_id} in {selection.name!r}"
    if item is None:
        raise TenantAtlasError(
            ErrorCode.DRIFT_ITEM_NOT_FOUND,
            f"{where} shows no drift between snapshots {report.baseline_snapshot_id} and "
            f"{report.current_snapshot_id}: nothing to accept",
        )
    if path is not None and not accept.covered_changes(item, path):
        raise TenantAtlasError(
            ErrorCode.DRIFT_ITEM_NOT_FOUND,
            f"{where} has no change at or under path {path!r}; its paths: "
            + ", ".join(c.path for c in item.changes[:10]),
        )
    return record_acceptance(
        scope,
        NewAcceptance(
            selection_hash=selection.selection_hash,
            selection_name=selection.name,
            policy_type=policy_type,
            external_id=external_id,
            path=path,
            kind=item.kind,
            value_hash=accept.fingerprint(item, path),
            accepted_value=accept.accepted_value(item, path),
            note=note.strip(),
            accepted_by=accepted_by,
            snapshot_run_id=report.current_snapshot_id,
        ),
    )


def revoke(conn: psycopg.Connection, acceptance_id: int, revoked_by: str) -> Acceptance:
    """Revoke an active acceptance by id (any tenant); ACCEPTANCE_NOT_FOUND otherwise."""
    tenant_id = acceptance_tenant(conn, acceptance_id)
    revoked = None
    if tenant_id is not None:
        revoked = revoke_acceptance(tenant_scope(conn, tenant_id), acceptance_id, revoked_by)
    if revoked is None:
        raise TenantAtlasError(
            ErrorCode.ACCEPTANCE_NOT_FOUND,
            f"no active acceptance {acceptance_id} (unknown or already revoked)",
        )
    return revoked
