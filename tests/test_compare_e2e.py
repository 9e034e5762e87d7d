"""Compare end to end: two emulated tenants sharing one baseline (every id different), real snapshot runs
through the production Graph client over TLS, the real PostgreSQL, the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from tenantatlas_pipelines.cli import cli
from tenantatlas_pipelines.compare import Match
from tenantatlas_pipelines.compare.demo import (
    BRANCH_KEY,
    COMPARE_DEMO_TENANTS,
    DEMO_SELECTION,
    GOLDEN_KEY,
    setup_compare_demo,
)
from tenantatlas_pipelines.compare.run import CompareRequest, compare_tenants
from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.emulator import Emulator
from tenantatlas_pipelines.graph.client import GraphClient
from tenantatlas_pipelines.snapshots.run import run_snapshot
from tenantatlas_pipelines.store.tenants import add_tenant
from tests.test_sync_e2e import settings_for

pytestmark = pytest.mark.slow


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Emulator]:
    with Emulator(state_dir=tmp_path / "emu", tenants=COMPARE_DEMO_TENANTS) as emu:
        yield emu


@pytest.fixture
def graph(pair: Emulator) -> Iterator[GraphClient]:
    with GraphClient(settings_for(pair)) as client:
        yield client


def _register(conn: psycopg.Connection) -> None:
    for spec in COMPARE_DEMO_TENANTS:
        add_tenant(conn, spec.tenant_id, spec.key, spec.name)


def _snapshot_both(db: Database, graph: GraphClient) -> None:
    for key in (GOLDEN_KEY, BRANCH_KEY):
        result = run_snapshot(db, graph, key, DEMO_SELECTION)
        assert result.status == "succeeded", result


def test_one_baseline_in_two_tenants_compares_identical(
    db: Database, conn: psycopg.Connection, pair: Emulator, graph: GraphClient
) -> None:
    golden, branch = COMPARE_DEMO_TENANTS
    # the premise: every object id differs between the two tenants
    ids = {o["id"] for o in pair.objects(golden.tenant_id, "deviceConfiguration")}
    assert ids.isdisjoint(o["id"] for o in pair.objects(branch.tenant_id, "deviceConfiguration"))
    _register(conn)
    _snapshot_both(db, graph)
    result = compare_tenants(conn, CompareRequest(GOLDEN_KEY, BRANCH_KEY, DEMO_SELECTION))
    not_identical = [i.as_dict() for i in result.items if i.match is not Match.IDENTICAL]
    assert not_identical == [], json.dumps(not_identical, indent=1)[:3000]
    assert len(result.items) == len(result.source.objects) == len(result.target.objects) > 40
    # assignments with groups and filters were compared (by name), not skipped
    assert any(a.get("group_id") for o in result.source.objects for a in o.content.get("assignments", []))
