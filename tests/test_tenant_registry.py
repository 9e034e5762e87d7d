"""The tenant registry's edges (issue #10, items 7, 8 and 13).

7: a key may never look like a tenant id, and a lookup is by id when given a GUID, by key otherwise;
8: a CSV with an unterminated or line-spanning quote, or a name with control characters, is refused
   with the line named and nothing written;
13: `tenants add` on a registered tenant updates the name only: never its enabled state, and its key
   only when asked (`--rename-key`), reported like an import's changes.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from tenantatlas_pipelines.cli import cli
from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.errors import ErrorCode, TenantAtlasError
from tenantatlas_pipelines.onboarding import import_tenants, parse_csv
from tenantatlas_pipelines.onboarding.gdap import Customer, assign_keys, derive_key
from tenantatlas_pipelines.store.selections import add_selection
from tenantatlas_pipelines.store.tenants import (
    add_tenant,
    get_tenant,
    get_tenant_by_key,
    is_guid_shaped,
    list_tenants,
    set_enabled,
    validate_tenant_key,
)
from tenantatlas_pipelines.sync import run_sync
from tests.support import MemoryGraph, item

CONTOSO = "6f1d0a52-8b3e-4c2a-9d71-3e5b8c0f4a21"
FABRIKAM = "b24e7c19-05d3-4a8f-b6e2-9c1f7a3d5e08"
NORTHWIND = "0c9a3f7e-6d21-4b58-8e4f-a7b2d1c63e95"


def cli_run(*args: str):
    return CliRunner().invoke(cli, list(args))


# --- 7: keys never GUID-shaped; lookups unambiguous ----------------------------------------------------


@pytest.mark.parametrize("key", [FABRIKAM, FABRIKAM.replace("-", ""), "00000000-0000-0000-0000-000000000000"])
def test_guid_shaped_keys_are_refused(key: str) -> None:
    with pytest.raises(TenantAtlasError) as info:
        validate_tenant_key(key)
    assert info.value.code == ErrorCode.INVALID_TENANT_KEY and "tenant id" in info.value.message


def test_tenants_add_refuses_another_tenants_guid_as_key(db: Database, conn: psycopg.Connection) -> None:
    add_tenant(conn, FABRIKAM, "fabrikam", "Fabrikam")
    result = cli_run("tenants", "add", "--tenant-id", CONTOSO, "--key", FABRIKAM, "--name", "Evil")
    assert result.exit_code == 2 and "invalid_tenant_key" in result.stderr
    assert [t.tenant_id for t in list_tenants(conn)] == [FABRIKAM]


def test_csv_import_refuses_guid_shaped_keys_naming_the_line(db: Database, conn: psycopg.Connection) -> None:
    parsed = parse_csv(f"tenant_id,key,name\n{CONTOSO},contoso,Contoso\n{NORTHWIND},{FABRIKAM},Evil\n")
    assert [(p.line, p.code, p.column) for p in parsed.problems] == [
        (3, ErrorCode.INVALID_TENANT_KEY, "key")
    ]
    assert not import_tenants(conn, parsed).applied and list_tenants(conn) == []


def test_gdap_key_derivation_never_yields_a_guid_shape() -> None:
    assert not is_guid_shaped(derive_key(FABRIKAM))  # a customer whose display name is a GUID
    assert not is_guid_shaped(derive_key(FABRIKAM.upper().replace("-", " ")))
    # Hex words whose collision suffix (12 digits) would complete 8-4-4-4-12.
    name = "aaaaaaaa bbbb cccc dddd"
    base = derive_key(name)
    customers = [Customer(CONTOSO, name)]
    taken = [base, f"{base}-6f1d0a", f"{base}-6f1d0a52"]
    keys = assign_keys(customers, taken)
    assert not is_guid_shaped(keys[CONTOSO]) and keys[CONTOSO] not in taken
    names = [" ".join(f"{random.Random(i).getrandbits(32):08x}" for _ in range(4)) for i in range(50)]
    for n in names:
        assert not is_guid_shaped(derive_key(n))


def test_lookup_is_by_id_for_a_guid_and_by_key_otherwise(db: Database, conn: psycopg.Connection) -> None:
    add_tenant(conn, FABRIKAM, "fabrikam", "Fabrikam")
    # A tenant registered before keys were checked, keyed with fabrikam's id (planted behind the API).
    conn.execute(
        "INSERT INTO tenants (tenant_id, key, display_name) VALUES (%s, %s, 'Legacy')", (CONTOSO, FABRIKAM)
    )
    conn.commit()
    assert get_tenant(conn, FABRIKAM).key == "fabrikam"  # a GUID means a tenant id, never a key
    assert get_tenant(conn, FABRIKAM.upper()).key == "fabrikam"
    assert get_tenant(conn, CONTOSO).name == "Legacy"
    assert get_tenant(conn, "fabrikam").tenant_id == FABRIKAM
    assert get_tenant_by_key(conn, FABRIKAM).tenant_id == CONTOSO  # a partition key is always a key
    # `tenants disable <guid>` disables the tenant with that id, and only it.
    result = cli_run("tenants", "disable", FABRIKAM)
    assert result.exit_code == 0, result.output
    states = {t.tenant_id: t.enabled for t in list_tenants(conn)}
    assert states == {FABRIKAM: False, CONTOSO: True}
    with pytest.raises(TenantAtlasError) as info:
        get_tenant(conn, NORTHWIND)
    assert info.value.code == ErrorCode.UNKNOWN_TENANT


def test_sync_of_a_legacy_guid_key_partition_syncs_that_tenant(
    db: Database, conn: psycopg.Connection
) -> None:
    """The Dagster path resolves partition keys by key: a legacy key equal to another tenant's GUID
    never reaches the other tenant."""
    add_tenant(conn, FABRIKAM, "fabrikam", "Fabrikam")
    conn.execute(
        "INSERT INTO tenants (tenant_id, key, display_name) VALUES (%s, %s, 'Legacy')", (CONTOSO, FABRIKAM)
    )
    conn.commit()
    add_selection(conn, "dc", ["deviceConfiguration"])
    result = run_sync(db, MemoryGraph({"deviceConfiguration": [[item("x")]]}), FABRIKAM, "dc")
    assert result.tenant_id == CONTOSO and result.tenant_key == FABRIKAM


# --- 8: strict CSV ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        # The case: an unterminated quote that swallowed the next lines into one name.
        (
            f'tenant_id,key,name\n{CONTOSO},contoso,"Contoso\n{FABRIKAM},fabrikam,Fabrikam\n'
            f"{NORTHWIND},northwind,Northwind\n",
            2,
            "never closed",
        ),
        # A quote closed on a later line: a cell spanning lines.
        (
            f'tenant_id,key,name\n{CONTOSO},contoso,"Contoso\n{FABRIKAM}",x\n{NORTHWIND},northwind,N\n',
            2,
            "not closed on that line",
        ),
        (f'tenant_id,key,name\n{CONTOSO},contoso,"Contoso"Ltd\n', 2, "malformed"),
        (f"tenant_id,key,name\n{CONTOSO},contoso,Contoso\n{FABRIKAM},fabrikam,Fab\trikam\n", 3, "U+0009"),
        (f"tenant_id,key,name\n{CONTOSO},contoso,Con\x00toso\n", 2, "U+0000"),
        (f"tenant_id,key,name\n{CONTOSO},contoso,Contoso\x1b[31m\n", 2, "U+001B"),
        (f"tenant_id,key,name\n{CONTOSO},contoso,Contoso\u0085x\n", 2, "U+0085"),
    ],
)
def test_strict_csv_names_the_line_and_writes_nothing(
    db: Database, conn: psycopg.Connection, text: str, line: int, fragment: str
) -> None:
    parsed = parse_csv(text.encode())
    assert parsed.problems, parsed
    assert any(p.line == line and fragment in p.message for p in parsed.problems), parsed.problems
    assert all(p.code == ErrorCode.INVALID_IMPORT_FILE for p in parsed.problems)
    result = import_tenants(conn, parsed)
    assert not result.applied and not result.plan.ok
    assert list_tenants(conn) == []


def test_cli_import_of_an_unterminated_quote_fails_naming_the_line(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "tenants.csv"
    path.write_text(
        f'tenant_id,key,name\n{CONTOSO},contoso,Contoso\n{FABRIKAM},fabrikam,"Fabrikam\n'
        f"{NORTHWIND},northwind,Northwind\n"
    )
    result = cli_run("tenants", "import", str(path))
    assert result.exit_code == 2
    assert f"{path}:3: error [invalid_import_file]" in result.stderr and "ok" not in result.stdout
    with db.connect() as conn:
        assert list_tenants(conn) == []


# --- 13: `tenants add` on a registered tenant ------------------------------------------------------------


def _add(*extra: str, key: str = "contoso", name: str = "Contoso"):
    return cli_run("tenants", "add", "--tenant-id", CONTOSO, "--key", key, "--name", name, "--json", *extra)


def test_readding_updates_the_name_only_and_never_re_enables(db: Database, conn: psycopg.Connection) -> None:
    first = _add()
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["action"] == "added"
    set_enabled(conn, "contoso", False)
    again = _add(name="Contoso Ltd")
    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout)
    assert data["action"] == "updated" and data["enabled"] is False
    assert data["changes"] == {"name": {"old": "Contoso", "new": "Contoso Ltd"}}
    assert any("tenants enable" in n for n in data["notes"])
    assert get_tenant(conn, "contoso").enabled is False
    same = _add(name="Contoso Ltd")
    assert json.loads(same.stdout)["action"] == "unchanged" and get_tenant(conn, "contoso").enabled is False
    text = cli_run("tenants", "add", "--tenant-id", CONTOSO, "--key", "contoso", "--name", "Contoso Ltd")
    assert "unchanged (disabled)" in text.stdout and "tenants enable contoso" in text.stdout


def test_readding_with_disabled_does_not_disable(db: Database, conn: psycopg.Connection) -> None:
    _add()
    data = json.loads(_add("--disabled").stdout)
    assert data["enabled"] is True and any("tenants disable" in n for n in data["notes"])
    assert get_tenant(conn, "contoso").enabled is True


def test_a_key_change_needs_rename_key_and_is_reported(db: Database, conn: psycopg.Connection) -> None:
    _add()
    refused = _add(key="contoso-new")
    assert refused.exit_code == 2 and "invalid_tenant_key" in refused.stderr
    assert "--rename-key" in refused.stderr
    assert get_tenant(conn, CONTOSO).key == "contoso"
    renamed = _add("--rename-key", key="contoso-new")
    assert renamed.exit_code == 0, renamed.output
    data = json.loads(renamed.stdout)
    assert data["action"] == "updated"
    assert data["changes"] == {"key": {"old": "contoso", "new": "contoso-new"}}
    assert any("partition" in n for n in data["notes"])
    assert get_tenant(conn, CONTOSO).key == "contoso-new"


def test_a_key_owned_by_another_tenant_stays_refused(db: Database, conn: psycopg.Connection) -> None:
    add_tenant(conn, FABRIKAM, "fabrikam", "Fabrikam")
    _add()
    result = _add("--rename-key", key="fabrikam")
    assert result.exit_code == 2 and "belongs to tenant" in result.stderr
    assert {t.tenant_id: t.key for t in list_tenants(conn)} == {FABRIKAM: "fabrikam", CONTOSO: "contoso"}
