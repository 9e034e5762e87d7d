"""The tenant registry: which Entra tenants we inventory, under which short key."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import psycopg
from psycopg.rows import class_row

from ..errors import ErrorCode, TenantAtlasError

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_GUID_DIGITS = re.compile(r"^[0-9a-f]{32}$")  # the same GUID without its hyphens
_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def is_guid_shaped(value: str) -> bool:
    """Whether `value` reads as a tenant id (with or without hyphens, any case).

    Keys never may: a key equal to another tenant's GUID made `tenants disable <key>` and sync pick the
    wrong tenant. With no GUID-shaped key, a GUID input always means a tenant id, a key input a key.
    """
    candidate = value.strip().lower()
    return bool(_GUID.match(candidate) or _GUID_DIGITS.match(candidate))


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
    """The key as given, or INVALID_TENANT_KEY: `[a-z0-9-]`, 1-63 characters, and not GUID-shaped."""
    if not isinstance(value, str) or not _KEY.match(value):
        raise TenantAtlasError(
            ErrorCode.INVALID_TENANT_KEY,
            f"invalid tenant key {str(value)[:80]!r}: use 1-63 characters of a-z, 0-9 and '-', starting "
            "with a letter or digit",
        )
    if is_guid_shaped(value):
        raise TenantAtlasError(
            ErrorCode.INVALID_TENANT_KEY,
            f"invalid tenant key {value!r}: a key must not look like a tenant id (GUID), or a lookup "
            "could not tell the two apart; use a short name such as 'contoso'",
        )
    return value


_COLUMNS = "tenant_id, key, display_name AS name, enabled"


TenantAction = Literal["added", "updated", "unchanged"]


@dataclass(frozen=True)
class TenantChange:
    """What registering did: `added`, `updated` (with field -> (old, new)) or `unchanged`."""

    action: TenantAction
    tenant: Tenant
    changes: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The tenant's fields plus `action` and `changes`, shaped like `tenants import --json`."""
        return {
            **asdict(self.tenant),
            "action": self.action,
            "changes": {f: {"old": old, "new": new} for f, (old, new) in self.changes.items()},
        }


def register_tenant(
    conn: psycopg.Connection,
    tenant_id: str,
    key: str,
    name: str,
    *,
    enabled: bool = True,
    rename_key: bool = False,
) -> TenantChange:
    """`tenants add`: register a new tenant (enabled unless told otherwise), or update a registered
    tenant's name. Why so little on re-adding: re-running an onboarding script must not re-enable a
    tenant someone disabled on purpose (that is `tenants enable`), and a new key moves the tenant's
    Dagster partition, so it happens only when asked for (`rename_key`) and is reported as a change.
    A key taken by another tenant is an error either way.
    """
    tenant_id, key = validate_tenant_id(tenant_id), validate_tenant_key(key)
    name = name.replace("\x00", "") or key
    # Serialise registry writers (as an import does) so the checks below still hold at the write.
    conn.execute("LOCK TABLE tenants IN SHARE ROW EXCLUSIVE MODE")
    try:
        change = _register(conn, tenant_id, key, name, enabled, rename_key)
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
    return change


def _register(
    conn: psycopg.Connection, tenant_id: str, key: str, name: str, enabled: bool, rename_key: bool
) -> TenantChange:
    owner = conn.execute("SELECT tenant_id FROM tenants WHERE key = %s", (key,)).fetchone()
    if owner and owner[0] != tenant_id:
        raise TenantAtlasError(
            ErrorCode.INVALID_TENANT_KEY, f"tenant key {key!r} belongs to tenant {owner[0]}"
        )
    with conn.cursor(row_factory=class_row(Tenant)) as cur:
        current = cur.execute(
            f"SELECT {_COLUMNS} FROM tenants WHERE tenant_id = %s", (tenant_id,)
        ).fetchone()
        if current is None:
            cur.execute(
                f"""INSERT INTO tenants (tenant_id, key, display_name, enabled) VALUES (%s, %s, %s, %s)
                    RETURNING {_COLUMNS}""",
                (tenant_id, key, name, enabled),
            )
            added = cur.fetchone()
            assert added is not None
            return TenantChange("added", added)
    if current.key != key and not rename_key:
        raise TenantAtlasError(
            ErrorCode.INVALID_TENANT_KEY,
            f"tenant {tenant_id} is registered with key {current.key!r}; changing it to {key!r} moves its "
            "Dagster partition, so ask for it explicitly (`tenants add ... --rename-key`)",
        )
    tenant = Tenant(tenant_id, key, name, current.enabled)
    changes = {
        f: (getattr(current, f), getattr(tenant, f))
        for f in ("key", "name")
        if getattr(current, f) != getattr(tenant, f)
    }
    if not changes:
        return TenantChange("unchanged", current)
    conn.execute(
        "UPDATE tenants SET key = %s, display_name = %s, updated_at = now() WHERE tenant_id = %s",
        (key, name, tenant_id),
    )
    return TenantChange("updated", tenant, changes)


def add_tenant(conn: psycopg.Connection, tenant_id: str, key: str, name: str, enabled: bool = True) -> Tenant:
    """register_tenant for callers that only need the tenant (tests, benchmarks, the demo)."""
    return register_tenant(conn, tenant_id, key, name, enabled=enabled).tenant


def list_tenants(conn: psycopg.Connection, enabled_only: bool = False) -> list[Tenant]:
    with conn.cursor(row_factory=class_row(Tenant)) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM tenants WHERE enabled OR NOT %s ORDER BY key", (enabled_only,))
        return cur.fetchall()


def get_tenant(conn: psycopg.Connection, key_or_id: str) -> Tenant:
    """A tenant by GUID when the input is one, else by key (never either: one input, one meaning).

    UNKNOWN_TENANT names the keys that do exist.
    """
    if _GUID.match(key_or_id.strip().lower()):
        return _one(conn, "tenant_id", key_or_id.strip().lower(), key_or_id)
    return _one(conn, "key", key_or_id, key_or_id)


def get_tenant_by_key(conn: psycopg.Connection, key: str) -> Tenant:
    """A tenant by its key only: for Dagster partition keys, which are keys whatever they look like."""
    return _one(conn, "key", key, key)


def _one(conn: psycopg.Connection, column: str, value: str, shown: str) -> Tenant:
    assert column in ("key", "tenant_id")
    with conn.cursor(row_factory=class_row(Tenant)) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM tenants WHERE {column} = %s", (value,))
        tenant = cur.fetchone()
    if tenant is None:
        known = ", ".join(t.key for t in list_tenants(conn)) or "none registered"
        raise TenantAtlasError(ErrorCode.UNKNOWN_TENANT, f"unknown tenant {shown[:80]!r}; known: {known}")
    return tenant


def set_enabled(conn: psycopg.Connection, key: str, enabled: bool) -> Tenant:
    tenant = get_tenant(conn, key)
    conn.execute(
        "UPDATE tenants SET enabled = %s, updated_at = now() WHERE tenant_id = %s",
        (enabled, tenant.tenant_id),
    )
    conn.commit()
    return Tenant(tenant.tenant_id, tenant.key, tenant.name, enabled)
