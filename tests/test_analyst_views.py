"""The analyst views (sql/030) answer their questions correctly on a small, known fleet."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.rows import dict_row

from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.errors import ErrorCode
from tenantatlas_pipelines.policy_types import REGISTRY
from tenantatlas_pipelines.store.selections import add_selection
from tenantatlas_pipelines.store.tenants import add_tenant
from tenantatlas_pipelines.sync import run_sync
from tests.support import TENANT_A, TENANT_B, MemoryGraph, item

DC, APP = "deviceConfiguration", "mobileApp"


@pytest.fixture
def fleet(db: Database, conn: psycopg.Connection) -> None:
    add_tenant(conn, TENANT_A, "contoso", "Contoso")
    add_tenant(conn, TENANT_B, "fabrikam", "Fabrikam")
    add_selection(conn, "dc-apps", [DC, APP])
    run_sync(db, MemoryGraph({DC: [[item("a"), item("b")]], APP: [[item("m")]]}), "contoso", "dc-apps")
    run_sync(
        db, MemoryGraph({DC: [[item("a")]]}, failures={APP: ErrorCode.GRAPH_FORBIDDEN}), "contoso", "dc-apps"
    )
    run_sync(db, MemoryGraph({DC: [[item("x")]], APP: [[item("n")]]}), "fabrikam", "dc-apps")
    run_sync(db, MemoryGraph({DC: [[item("x")]], APP: [[]]}), "fabrikam", "dc-apps")


def rows(conn: psycopg.Connection, query: str) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query).fetchall()


def test_latest_runs(conn, fleet) -> None:
    latest = rows(
        conn,
        "SELECT tenant_key, selection_name, status, error_codes, items_observed "
        "FROM analyst_latest_runs ORDER BY tenant_key",
    )
    assert latest == [
        {
            "tenant_key": "contoso",
            "selection_name": "dc-apps",
            "status": "partial",
            "error_codes": ["graph_forbidden"],
            "items_observed": 1,
        },
        {
            "tenant_key": "fabrikam",
            "selection_name": "dc-apps",
            "status": "succeeded",
            "error_codes": [],
            "items_observed": 1,
        },
    ]


def test_missing_with_confidence_and_reason(conn, fleet) -> None:
    missing = rows(
        conn,
        "SELECT tenant_key, selection_name, policy_type, external_id, confidence, reason "
        "FROM analyst_missing_items ORDER BY tenant_key, policy_type, external_id",
    )
    assert missing == [
        {
            "tenant_key": "contoso",
            "selection_name": "dc-apps",
            "policy_type": DC,
            "external_id": "b",
            "confidence": "low",
            "reason": "run_incomplete",
        },
        {
            "tenant_key": "contoso",
            "selection_name": "dc-apps",
            "policy_type": APP,
            "external_id": "m",
            "confidence": "low",
            "reason": "type_failed",
        },
        {
            "tenant_key": "fabrikam",
            "selection_name": "dc-apps",
            "policy_type": APP,
            "external_id": "n",
            "confidence": "high",
            "reason": "not_observed",
        },
    ]


def test_current_inventory_per_tenant_and_type(conn, fleet) -> None:
    current = rows(
        conn,
        "SELECT tenant_key, policy_type, items_current, items_not_seen_in_last_read, "
        "items_known FROM analyst_inventory_current ORDER BY tenant_key, policy_type",
    )
    assert current == [
        {
            "tenant_key": "contoso",
            "policy_type": DC,
            "items_current": 1,
            "items_not_seen_in_last_read": 1,
            "items_known": 2,
        },
        # The app read failed last time: m is still current as of the last successful app read.
        {
            "tenant_key": "contoso",
            "policy_type": APP,
            "items_current": 1,
            "items_not_seen_in_last_read": 0,
            "items_known": 1,
        },
        {
            "tenant_key": "fabrikam",
            "policy_type": DC,
            "items_current": 1,
            "items_not_seen_in_last_read": 0,
            "items_known": 1,
        },
        {
            "tenant_key": "fabrikam",
            "policy_type": APP,
            "items_current": 0,
            "items_not_seen_in_last_read": 1,
            "items_known": 1,
        },
    ]


def test_coverage_per_tenant_and_type(conn, fleet) -> None:
    coverage = {(r["tenant_key"], r["policy_type"]): r for r in rows(conn, "SELECT * FROM analyst_coverage")}
    assert len(coverage) == 2 * len(REGISTRY), "every tenant x every registry type"
    app = coverage[("contoso", APP)]
    assert app["last_success_at"] is not None and app["last_success_items"] == 1
    assert (app["last_attempt_status"], app["last_attempt_error_code"]) == ("failed", "graph_forbidden")
    assert app["last_success_age"].total_seconds() >= 0
    never = coverage[("contoso", "roleScopeTag")]
    assert never["last_success_at"] is None and never["last_attempt_status"] is None
    assert coverage[("fabrikam", APP)]["last_attempt_status"] == "succeeded"
