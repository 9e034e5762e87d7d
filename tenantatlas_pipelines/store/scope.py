"""The one door to tenant-scoped data: every inventory and ledger function takes a TenantScope.

A scope can only be built for a registered tenant, so no code path reads or writes inventory, runs or
missing items without naming the tenant, and every statement behind the door filters on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from ..errors import ErrorCode, TenantAtlasError
from .tenants import validate_tenant_id


@dataclass(frozen=True)
class TenantScope:
    conn: psycopg.Connection
    tenant_id: str


def tenant_scope(conn: psycopg.Connection, tenant_id: str) -> TenantScope:
    """A scope for a registered tenant; INVALID_TENANT_ID / UNKNOWN_TENANT otherwise."""
    tenant_id = validate_tenant_id(tenant_id)
    if conn.execute("SELECT 1 FROM tenants WHERE tenant_id = %s", (tenant_id,)).fetchone() is None:
        raise TenantAtlasError(ErrorCode.UNKNOWN_TENANT, f"tenant {tenant_id} is not registered")
    return TenantScope(conn, tenant_id)
