"""The tenant registry: which Entra tenants we inventory, under which short key."""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg
from psycopg.rows import class_row

from ..errors import ErrorCode, TenantAtlasError

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    key: str
    name: str
    enabled: bool


def validate_tenant_id(value: str) -> str:
    """The GUID in canonical lower case, or INVALID_TENANT_ID saying what a tenant id looks like."""
    candidate = value.strip().lower() if isinstance(value, str) else ""
    if not _GUID.match(candidate):
        raise TenantAtlasError(
            ErrorCode.INVALID_TENANT_ID,
            f"invalid tenant id {str(value)[:80]!r}: "
            "expected a GUID like 72f988bf-86f1-41af-91ab-2d7cd011db47",
        )
    return candidate


def validate_tenant_key(value: str) -> str:
    if not isinstance(value, str) or not _KEY.match(value):
        raise TenantAtlasError(
            ErrorCode.INVALID_TENANT_KEY,
            f"invalid tenant key {str(value)[:80]!r}: use 1-63 characters of a-z, 0-9 and '-', starting "
            "with a letter or digit",
        )
    return value


_COLUMNS = "tenant_id, key, display_name AS name, enabled"


def add_tenant(conn: psycopg.Connection, tenant_id: str, key: str, name: str, enabled: bool = True) -> Tenant:
    """Register a tenant or update the one with this id; a key taken by another tenant is an error."""
    tenant_id, key = validate_tenant_id(tenant_id), validate_tenant_key(key)
    owner = conn.execute("SELECT tenant_id FROM tenants WHERE key = %s", (key,)).fetchone()
    if owner and owner[0] != tenant_id:
        raise TenantAtlasError(
            ErrorCode.INVALID_TENANT_KEY, f"tenant key {key!r} belongs to tenant {owner[0]}"
        )
    with conn.cursor(row_factory=class_row(Tenant)) as cur:
        cur.execute(
            f"""INSERT INTO tenants (tenant_id, key, display_name, enabled) VALUES (%s, %s, %s, %s)
                ON CONFLICT (tenant_id) DO UPDATE SET key = EXCLUDED.key,
                    display_name = EXCLUDED.display_name, enabled = EXCLUDED.enabled, updated_at = now()
                RETURNING {_COLUMNS}""",
            (tenant_id, key, name.replace("\x00", "") or key, enabled),
        )
        tenant = cur.fetchone()
    conn.commit()
    assert tenant is not None
    return tenant


def list_tenants(conn: psycopg.Connection, enabled_only: bool = False) -> list[Tenant]:
    with conn.cursor(row_factory=class_row(Tenant)) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM tenants WHERE enabled OR NOT %s ORDER BY key", (enabled_only,))
        return cur.fetchall()


def get_tenant(conn: psycopg.Connection, key_or_id: str) -> Tenant:
    """A tenant by key or GUID; UNKNOWN_TENANT names the keys that do exist."""
    with conn.cursor(row_factory=class_row(Tenant)) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM tenants WHERE key = %s OR tenant_id = %s", (key_or_id, key_or_id)
        )
        tenant = cur.fetchone()
    if tenant is None:
        known = ", ".join(t.key for t in list_tenants(conn)) or "none registered"
        raise TenantAtlasError(ErrorCode.UNKNOWN_TENANT, f"unknown tenant {key_or_id[:80]!r}; known: {known}")
    return tenant


def set_enabled(conn: psycopg.Connection, key: str, enabled: bool) -> Tenant:
    tenant = get_tenant(conn, key)
    conn.execute(
        "UPDATE tenants SET enabled = %s, updated_at = now() WHERE tenant_id = %s",
        (enabled, tenant.tenant_id),
    )
    conn.commit()
    return Tenant(tenant.tenant_id, tenant.key, tenant.name, enabled)
