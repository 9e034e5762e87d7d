"""T021/T022 and tenant isolation: missing is derived per (tenant, selection_hash) lineage."""

from __future__ import annotations

import psycopg
import pytest

from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.errors import ErrorCode, TenantAtlasError
from tenantatlas_pipelines.store.inventory import list_items
from tenantatlas_pipelines.store.missing import NO_FINISHED_RUN, missing_items
from tenantatlas_pipelines.store.scope import tenant_scope
from tenantatlas_pipelines.store.selections import add_selection, get_selection
from tenantatlas_pipelines.store.tenants import add_tenant
from tenantatlas_pipelines.sync import run_sync
from tests.support import TENANT_A, TENANT_B, MemoryGraph, item

DC = "deviceConfiguration"


@pytest.fixture
def setup(conn: psycopg.Connection) -> None:
    add_tenant(conn, TENANT_A, "contoso", "Contoso")
    add_tenant(conn, TENANT_B, "fabrikam", "Fabrikam")
    add_selection(conn, "dc", [DC])
    add_selection(conn, "dc-apps", [DC, "mobileApp"])


def _missing(conn, tenant_id: str, selection: str):
    return missing_items(tenant_scope(conn, tenant_id), get_selection(conn, selection).selection_hash)


def test_no_finished_run_means_no_missing_and_says_why(db: Database, conn, setup) -> None:
    result = _missing(conn, TENANT_A, "dc")
    assert result.items == [] and result.reason == NO_FINISHED_RUN and result.run_id is None


def test_removed_object_is_missing_with_high_confidence(db: Database, conn, setup) -> None:
    run_sync(db, MemoryGraph({DC: [[item("a"), item("b"), item("c")]]}), "contoso", "dc")
    assert _missing(conn, TENANT_A, "dc").items == []
    second = run_sync(db, MemoryGraph({DC: [[item("a"), item("c")]]}), "contoso", "dc")
    result = _missing(conn, TENANT_A, "dc")
    assert result.run_id == second.sync_run_id and result.run_status == "succeeded"
    assert [(m.external_id, m.confidence, m.reason) for m in result.items] == [("b", "high", "not_observed")]
    # Missing is derived, never stored: the item row is still there, untouched by the second run.
    assert {i.external_id for i in list_items(tenant_scope(conn, TENANT_A))} == {"a", "b", "c"}
    assert "deleted" not in {m.reason for m in result.items} | {m.confidence for m in result.items}


def test_missing_follows_the_latest_run_of_the_same_selection_only(db: Database, conn, setup) -> None:
    run_sync(
        db, MemoryGraph({DC: [[item("a"), item("b")]], "mobileApp": [[item("m")]]}), "contoso", "dc-apps"
    )
    # A later run of ANOTHER selection that does not see "b" must not change missing for "dc-apps".
    run_sync(db, MemoryGraph({DC: [[item("a")]]}), "contoso", "dc")
    assert _missing(conn, TENANT_A, "dc-apps").items == []
    assert [m.external_id for m in _missing(conn, TENANT_A, "dc").items] == ["b"]
    # And a later dc-apps run that sees "b" again but not "m" makes only "m" missing for dc-apps.
    run_sync(db, MemoryGraph({DC: [[item("a"), item("b")]], "mobileApp": [[]]}), "contoso", "dc-apps")
    assert [(m.policy_type, m.external_id) for m in _missing(conn, TENANT_A, "dc-apps").items] == [
        ("mobileApp", "m")
    ]
    # "b" was observed after the dc run started, so dc no longer reports it either.
    assert _missing(conn, TENANT_A, "dc").items == []


def test_same_payload_under_another_name_shares_the_lineage(db: Database, conn, setup) -> None:
    add_selection(conn, "dc-again", [DC, DC])
    run_sync(db, MemoryGraph({DC: [[item("a"), item("b")]]}), "contoso", "dc")
    run_sync(db, MemoryGraph({DC: [[item("a")]]}), "contoso", "dc-again")
    assert [m.external_id for m in _missing(conn, TENANT_A, "dc").items] == ["b"]


@pytest.mark.parametrize(
    ("graph_kwargs", "status", "reason"),
    [
        (
            {"failures": {"mobileApp": ErrorCode.GRAPH_FORBIDDEN}},
            "partial",
            {"type_failed", "run_incomplete"},
        ),
        (
            {"failures": {"mobileApp": ErrorCode.GRAPH_FORBIDDEN, DC: ErrorCode.GRAPH_THROTTLED}},
            "failed",
            {"type_failed"},
        ),
        ({"auth_failure": ErrorCode.AUTH_INVALID_CLIENT}, "failed", {"type_failed"}),
    ],
)
def test_partial_or_failed_run_gives_low_confidence(
    db: Database, conn, setup, graph_kwargs, status, reason
) -> None:
    run_sync(
        db, MemoryGraph({DC: [[item("a"), item("b")]], "mobileApp": [[item("m")]]}), "contoso", "dc-apps"
    )
    broken = MemoryGraph({DC: [[item("a")]], "mobileApp": []}, **graph_kwargs)
    result = run_sync(db, broken, "contoso", "dc-apps")
    assert result.status == status
    missing = _missing(conn, TENANT_A, "dc-apps")
    assert missing.items, "items not observed by a broken run are still reported, with low confidence"
    assert {m.confidence for m in missing.items} == {"low"}
    assert {m.reason for m in missing.items} <= reason


def test_item_errors_alone_lower_confidence(db: Database, conn, setup) -> None:
    run_sync(db, MemoryGraph({DC: [[item("a"), item("b")]]}), "contoso", "dc")
    result = run_sync(db, MemoryGraph({DC: [[item("a"), {"displayName": "no id"}]]}), "contoso", "dc")
    assert result.status == "succeeded" and result.had_errors
    assert [(m.external_id, m.confidence, m.reason) for m in _missing(conn, TENANT_A, "dc").items] == [
        ("b", "low", "run_incomplete")
    ]


def test_skipped_runs_never_count_as_the_reference(db: Database, conn, setup) -> None:
    first = run_sync(db, MemoryGraph({DC: [[item("a")]]}), "contoso", "dc")
    conn.execute(
        """INSERT INTO inventory_sync_runs (tenant_id, selection_name, selection_hash, selection_payload,
               status, error_codes, finished_at)
           SELECT tenant_id, selection_name, selection_hash, selection_payload, 'skipped', '{lock_held}',
                  now()
           FROM inventory_sync_runs WHERE id = %s""",
        (first.sync_run_id,),
    )
    conn.commit()
    assert _missing(conn, TENANT_A, "dc").run_id == first.sync_run_id


def test_tenants_with_identical_ids_stay_separate(db: Database, conn, setup) -> None:
    run_sync(db, MemoryGraph({DC: [[item("same", "A's"), item("only-a")]]}), "contoso", "dc")
    run_sync(db, MemoryGraph({DC: [[item("same", "B's"), item("only-b")]]}), "fabrikam", "dc")
    a, b = tenant_scope(conn, TENANT_A), tenant_scope(conn, TENANT_B)
    assert [(i.external_id, i.display_name) for i in list_items(a)] == [
        ("only-a", "Policy only-a"),
        ("same", "A's"),
    ]
    assert [(i.external_id, i.display_name) for i in list_items(b)] == [
        ("only-b", "Policy only-b"),
        ("same", "B's"),
    ]
    # B's next run no longer sees "same": missing for B only, never for A.
    run_sync(db, MemoryGraph({DC: [[item("only-b")]]}), "fabrikam", "dc")
    assert [m.external_id for m in _missing(conn, TENANT_B, "dc").items] == ["same"]
    assert _missing(conn, TENANT_A, "dc").items == []
    # A's later failed run makes A's items low-confidence missing, and leaves B's answer alone.
    run_sync(db, MemoryGraph(auth_failure=ErrorCode.AUTH_INVALID_CLIENT), "contoso", "dc")
    assert {(m.external_id, m.confidence) for m in _missing(conn, TENANT_A, "dc").items} == {
        ("same", "low"),
        ("only-a", "low"),
    }
    assert [(m.external_id, m.confidence) for m in _missing(conn, TENANT_B, "dc").items] == [("same", "high")]


def test_scope_requires_a_registered_valid_tenant(db: Database, conn, setup) -> None:
    with pytest.raises(TenantAtlasError) as info:
        tenant_scope(conn, "not-a-guid")
    assert info.value.code == ErrorCode.INVALID_TENANT_ID
    with pytest.raises(TenantAtlasError) as info:
        tenant_scope(conn, "33333333-3333-4333-8333-333333333333")
    assert info.value.code == ErrorCode.UNKNOWN_TENANT
    assert tenant_scope(conn, TENANT_A.upper()).tenant_id == TENANT_A
