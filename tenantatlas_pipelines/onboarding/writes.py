"""Batch writes to the tenant registry, for callers that own the transaction.

store.tenants.add_tenant commits per tenant, which is right for `tenants add` and wrong for a batch:
an import of 300 tenants must land whole or not at all. These functions never commit; the caller
locks, plans, writes and commits once.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from ..store.tenants import Tenant


def lock_registry(conn: psycopg.Connection) -> None:
    """Serialise registry writers until the transaction ends (readers such as the sensors still read).

    A plan is made from the registry as read under this lock, so a key checked as free is still free
    when the plan is applied, whatever else (another import, `tenants add`, discovery) runs meanwhile.
    """
    conn.execute("LOCK TABLE tenants IN SHARE ROW EXCLUSIVE MODE")


def insert_tenants(conn: psycopg.Connection, tenants: Sequence[Tenant]) -> None:
    """Register new tenants (their ids and keys were checked as free under lock_registry)."""
    if tenants:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO tenants (tenant_id, key, display_name, enabled) VALUES (%s, %s, %s, %s)",
                [(t.tenant_id, t.key, t.name, t.enabled) for t in tenants],
            )


def update_tenants(conn: psycopg.Connection, tenants: Sequence[Tenant]) -> None:
    """Set key, name and enabled of registered tenants to the given values."""
    if tenants:
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE tenants SET key = %s, display_name = %s, enabled = %s, updated_at = now()"
                " WHERE tenant_id = %s",
                [(t.key, t.name, t.enabled, t.tenant_id) for t in tenants],
            )
