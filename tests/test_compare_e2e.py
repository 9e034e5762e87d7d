"""Compare end to end: two emulated tenants sharing one baseline (every id different), real snapshot runs
through the production Graph client over TLS, the real PostgreSQL, the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

# Loaded now, with the test process's environment: `demo` below would otherwise be the first to load it,
# under this test's TENANTATLAS_HOME, and its resources would keep reading that variable in later tests.
import tenantatlas_pipelines.definitions  # noqa: F401
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
from tenantatlas_pipelines.store.selections import get_selection
from tenantatlas_pipelines.store.tenants import add_tenant
from tenantatlas_pipelines.ui import compare_page
from tenantatlas_pipelines.ui import queries as ui_queries
from tenantatlas_pipelines.ui.reader import AnalystReader
from tests.test_dagster_cli import GRAPH_VARS
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

    # The UI's Compare page reads the same sides through its read-only analyst session: same objects, same
    # rewriting, same references, including an assignment filter that is both an object and a reference
    # (the page once labelled its id like any other object's, where the CLI kept it as a reference).
    reader = AnalystReader(db)
    selection_hash = get_selection(conn, DEMO_SELECTION).selection_hash
    try:
        for side in (result.source, result.target):
            objects, refs = {o.external_id for o in side.objects}, {r.ref_id for r in side.references}
            assert objects & refs, "the premise: some object is also referenced (an assignment filter)"
            with reader.session() as analyst:
                info = ui_queries.get_tenant(analyst, side.tenant_key)
                assert info is not None
                page = compare_page.load_side(analyst, info, selection_hash)
            assert page == side
    finally:
        reader.close()


def test_demo_scenario_through_real_snapshots_and_the_cli(
    db: Database, conn: psycopg.Connection, pair: Emulator, graph: GraphClient
) -> None:
    _register(conn)
    golden, branch = COMPARE_DEMO_TENANTS
    # a group the golden-only policy is assigned to is renamed in the branch: its creation is blocked
    demo = setup_compare_demo(pair, branch.tenant_id)
    removed = next(o for o in pair.objects(golden.tenant_id, "deviceCompliancePolicy")
                   if o["displayName"] == demo.removed_policy)
    group_ids = [a["target"]["groupId"] for a in pair.assignments(golden.tenant_id, "deviceCompliancePolicy",
                                                                   removed["id"]) if "groupId" in a["target"]]
    if not group_ids:
        pair.add_assignment(golden.tenant_id, "deviceCompliancePolicy", removed["id"], "group",
                            group_id=pair.groups(golden.tenant_id)[0]["id"])
        group_ids = [pair.groups(golden.tenant_id)[0]["id"]]
    name = next(g["displayName"] for g in pair.groups(golden.tenant_id) if g["id"] == group_ids[0])
    twin = next(g for g in pair.groups(branch.tenant_id) if g["displayName"] == name)
    pair.update_group(branch.tenant_id, twin["id"], {"displayName": f"{name} (branch)"})
    _snapshot_both(db, graph)

    out = CliRunner().invoke(cli, ["compare", "--source", GOLDEN_KEY, "--target", BRANCH_KEY,
                                   "--selection", DEMO_SELECTION, "--plan", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    items = {(i["policy_type"], i["display_name"]): i for i in doc["items"]}
    changed = items[("settingsCatalogPolicy", demo.changed_policy)]
    assert changed["match"] == "different"
    assert [c["path"] for c in changed["changes"]] == [f"settings.{demo.changed_setting}"]
    assert items[("deviceCompliancePolicy", demo.removed_policy)]["match"] == "only_in_source"
    dup = items[("deviceConfiguration", demo.duplicated_name)]
    assert dup["match"] == "ambiguous" and len(dup["target_external_ids"]) == 2 and dup["changes"] == []
    plan = {(p["policy_type"], p["display_name"]): p for p in doc["plan"]}
    blocked = plan[("deviceCompliancePolicy", demo.removed_policy)]
    assert blocked["action"] == "blocked"
    assert {"kind": "group", "name": name, "source_id": group_ids[0]} in blocked["blocked_by"]
    assert plan[("settingsCatalogPolicy", demo.changed_policy)]["action"] in ("update", "blocked")
    # every other difference is the renamed group, seen by name on the objects that use it
    others = [i for k, i in items.items() if i["match"] == "different"
              and k != ("settingsCatalogPolicy", demo.changed_policy)]
    assert all(name in json.dumps(i["changes"], ensure_ascii=False) for i in others)


def test_demo_prints_the_golden_and_branch_compare(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENANTATLAS_HOME", str(tmp_path))
    for var in ("DAGSTER_HOME", *GRAPH_VARS):
        monkeypatch.delenv(var, raising=False)
    out = CliRunner().invoke(cli, ["demo", "--scale", "0.02", "--selection", "all", "--tenant", GOLDEN_KEY,
                                   "--tenant", BRANCH_KEY, "--no-drift", "--json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    compared = next(r for r in rows if r["round"] == "compare")
    assert compared["source"]["tenant_key"] == GOLDEN_KEY and compared["target"]["tenant_key"] == BRANCH_KEY
    counts = compared["counts"]
    assert (counts["different"], counts["only_in_source"], counts["only_in_target"], counts["ambiguous"]) == (
        1, 1, 0, 1)
    assert counts["identical"] > 40
    assert [p["action"] for p in compared["plan"]] == ["create", "update"]
