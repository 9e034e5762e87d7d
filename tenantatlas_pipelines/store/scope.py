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


# Binding a session is one statement (set_config('role', ...) is SET ROLE): a run binds a connection per
# worker thread, and round trips, not work, are what binding costs. Selected from `tenants`, so an
# unregistered tenant id binds nothing and returns no row.
_BIND = f"""SELECT set_config('{TENANT_SETTING}', t.tenant_id::text, false),
                  set_config('role', '{PIPELINE_ROLE}', false)
           FROM tenants t WHERE t.tenant_id = %s"""
_RELEASE = f"SELECT set_config('role', 'none', false), set_config('{TENANT_SETTING}', '', false)"


def _bind(conn: psycopg.Connection, tenant_id: str) -> None:
    conn.commit()
    bound = conn.execute(_BIND, (tenant_id,)).fetchone() is not None
    conn.commit()
    if not bound:
        raise TenantAtlasError(ErrorCode.UNKNOWN_TENANT, f"tenant {tenant_id} is not registered")
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
    _bind(conn, tenant_id)
    return TenantScope(conn, tenant_id)


def release(conn: psycopg.Connection) -> None:
    """Return a connection to its login role with no tenant bound (for fleet-wide work after scoping)."""
    conn.commit()
    conn.execute(_RELEASE)
    conn.commit()
    _bound.pop(conn, None)
