"""The one door to tenant-scoped data: every inventory and ledger function takes a TenantScope.

A scope can only be built for a registered tenant, and every statement behind the door filters on it.
Building one also puts the connection under PostgreSQL row-level security (sql/040): the session takes
the restricted role `tenantatlas_pipeline` with `tenantatlas.tenant_id` set, so even a query that forgot
its tenant filter sees and writes only this tenant's rows. The settings are session-level and committed
at once, so a later ROLLBACK cannot undo them. A connection serves one tenant at a time: using a scope
of another tenant on it switches the session (committing the open transaction first).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import psycopg

from ..errors import ErrorCode, TenantAtlasError
from .tenants import validate_tenant_id

PIPELINE_ROLE = "tenantatlas_pipeline"
ANALYST_ROLE = "tenantatlas_analyst"
TENANT_SETTING = "tenantatlas.tenant_id"

# Which tenant each connection's session is bound to (weak: closed connections drop out).
_bound: weakref.WeakKeyDictionary[psycopg.Connection, str] = weakref.WeakKeyDictionary()


def _bind(conn: psycopg.Connection, tenant_id: str) -> None:
    conn.commit()
    conn.execute("SELECT set_config(%s, %s, false)", (TENANT_SETTING, tenant_id))
    conn.execute(f"SET ROLE {PIPELINE_ROLE}")
    conn.commit()
    _bound[conn] = tenant_id


@dataclass(frozen=True)
class TenantScope:
    """A connection bound to one tenant; `conn` re-binds it if another scope used it meanwhile."""

    _conn: psycopg.Connection = field(repr=False)
    tenant_id: str

    @property
    def conn(self) -> psycopg.Connection:
        if _bound.get(self._conn) != self.tenant_id:
            _bind(self._conn, self.tenant_id)
        return self._conn


def tenant_scope(conn: psycopg.Connection, tenant_id: str) -> TenantScope:
    """A scope for a registered tenant; INVALID_TENANT_ID / UNKNOWN_TENANT otherwise."""
    tenant_id = validate_tenant_id(tenant_id)
    if conn.execute("SELECT 1 FROM tenants WHERE tenant_id = %s", (tenant_id,)).fetchone() is None:
        raise TenantAtlasError(ErrorCode.UNKNOWN_TENANT, f"tenant {tenant_id} is not registered")
    _bind(conn, tenant_id)
    return TenantScope(conn, tenant_id)


def release(conn: psycopg.Connection) -> None:
    """Return a connection to its login role with no tenant bound (for fleet-wide work after scoping)."""
    conn.commit()
    conn.execute("RESET ROLE")
    conn.execute("SELECT set_config(%s, '', false)", (TENANT_SETTING,))
    conn.commit()
    _bound.pop(conn, None)
