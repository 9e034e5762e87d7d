"""Onboarding at MSP scale: CSV import and GDAP discovery, against the real PostgreSQL and the emulator.

The plan/apply functions are tested on their own (parse and key derivation without I/O, import and
discovery against the store), the CLI and the Dagster sensor as thin wrappers on top. Graph is the
bundled emulator over TLS with the production GraphClient (MSAL tokens, httpx paging).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from click.testing import CliRunner, Result
from dagster import DagsterInstance, SensorResult, SkipReason, build_sensor_context, instance_for_test

from tenantatlas_pipelines.cli import cli
from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.defs.partitions import TENANT_PARTITIONS_NAME
from tenantatlas_pipelines.defs.resources import GraphResource, InventoryDatabase, close_clients
from tenantatlas_pipelines.defs.sensors import (
    GDAP_AUTO_ENABLE_ENV,
    GDAP_PARTNER_ENV,
    gdap_discovery_sensor,
)
from tenantatlas_pipelines.emulator import CONTOSO, FABRIKAM, NORTHWIND, Emulator, Fault, TenantSpec
from tenantatlas_pipelines.emulator.data import GdapCustomer
from tenantatlas_pipelines.errors import ErrorCode, TenantAtlasError
from tenantatlas_pipelines.graph.client import GraphClient
from tenantatlas_pipelines.graph.errors import GraphError
from tenantatlas_pipelines.graph.settings import GraphSettings
from tenantatlas_pipelines.onboarding import (
    CUSTOMERS_PATH,
    Customer,
    assign_keys,
    derive_key,
    discover_tenants,
    import_tenants,
    parse_csv,
    read_customers,
)
from tenantatlas_pipelines.store.tenants import Tenant, add_tenant, list_tenants, set_enabled
from tests.support import run_cli
from tests.test_dagster_automation import tick

# --- the emulated partners ---------------------------------------------------------------------------

# A second "Contoso Ltd" whose id sorts before CONTOSO's: it wins the bare key, CONTOSO gets a suffix.
CONTOSO_2 = GdapCustomer("01234567-89ab-4cde-8f01-23456789abcd", "Contoso Ltd")
SOCIETE = GdapCustomer("5e0c1e7e-0000-4000-8000-00000000a001", "Société Générale SA")
PARTNER = TenantSpec(
    "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d",
    "adatum-msp",
    "Adatum Partners",
    sizes={},
    customers=(
        GdapCustomer.of(CONTOSO),
        GdapCustomer.of(FABRIKAM),
        GdapCustomer.of(NORTHWIND),
        CONTOSO_2,
        SOCIETE,
    ),
)
BIG_PARTNER = TenantSpec(
    "b1b1b1b1-0000-4000-8000-00000000b1b1",
    "big-msp",
    "Big MSP",
    sizes={},
    customers=tuple(
        GdapCustomer(str(uuid.UUID(int=0xC0FFEE << 64 | n)), f"Customer {n:03d} GmbH") for n in range(230)
    ),
)
UNCONSENTED_PARTNER = TenantSpec(
    "c2c2c2c2-0000-4000-8000-00000000c2c2",
    "lazy-msp",
    "Lazy MSP",
    sizes={},
    consented=False,
    customers=(GdapCustomer.of(CONTOSO),),
)
FAST = {
    "max_attempts": 2,
    "retry_budget_s": 1.0,
    "backoff_base_s": 0.01,
    "backoff_cap_s": 0.05,
    "connect_timeout": 5.0,
    "read_timeout": 10.0,
}


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(
        state_dir=tmp_path_factory.mktemp("onboarding-emu"),
        tenants=[CONTOSO, PARTNER, BIG_PARTNER, UNCONSENTED_PARTNER],
    ) as emulator:
        yield emulator


@pytest.fixture
def partner(emu: Emulator) -> Iterator[Emulator]:
    """The shared emulator with faults, the request log and the partner's customer list reset."""
    emu.clear_faults()
    emu.clear_log()
    yield emu
    emu.clear_faults()
    emu.add_tenant(PARTNER)


def add_customer(emu: Emulator, tenant_id: str, name: str) -> None:
    """One more GDAP customer of the partner (the `partner` fixture restores its list afterwards)."""
    emu.add_tenant(
        TenantSpec(
            PARTNER.tenant_id,
            PARTNER.key,
            PARTNER.name,
            sizes={},
            customers=(*PARTNER.customers, GdapCustomer(tenant_id, name)),
        )
    )


def settings_for(emu: Emulator, **overrides: Any) -> GraphSettings:
    values: dict[str, Any] = {
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
        "authority_host": emu.base_url,
        "graph_url": emu.graph_url,
        "ca_bundle": emu.ca_path,
        **FAST,
        **overrides,
    }
    return GraphSettings(**values)


@pytest.fixture(scope="module")
def client(emu: Emulator) -> Iterator[GraphClient]:
    with GraphClient(settings_for(emu)) as graph:
        yield graph


def registry(db: Database) -> list[Tenant]:
    with db.connect() as conn:
        return list_tenants(conn)


def stamps(db: Database) -> dict[str, Any]:
    """tenant_id -> updated_at: proves a second import wrote nothing, not just that values match."""
    with db.connect() as conn:
        return dict(conn.execute("SELECT tenant_id, updated_at FROM tenants").fetchall())


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


# --- CSV: parse (no I/O) -----------------------------------------------------------------------------

A = "6f1d0a52-8b3e-4c2a-9d71-3e5b8c0f4a21"
B = "b24e7c19-05d3-4a8f-b6e2-9c1f7a3d5e08"
C = "0c9a3f7e-6d21-4b58-8e4f-a7b2d1c63e95"
D = "e87b2d40-3a9c-4f16-a05d-52c8e1b9f7a3"
LATE = "f00dfeed-1234-4abc-8def-0123456789ab"  # a customer that appears after the first discovery


def test_parse_tolerates_bom_whitespace_blank_lines_case_and_enabled_words() -> None:
    data = (
        "\ufeff Tenant_ID , key ,NAME,Enabled,\r\n"  # BOM, padded and mixed-case header, trailing comma
        "\r\n"
        f"  {A.upper()} ,  contoso , Contoso Ltd. ,  YES \r\n"
        "   \r\n"
        f'{B},fabrikam,"Fabrikam, Inc.",0,\r\n'  # quoted comma, trailing empty cell
        f"{C},northwind,Northwind Traders\r\n"  # enabled cell missing: the file does not say
        f'{D},tailspin,"Tailspin ""Toys""",False\r\n'  # a doubled quote inside a quoted cell
    ).encode()
    parsed = parse_csv(data)
    assert parsed.problems == ()
    assert [(r.line, r.tenant_id, r.key, r.name, r.enabled) for r in parsed.rows] == [
        (3, A, "contoso", "Contoso Ltd.", True),
        (5, B, "fabrikam", "Fabrikam, Inc.", False),
        (6, C, "northwind", "Northwind Traders", None),
        (7, D, "tailspin", 'Tailspin "Toys"', False),
    ]


@pytest.mark.parametrize(
    ("word", "value"),
    [
        ("true", True),
        ("True", True),
        ("yes", True),
        ("1", True),
        ("FALSE", False),
        ("no", False),
        ("0", False),
        ("", None),
    ],
)
def test_parse_enabled_words(word: str, value: bool | None) -> None:
    parsed = parse_csv(f"tenant_id,key,name,enabled\n{A},contoso,Contoso,{word}\n")
    assert parsed.problems == () and parsed.rows[0].enabled is value


def test_parse_reports_every_problem_with_its_line_and_code() -> None:
    parsed = parse_csv(
        "tenant_id,key,name,enabled\n"
        f"{A},contoso,Contoso,yes\n"  # 2 fine
        "not-a-guid,fabrikam,Fabrikam,\n"  # 3 bad GUID
        f"{B},Fabrikam Inc,Fabrikam,\n"  # 4 bad key
        f"{C},northwind,,maybe\n"  # 5 empty name, bad enabled
        f"{A.upper()},contoso2,Contoso again,\n"  # 6 same tenant as line 2
        f"{D},contoso,Tailspin,\n"  # 7 same key as line 2
        f"{D[:-1]}0,tailspin,Tailspin,yes,extra\n"  # 8 too many fields
        f"{D[:-1]}1,tailspin\n"  # 9 too few fields
    )
    assert [r.line for r in parsed.rows] == [2]
    assert [(p.line, p.code, p.column) for p in parsed.problems] == [
        (3, ErrorCode.INVALID_TENANT_ID, "tenant_id"),
        (4, ErrorCode.INVALID_TENANT_KEY, "key"),
        (5, ErrorCode.INVALID_IMPORT_FILE, "name"),
        (5, ErrorCode.INVALID_IMPORT_FILE, "enabled"),
        (6, ErrorCode.INVALID_IMPORT_FILE, "tenant_id"),
        (7, ErrorCode.INVALID_TENANT_KEY, "key"),
        (8, ErrorCode.INVALID_IMPORT_FILE, None),
        (9, ErrorCode.INVALID_IMPORT_FILE, None),
    ]
    assert "also on line 2" in parsed.problems[4].message
    assert "also used on line 2" in parsed.problems[5].message


@pytest.mark.parametrize(
    ("data", "line", "fragment"),
    [
        (b"", 1, "empty"),
        (b"\n\n  \n", 1, "empty"),
        (b"tenant_id,key\n", 1, "lacks name"),
        (b"tenant,key,name\n", 1, "unknown column 'tenant'"),
        (b"tenant_id,key,name,key\n", 1, "appears twice"),
        (b"tenant_id,key,name\n" + f"{A},contoso,Caf\xe9\n".encode("latin-1"), 2, "not UTF-8"),
    ],
)
def test_parse_refuses_a_malformed_file(data: bytes, line: int, fragment: str) -> None:
    parsed = parse_csv(data)
    assert parsed.rows == () or parsed.problems
    assert any(
        p.line == line and p.code == ErrorCode.INVALID_IMPORT_FILE and fragment in p.message
        for p in parsed.problems
    ), parsed.problems


# --- CSV: plan and apply (PostgreSQL) ----------------------------------------------------------------


def test_import_adds_updates_reports_and_is_idempotent(db: Database, conn: psycopg.Connection) -> None:
    add_tenant(conn, A, "contoso", "Contoso (old name)")
    add_tenant(conn, D, "tailspin", "Tailspin Toys", enabled=False)  # not in the file: left alone
    text = (
        f"tenant_id,key,name,enabled\n{A},contoso,Contoso Ltd.,no\n{B},fabrikam,Fabrikam,\n"
        f"{C},northwind,Northwind,false\n"
    )

    first = import_tenants(conn, parse_csv(text))
    assert first.applied and first.plan.ok
    report = first.to_json("tenants.csv")
    assert report["summary"] == {"added": 2, "updated": 1, "unchanged": 0, "not_in_file": 1, "problems": 0}
    assert report["updated"] == [
        {
            "line": 2,
            "tenant_id": A,
            "key": "contoso",
            "name": "Contoso Ltd.",
            "enabled": False,
            "changes": {
                "name": {"old": "Contoso (old name)", "new": "Contoso Ltd."},
                "enabled": {"old": True, "new": False},
            },
        }
    ]
    assert [(e["key"], e["enabled"]) for e in report["added"]] == [("fabrikam", True), ("northwind", False)]
    assert [t["key"] for t in report["not_in_file"]] == ["tailspin"]
    assert [(t.key, t.name, t.enabled) for t in registry(db)] == [
        ("contoso", "Contoso Ltd.", False),
        ("fabrikam", "Fabrikam", True),
        ("northwind", "Northwind", False),
        ("tailspin", "Tailspin Toys", False),
    ]

    before = stamps(db)
    second = import_tenants(conn, parse_csv(text))
    assert not second.applied and second.plan.ok
    assert second.to_json()["summary"] == {
        "added": 0,
        "updated": 0,
        "unchanged": 3,
        "not_in_file": 1,
        "problems": 0,
    }
    assert stamps(db) == before  # not one row rewritten


def test_import_without_enabled_column_keeps_a_disabled_tenant_disabled(
    db: Database, conn: psycopg.Connection
) -> None:
    add_tenant(conn, A, "contoso", "Contoso", enabled=False)
    result = import_tenants(conn, parse_csv(f"tenant_id,key,name\n{A},contoso,Contoso\n{B},fabrikam,Fab\n"))
    assert [e.action for e in result.plan.entries] == ["unchanged", "added"]
    assert [(t.key, t.enabled) for t in registry(db)] == [("contoso", False), ("fabrikam", True)]


def test_any_problem_writes_nothing_and_reports_store_conflicts(
    db: Database, conn: psycopg.Connection
) -> None:
    add_tenant(conn, A, "contoso", "Contoso")
    before = stamps(db)
    text = (
        f"tenant_id,key,name\n{B},fabrikam,Fabrikam\n"  # fine on its own
        f"{C},contoso,Northwind\n"  # key owned by another registered tenant
        f"{A},contoso-ltd,Contoso\n"  # a key change: fine on its own
        "nope,tailspin,Tailspin\n"
    )
    result = import_tenants(conn, parse_csv(text))
    assert not result.applied and not result.plan.ok
    assert [(p.line, p.code) for p in result.plan.problems] == [
        (3, ErrorCode.INVALID_TENANT_KEY),
        (5, ErrorCode.INVALID_TENANT_ID),
    ]
    assert A in result.plan.problems[0].message
    assert stamps(db) == before and [t.key for t in registry(db)] == ["contoso"]

    dry = import_tenants(conn, parse_csv(f"tenant_id,key,name\n{B},fabrikam,Fabrikam\n"), dry_run=True)
    assert dry.plan.ok and not dry.applied and [e.action for e in dry.plan.entries] == ["added"]
    assert [t.key for t in registry(db)] == ["contoso"]


def test_a_failing_write_rolls_back_the_whole_import(db: Database, conn: psycopg.Connection) -> None:
    """One transaction: if the database refuses one row mid-way, the rows before it are gone too."""
    add_tenant(conn, A, "contoso", "Contoso")
    conn.execute("ALTER TABLE tenants ADD CONSTRAINT test_no_z CHECK (key <> 'zzz')")
    conn.commit()
    try:
        with pytest.raises(psycopg.errors.CheckViolation):
            import_tenants(
                conn, parse_csv(f"tenant_id,key,name\n{B},fabrikam,F\n{C},zzz,Z\n{A},c2,Renamed\n")
            )
    finally:
        conn.execute("ALTER TABLE tenants DROP CONSTRAINT test_no_z")
        conn.commit()
    assert [(t.key, t.name) for t in registry(db)] == [("contoso", "Contoso")]


# --- CSV: the command --------------------------------------------------------------------------------


def test_cli_import_text_json_and_exit_codes(db: Database, tmp_path: Path) -> None:
    good = tmp_path / "tenants.csv"
    good.write_text(f"tenant_id,key,name,enabled\n{A},contoso,Contoso Ltd.,yes\n{B},fabrikam,Fabrikam,no\n")

    dry = invoke("tenants", "import", str(good), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "2 added" in dry.stdout and "dry run: nothing written" in dry.stdout and registry(db) == []

    applied = invoke("tenants", "import", str(good))
    assert applied.exit_code == 0, applied.output
    assert "applied in one transaction: 2 added, 0 updated" in applied.stdout

    again = invoke("tenants", "import", str(good), "--json")
    assert again.exit_code == 0
    report = json.loads(again.stdout)
    assert report["applied"] is False and report["summary"]["unchanged"] == 2
    assert report["file"] == str(good)

    bad = tmp_path / "bad.csv"
    bad.write_text(f"tenant_id,key,name\n{C},northwind,Northwind\nnot-a-guid,x,X\n{D},contoso,Tailspin\n")
    refused = invoke("tenants", "import", str(bad))
    assert refused.exit_code == 2 and refused.stdout == ""
    assert f"{bad}:3: error [invalid_tenant_id] (tenant_id):" in refused.stderr
    assert f"{bad}:4: error [invalid_tenant_key] (key): key 'contoso' belongs to" in refused.stderr
    assert "nothing written: 2 problem(s)" in refused.stderr
    as_json = invoke("tenants", "import", str(bad), "--json")
    assert as_json.exit_code == 2
    problems = json.loads(as_json.stdout)["problems"]
    assert [(p["line"], p["code"]) for p in problems] == [(3, "invalid_tenant_id"), (4, "invalid_tenant_key")]
    assert [t.key for t in registry(db)] == ["contoso", "fabrikam"]

    piped = CliRunner().invoke(cli, ["tenants", "import", "-", "--dry-run"], input=good.read_bytes())
    assert piped.exit_code == 0 and "<stdin>: 2 tenant(s): 0 added, 0 updated, 2 unchanged" in piped.stdout

    missing = invoke("tenants", "import", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_import_through_the_installed_entry_point(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbftenant_id,key,name\r\n" + f"{A.upper()},contoso,Contoso\r\n".encode())
    run = run_cli("tenants", "import", str(path), "--json", env={"TENANTATLAS_DATABASE_URL": db.url})
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["added"][0]["tenant_id"] == A


# --- GDAP: keys (no I/O) -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Contoso Ltd.", "contoso"),
        ("Fabrikam, Inc.", "fabrikam"),
        ("Northwind Traders", "northwind-traders"),
        ("Société Générale SA", "societe-generale"),
        ("Müller GmbH & Co. KG", "muller"),
        ("Tailspin Toys (no Intune)", "tailspin-toys-no-intune"),
        ("Ltd", "ltd"),
        ("株式会社", "tenant"),
        ("  --  ", "tenant"),
        ("A" * 80, "a" * 50),
    ],
)
def test_derive_key(name: str, key: str) -> None:
    assert derive_key(name) == key


def test_assign_keys_suffixes_collisions_by_tenant_id_whatever_the_listing_order() -> None:
    customers = [
        Customer(CONTOSO.tenant_id, "Contoso Ltd."),
        Customer(CONTOSO_2.tenant_id, "Contoso Ltd"),
        Customer(NORTHWIND.tenant_id, "Northwind Traders"),
        Customer(B, "Fabrikam"),
    ]
    taken = ["northwind-traders", "fabrikam", "fabrikam-b24e7c"]  # registered by other tenants
    expected = {
        CONTOSO_2.tenant_id: "contoso",
        CONTOSO.tenant_id: "contoso-6f1d0a",
        NORTHWIND.tenant_id: "northwind-traders-0c9a3f",
        B: "fabrikam-b24e7c19",
    }
    for seed in range(5):
        random.Random(seed).shuffle(customers)
        assert assign_keys(customers, taken) == expected


# --- GDAP: reading Graph (the emulator) --------------------------------------------------------------


def test_emulator_serves_customers_like_graph(partner: Emulator) -> None:
    from tests.plugins.emulator import emulator_ssl_context, fetch_token

    assert TenantSpec.from_json(PARTNER.to_json()).customers == PARTNER.customers  # admin API / state file
    url = f"{partner.graph_url}/v1.0/{CUSTOMERS_PATH}"
    with httpx.Client(verify=emulator_ssl_context(partner), timeout=10) as http:
        assert http.get(url).status_code == 401
        token = fetch_token(partner, PARTNER.tenant_id)
        page = http.get(url, params={"$top": "2"}, headers={"Authorization": f"Bearer {token}"}).json()
        assert page["value"][0] == {
            "@odata.type": "#microsoft.graph.delegatedAdminCustomer",
            "id": CONTOSO.tenant_id,
            "tenantId": CONTOSO.tenant_id,
            "displayName": CONTOSO.name,
        }
        assert len(page["value"]) == 2 and "$skiptoken=" in page["@odata.nextLink"]
        assert page["@odata.nextLink"].startswith(f"{partner.graph_url}/v1.0/{CUSTOMERS_PATH}?$top=2&")
        other = fetch_token(partner, CONTOSO.tenant_id)  # not a partner: an empty collection
        assert http.get(url, headers={"Authorization": f"Bearer {other}"}).json()["value"] == []


def test_read_customers_follows_every_page(partner: Emulator, client: GraphClient) -> None:
    customers, skipped = read_customers(client, BIG_PARTNER.tenant_id)
    assert skipped == [] and len(customers) == 230
    assert {c.tenant_id for c in customers} == {c.tenant_id for c in BIG_PARTNER.customers}
    pages = [r for r in partner.request_log if r.endpoint == "graph"]
    assert [(r.status, r.items, r.policy_type) for r in pages] == [
        (200, 100, "delegatedAdminCustomer"),
        (200, 100, "delegatedAdminCustomer"),
        (200, 30, "delegatedAdminCustomer"),
    ]


def test_read_customers_skips_unusable_items_and_the_partner_itself(
    partner: Emulator, client: GraphClient
) -> None:
    add_customer(partner, PARTNER.tenant_id, "Adatum itself")
    partner.inject(Fault("non_object_item", tenant_id=PARTNER.tenant_id))
    customers, skipped = read_customers(client, PARTNER.tenant_id)
    assert sorted(c.tenant_id for c in customers) == sorted(c.tenant_id for c in PARTNER.customers)
    assert [s.reason for s in skipped] == ["not a JSON object", "not a JSON object"]


@pytest.mark.parametrize(
    ("partner_id", "fault", "settings", "code", "fragment"),
    [
        (
            PARTNER.tenant_id,
            Fault("forbidden", tenant_id=PARTNER.tenant_id),
            {},
            ErrorCode.GRAPH_FORBIDDEN,
            "DelegatedAdminRelationship.Read.All application permission",
        ),
        (
            PARTNER.tenant_id,
            None,
            {"client_secret": "wrong-secret"},
            ErrorCode.AUTH_INVALID_CLIENT,
            "AADSTS7000215",
        ),
        (UNCONSENTED_PARTNER.tenant_id, None, {}, ErrorCode.AUTH_APP_NOT_CONSENTED, "AADSTS700016"),
        (str(uuid.UUID(int=7)), None, {}, ErrorCode.AUTH_TENANT_NOT_FOUND, ""),
        (
            PARTNER.tenant_id,
            Fault("truncated_page", tenant_id=PARTNER.tenant_id),
            {},
            ErrorCode.GRAPH_INVALID_RESPONSE,
            "",
        ),
        (  # issue 10: the hostile shapes the C decoder crashed on (huge_number) or took ~1 GB for
            PARTNER.tenant_id,
            Fault("huge_number", tenant_id=PARTNER.tenant_id),
            {},
            ErrorCode.GRAPH_INVALID_RESPONSE,
            "number literal longer than",
        ),
        (
            PARTNER.tenant_id,
            Fault("deep_nesting", tenant_id=PARTNER.tenant_id),
            {},
            ErrorCode.GRAPH_INVALID_RESPONSE,
            "nested deeper than",
        ),
        (
            PARTNER.tenant_id,
            Fault("status", tenant_id=PARTNER.tenant_id, status=503),
            {},
            ErrorCode.GRAPH_SERVER_ERROR,
            "attempt",
        ),
    ],
)
def test_discovery_failures_have_stable_codes_and_write_nothing(
    partner: Emulator,
    db: Database,
    conn: psycopg.Connection,
    partner_id: str,
    fault: Fault | None,
    settings: dict[str, Any],
    code: ErrorCode,
    fragment: str,
) -> None:
    if fault is not None:
        partner.inject(fault)
    with GraphClient(settings_for(partner, **settings)) as graph, pytest.raises(GraphError) as info:
        discover_tenants(conn, graph, partner_id, apply=True)
    assert info.value.code == code and fragment in info.value.message, info.value
    assert registry(db) == []


def test_discovery_refuses_a_partner_that_is_not_a_guid(
    conn: psycopg.Connection, client: GraphClient
) -> None:
    with pytest.raises(TenantAtlasError) as info:
        discover_tenants(conn, client, "adatum.onmicrosoft.com")
    assert info.value.code == ErrorCode.INVALID_TENANT_ID


# --- GDAP: plan and apply ----------------------------------------------------------------------------


def test_discovery_dry_run_then_apply_keeps_existing_keys(
    partner: Emulator, db: Database, conn: psycopg.Connection, client: GraphClient
) -> None:
    add_tenant(conn, FABRIKAM.tenant_id, "fab", "Fabrikam (ours)", enabled=False)
    add_tenant(conn, D, "tailspin", "Tailspin")  # registered by hand, not a GDAP customer
    add_tenant(conn, str(uuid.UUID(int=5)), "northwind-traders", "Someone else")  # takes the derived key

    dry = discover_tenants(conn, client, PARTNER.tenant_id)
    assert dry.dry_run and not dry.applied and len(registry(db)) == 3
    report = dry.to_json()
    assert report["summary"] == {
        "discovered": 5,
        "new": 4,
        "registered": 1,
        "not_discovered": 2,
        "skipped": 0,
    }
    assert report["registered"] == [
        {
            "tenant_id": FABRIKAM.tenant_id,
            "key": "fab",
            "name": "Fabrikam (ours)",
            "enabled": False,
            "discovered_name": FABRIKAM.name,
        }
    ]
    planned = {c["tenant_id"]: c["key"] for c in report["new"]}
    assert planned == {
        CONTOSO_2.tenant_id: "contoso",
        CONTOSO.tenant_id: "contoso-6f1d0a",
        NORTHWIND.tenant_id: "northwind-traders-0c9a3f",
        SOCIETE.tenant_id: "societe-generale",
    }

    applied = discover_tenants(conn, client, PARTNER.tenant_id, apply=True, enabled=False)
    assert applied.applied and {
        c.tenant.key: c.tenant.enabled for c in applied.plan.of("new")
    } == dict.fromkeys(planned.values(), False)
    keys = {t.tenant_id: t.key for t in registry(db)}
    assert {tid: keys[tid] for tid in planned} == planned and keys[FABRIKAM.tenant_id] == "fab"

    # A new customer appears later; the ones registered keep their keys, even the suffixed one.
    add_customer(partner, LATE, "Contoso Ltd.")
    later = discover_tenants(conn, client, PARTNER.tenant_id, apply=True)
    assert [(c.tenant.tenant_id, c.tenant.key) for c in later.plan.of("new")] == [(LATE, "contoso-f00dfe")]
    assert {t.tenant_id: t.key for t in registry(db)} == {**keys, LATE: "contoso-f00dfe"}
    assert not discover_tenants(conn, client, PARTNER.tenant_id, apply=True).applied  # nothing new


def test_cli_discover_dry_run_apply_and_errors(
    partner: Emulator, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in partner.client_env().items():
        monkeypatch.setenv(name, value)
    dry = invoke("tenants", "discover", "--partner-tenant", PARTNER.tenant_id.upper())
    assert dry.exit_code == 0, dry.output
    assert "5 GDAP customer(s): 5 new, 0 already registered" in dry.stdout
    assert "dry run: nothing written" in dry.stdout and registry(db) == []

    monkeypatch.setenv(GDAP_PARTNER_ENV, PARTNER.tenant_id)
    applied = invoke("tenants", "discover", "--apply", "--disabled", "--json")
    assert applied.exit_code == 0, applied.output
    report = json.loads(applied.stdout)
    assert report["applied"] and report["summary"]["new"] == 5
    assert len(registry(db)) == 5 and not any(t.enabled for t in registry(db))

    partner.inject(Fault("forbidden", tenant_id=PARTNER.tenant_id))
    refused = invoke("tenants", "discover")
    assert refused.exit_code == 2 and refused.stderr.startswith("error [graph_forbidden]: ")
    monkeypatch.setenv("TENANTATLAS_CLIENT_SECRET", "wrong")
    assert "error [auth_invalid_client]" in invoke("tenants", "discover").stderr


# --- GDAP: the Dagster sensor ------------------------------------------------------------------------


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        yield inst


def _graph_resource(emu: Emulator) -> GraphResource:
    return GraphResource(
        client_id=emu.client_id,
        client_secret=emu.client_secret,
        authority_host=emu.base_url,
        graph_url=emu.graph_url,
        ca_bundle=str(emu.ca_path),
    )


def discovery_tick(instance: DagsterInstance, emu: Emulator) -> SkipReason:
    resources = {"inventory_db": InventoryDatabase(), "graph": _graph_resource(emu)}
    with build_sensor_context(instance=instance, resources=resources) as ctx:
        result = gdap_discovery_sensor(ctx)
    assert isinstance(result, SkipReason)  # registration only, never runs
    return result




def test_sensor_registers_discovered_customers_for_the_registry_sensor(
    partner: Emulator, db: Database, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(GDAP_PARTNER_ENV, raising=False)
    assert "is not set" in (discovery_tick(instance, partner).skip_message or "")
    assert registry(db) == []

    monkeypatch.setenv(GDAP_PARTNER_ENV, PARTNER.tenant_id)
    monkeypatch.delenv(GDAP_AUTO_ENABLE_ENV, raising=False)
    try:
        first = discovery_tick(instance, partner)
        assert "5 newly registered (disabled)" in (first.skip_message or "")
        assert len(registry(db)) == 5 and not any(t.enabled for t in registry(db))
        assert isinstance(tick(instance, None), SkipReason)  # disabled: no partitions yet

        with db.connect() as conn:
            set_enabled(conn, "societe-generale", True)  # an operator enables one deliberately
        assert isinstance(tick(instance, None), SensorResult)
        assert list(instance.get_dynamic_partitions(TENANT_PARTITIONS_NAME)) == ["societe-generale"]

        monkeypatch.setenv(GDAP_AUTO_ENABLE_ENV, "1")
        add_customer(partner, LATE, "Fabrikam West")
        second = discovery_tick(instance, partner)
        assert "1 newly registered (enabled): fabrikam-west" in (second.skip_message or "")
        tick(instance, "1")
        assert sorted(instance.get_dynamic_partitions(TENANT_PARTITIONS_NAME)) == [
            "fabrikam-west",
            "societe-generale",
        ]
        assert "0 newly registered" in (discovery_tick(instance, partner).skip_message or "")

        partner.inject(Fault("forbidden", tenant_id=PARTNER.tenant_id))
        with pytest.raises(Exception, match="graph_forbidden"):  # a red tick, not a silent one
            discovery_tick(instance, partner)
    finally:
        close_clients()
