"""The sync engine end to end: production GraphClient (MSAL + httpx over TLS) against the emulator, the
real PostgreSQL, and the missing-items derivation on top (issue 3's acceptance paths)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace

import psycopg
import pytest

from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.emulator import SECRET_PREFIX, Emulator, Fault, TenantSpec, scaled_sizes
from tenantatlas_pipelines.graph.client import GraphClient
from tenantatlas_pipelines.graph.settings import GraphSettings
from tenantatlas_pipelines.normalize import fold_id
from tenantatlas_pipelines.policy_types import REGISTRY
from tenantatlas_pipelines.store.inventory import count_items, list_items
from tenantatlas_pipelines.store.missing import missing_items
from tenantatlas_pipelines.store.scope import tenant_scope
from tenantatlas_pipelines.store.selections import get_selection
from tenantatlas_pipelines.store.tenants import add_tenant
from tenantatlas_pipelines.sync import run_sync


def settings_for(emu: Emulator, **overrides) -> GraphSettings:
    base = GraphSettings(
        client_id=emu.client_id,
        client_secret=emu.client_secret,
        authority_host=emu.authority_host,
        graph_url=emu.graph_url,
        ca_bundle=emu.ca_path,
        retry_budget_s=5.0,
        backoff_base_s=0.05,
        backoff_cap_s=0.5,
        max_attempts=6,
    )
    return replace(base, **overrides)


@pytest.fixture
def graph(emulator: Emulator) -> Iterator[GraphClient]:
    with GraphClient(settings_for(emulator)) as client:
        yield client


@pytest.fixture
def tenants(conn: psycopg.Connection, emulator: Emulator) -> dict[str, str]:
    ids = {}
    for spec in emulator.tenants.values():
        add_tenant(conn, spec.tenant_id, spec.key, spec.name)
        ids[spec.key] = spec.tenant_id
    return ids


def expected_ids(emu: Emulator, tenant_id: str, policy_type: str) -> set[str]:
    keep = REGISTRY[policy_type].keep
    return {fold_id(o["id"]) for o in emu.objects(tenant_id, policy_type) if keep is None or keep(o)}


def _missing(conn, tenant_id: str, selection: str):
    return missing_items(tenant_scope(conn, tenant_id), get_selection(conn, selection).selection_hash)


def test_every_type_is_read_completely_and_stored_once(db: Database, conn, emulator, graph, tenants) -> None:
    tid = tenants["contoso"]
    emulator.add_object(
        tid,
        "mobileApp",
        {
            "@odata.type": "#microsoft.graph.winGetApp",
            "displayName": "Store app",
            "appAvailability": "global",
            "isAssigned": False,
        },
    )
    emulator.add_object(
        tid,
        "deviceHealthScript",
        {"displayName": "Microsoft global script", "isGlobalScript": True, "publisher": "Microsoft"},
    )
    result = run_sync(db, graph, "contoso", "all")
    assert result.status == "succeeded" and not result.had_errors, result.error_codes
    scope = tenant_scope(conn, tid)
    for key in REGISTRY:
        stored = {i.external_id for i in list_items(scope, key)}
        assert stored == expected_ids(emulator, tid, key), key
    assert result.observed == sum(count_items(scope).values())
    served = sum(len(emulator.objects(tid, key)) for key in REGISTRY)
    assert result.filtered >= 2 and result.filtered == served - result.observed, (
        "store-catalogue apps and Microsoft's global scripts are filtered out, and counted"
    )
    pages = {t.policy_type: t.pages for t in result.types}
    assert pages["settingsCatalogPolicy"] >= 2, (
        "settings catalog pages by 25: more than one page was followed"
    )
    # One token for the whole run, however many pages and threads.
    tokens = [r for r in emulator.request_log if r.endpoint == "token" and r.tenant_id == tid]
    assert len(tokens) == 1
    # A second run is idempotent: nothing new, nothing changed, same rows.
    again = run_sync(db, graph, "contoso", "all")
    assert (again.status, again.new, again.changed, again.observed) == ("succeeded", 0, 0, result.observed)


def test_removed_object_is_missing_with_high_confidence(db: Database, conn, emulator, graph, tenants) -> None:
    tid = tenants["fabrikam"]
    run_sync(db, graph, "fabrikam", "configuration")
    victim = emulator.objects(tid, "deviceConfiguration")[0]
    emulator.remove_object(tid, "deviceConfiguration", victim["id"])
    second = run_sync(db, graph, "fabrikam", "configuration")
    assert second.status == "succeeded"
    missing = _missing(conn, tid, "configuration")
    assert [(m.external_id, m.confidence, m.reason) for m in missing.items] == [
        (victim["id"], "high", "not_observed")
    ]


def test_forbidden_type_gives_partial_run_and_low_confidence(
    db: Database, conn, emulator, graph, tenants
) -> None:
    tid = tenants["contoso"]
    run_sync(db, graph, "contoso", "apps")
    emulator.inject(Fault("forbidden", tenant_id=tid, policy_type="mobileApp"))
    result = run_sync(db, graph, "contoso", "apps")
    assert result.status == "partial" and result.error_codes == ("graph_forbidden",)
    by_type = {t.policy_type: t for t in result.types}
    assert by_type["mobileApp"].status == "failed" and by_type["appProtectionPolicy"].status == "succeeded"
    missing = _missing(conn, tid, "apps")
    assert missing.items and {m.policy_type for m in missing.items} == {"mobileApp"}
    assert {(m.confidence, m.reason) for m in missing.items} == {("low", "type_failed")}
    # Nothing was deleted: every app is still in the inventory.
    assert {i.external_id for i in list_items(tenant_scope(conn, tid), "mobileApp")} == expected_ids(
        emulator, tid, "mobileApp"
    )


def test_a_rate_limited_tenant_is_read_completely(db: Database, conn, emulator, graph, tenants) -> None:
    """Graph's budget semantics (n requests per sliding window, Retry-After on every other 429 only):
    four readers of one tenant share the budget without starving one another."""
    spec = TenantSpec(
        "7a7e0000-0000-4000-8000-000000000001",
        "ratelimited",
        "Rate Limited",
        sizes=scaled_sizes(0.3),
        rate_limit=(6, 0.5),
    )
    emulator.add_tenant(spec)
    add_tenant(conn, spec.tenant_id, spec.key, spec.name)
    result = run_sync(db, graph, spec.key, "all")
    assert result.status == "succeeded", result.error_codes
    throttled = [r for r in emulator.request_log if r.status == 429 and r.tenant_id == spec.tenant_id]
    assert throttled and len(throttled) == result.throttled
    assert any(r.retry_after is None for r in throttled), "some 429s came without Retry-After"
    assert result.retries >= result.throttled
    for key in REGISTRY:
        assert {i.external_id for i in list_items(tenant_scope(conn, spec.tenant_id), key)} == expected_ids(
            emulator, spec.tenant_id, key
        ), key


@pytest.mark.parametrize(
    ("tenant", "settings", "code"),
    [
        ("contoso", {"client_secret": "not-the-secret"}, "auth_invalid_client"),
        ("tailspin", {}, "graph_tenant_not_licensed"),
    ],
)
def test_auth_and_licence_failures_have_their_codes(
    db: Database, conn, emulator, tenants, tenant, settings, code
) -> None:
    with GraphClient(settings_for(emulator, **settings)) as client:
        result = run_sync(db, client, tenant, "apps")
    assert result.status == "failed" and result.error_codes == (code,)
    assert {t.status for t in result.types} == {"failed"}


def test_unconsented_tenant_fails_with_its_code(db: Database, conn, emulator, graph) -> None:
    from tenantatlas_pipelines.emulator import WOODGROVE

    emulator.add_tenant(WOODGROVE)
    add_tenant(conn, WOODGROVE.tenant_id, WOODGROVE.key, WOODGROVE.name)
    result = run_sync(db, graph, WOODGROVE.key, "compliance")
    assert result.status == "failed" and result.error_codes == ("auth_app_not_consented",)


def test_secrets_never_stored_or_logged(
    db: Database, conn, emulator, graph, tenants, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    run_sync(db, graph, "contoso", "all")
    served = [o for k in REGISTRY for o in emulator.objects(tenants["contoso"], k)]
    assert any(SECRET_PREFIX in repr(o) for o in served), "the emulator served secret-looking fields"
    dump = "\n".join(str(r) for r in conn.execute("SELECT to_jsonb(i)::text FROM inventory_items i"))
    dump += "\n".join(str(r) for r in conn.execute("SELECT to_jsonb(r)::text FROM inventory_sync_runs r"))
    assert "contoso" in caplog.text or caplog.records, "logs were captured"
    for text in (dump, caplog.text):
        assert SECRET_PREFIX not in text
        assert emulator.client_secret not in text
