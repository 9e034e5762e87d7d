"""The dependency graph end to end: real snapshot runs (production GraphClient over TLS, MSAL) against
the emulator's content, derived and published in PostgreSQL, read through the CLI and through Dagster."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from dagster import AssetKey, instance_for_test

from tenantatlas_pipelines.cli import cli
from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.defs.partitions import PartitionRef
from tenantatlas_pipelines.dependencies.derive import derive_partition
from tenantatlas_pipelines.emulator import Emulator
from tenantatlas_pipelines.graph.client import GraphClient
from tenantatlas_pipelines.snapshots.assignments import target_kind
from tenantatlas_pipelines.snapshots.fetch import ASSIGNABLE
from tenantatlas_pipelines.snapshots.references import group_type_of
from tenantatlas_pipelines.snapshots.run import run_snapshot
from tenantatlas_pipelines.store import dependency_edges as store
from tenantatlas_pipelines.store.scope import tenant_scope
from tenantatlas_pipelines.store.snapshot_objects import objects_of_snapshot
from tests.test_snapshot_e2e import contoso, graph  # noqa: F401  (fixtures)

NO_FILTER = "00000000-0000-0000-0000-000000000000"
KIND = {"group": ("include", "group"), "exclusion_group": ("exclude", "group"),
        "all_devices": ("include", "all_devices"), "all_licensed_users": ("include", "all_licensed_users")}


def _truth(emu: Emulator, tenant_id: str, policy_type: str, external_id: str) -> set[tuple[Any, ...]]:
    """The edges an object's raw Graph assignments imply, computed from the emulator's own state."""
    out: set[tuple[Any, ...]] = set()
    for a in emu.assignments(tenant_id, policy_type, external_id):
        target = a["target"]
        relation, target_type = KIND[target_kind(target["@odata.type"])]
        target_id = target.get("groupId") or target_type
        out.add((relation, target_type, target_id, None, a.get("intent")))
        fid, mode = target.get("deviceAndAppManagementAssignmentFilterId"), target.get(
            "deviceAndAppManagementAssignmentFilterType")
        if fid and fid != NO_FILTER and mode not in (None, "none"):
            out.add(("filter", "assignment_filter", fid, mode, a.get("intent")))
    return out


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_every_edge_kind_from_emulator_content(
    db: Database, conn, emulator: Emulator, graph: GraphClient, contoso: str  # noqa: F811
) -> None:
    snap = run_snapshot(db, graph, "contoso", "content")
    assert snap.status == "succeeded", snap
    result = derive_partition(db, "contoso", "content")
    assert result.derived is not None and result.derived.dangling == 0 and result.derived.unverified == 0
    edges = result.derived.edges
    scope = tenant_scope(conn, contoso)
    groups = {g["id"]: g for g in emulator.groups(contoso)}
    objects = objects_of_snapshot(scope, snap.snapshot_id, with_content=False)
    compared = 0
    for obj in objects:
        mine = [e for e in edges if (e.policy_type, e.external_id) == (obj.policy_type, obj.external_id)]
        if obj.policy_type in ASSIGNABLE:
            got = {(e.relation, e.target_type, e.target_id, e.filter_mode, e.intent)
                   for e in mine if e.relation != "scope_tag"}
            assert got == _truth(emulator, contoso, obj.policy_type, obj.external_id), obj.external_id
            compared += bool(got)
        raw = next(o for o in emulator.objects(contoso, obj.policy_type) if o["id"] == obj.external_id)
        tags = raw.get("roleScopeTagIds") or raw.get("roleScopeTags") or []
        assert {e.target_id for e in mine if e.relation == "scope_tag"} == {str(t) for t in tags}
    assert compared > 10
    for e in edges:
        if e.target_type == "group":  # names and types as Graph has them
            assert e.target_name == groups[e.target_id]["displayName"]
            assert e.group_type == group_type_of(groups[e.target_id])
    kinds = {(e.relation, e.target_type) for e in edges}
    assert kinds >= {("include", "group"), ("exclude", "group"), ("include", "all_devices"),
                     ("include", "all_licensed_users"), ("include", "all_users"),
                     ("filter", "assignment_filter"), ("scope_tag", "scope_tag")}
    assert {e.filter_mode for e in edges if e.relation == "filter"} == {"include", "exclude"}
    assert any(e.intent for e in edges if e.policy_type == "mobileApp")
    assert any(e.policy_type == "assignmentFilter" and e.relation == "scope_tag" for e in edges)
    assert {e.group_type for e in edges if e.target_type == "group"} >= {"security", "dynamic"}
    ca = [e for e in edges if e.policy_type == "conditionalAccessPolicy"]
    assert {(e.relation, e.target_type) for e in ca} >= {("include", "all_users"), ("exclude", "group")}


def test_removed_group_dangles_and_the_cli_answers_both_directions(
    db: Database, conn, emulator: Emulator, graph: GraphClient, contoso: str  # noqa: F811
) -> None:
    run_snapshot(db, graph, "contoso", "content")
    derive_partition(db, "contoso", "content")
    scope = tenant_scope(conn, contoso)
    victim = store.assigned_group(scope)
    assert victim is not None
    gid, name = victim
    before = json.loads(invoke("deps", "--tenant", "contoso", "--group", name, "--json").stdout)
    assert before and {e["target_id"] for e in before} == {gid} and all(e["resolved"] for e in before)
    fields = {"policy_type", "external_id", "display_name", "relation", "target_type", "target_id",
              "target_name", "filter_mode", "intent", "resolved"}
    assert fields <= set(before[0])

    emulator.remove_group(contoso, gid)
    second = run_snapshot(db, graph, "contoso", "content")
    assert second.status == "succeeded" and second.references_unresolved >= 1
    stale = invoke("deps", "--tenant", "contoso", "--dangling", "--json")
    assert "is newer" in stale.stderr and json.loads(stale.stdout) == []  # graph not re-derived yet
    derive_partition(db, "contoso", "content")
    after = json.loads(invoke("deps", "--tenant", "contoso", "--group", gid, "--json").stdout)
    assert {(e["policy_type"], e["external_id"], e["relation"]) for e in after} == {
        (e["policy_type"], e["external_id"], e["relation"]) for e in before}
    assert all(e["resolved"] is False and e["target_name"] is None for e in after)
    dangling = json.loads(invoke("deps", "--tenant", "contoso", "--dangling", "--json").stdout)
    assert {e["target_id"] for e in dangling} == {gid} and len(dangling) == len(after)
    # The other direction: one of those objects still lists the group among what it uses.
    e = after[0]
    uses = json.loads(invoke("deps", "--tenant", "contoso", "--policy-type", e["policy_type"],
                             "--external-id", e["external_id"], "--json").stdout)
    assert any(u["target_id"] == gid and u["resolved"] is False for u in uses)
    table = invoke("deps", "--tenant", "contoso", "--dangling")
    assert table.exit_code == 0 and "DANGLING" in table.stdout


def test_cli_refuses_ambiguous_names_and_bad_invocations(
    db: Database, conn, emulator: Emulator, graph: GraphClient, contoso: str  # noqa: F811
) -> None:
    run_snapshot(db, graph, "contoso", "content")
    derive_partition(db, "contoso", "content")
    scope = tenant_scope(conn, contoso)
    used = sorted({r[0] for r in scope.conn.execute(
        "SELECT target_id FROM dependency_edges WHERE target_type = 'group'").fetchall()})
    assert len(used) >= 2
    emulator.update_group(contoso, used[0], {"displayName": "Twin"})
    emulator.update_group(contoso, used[1], {"displayName": "twin"})
    run_snapshot(db, graph, "contoso", "content")
    derive_partition(db, "contoso", "content")
    out = invoke("deps", "--tenant", "contoso", "--group", "Twin", "--json")
    assert out.exit_code == 2 and "ambiguous_target_name" in out.stderr
    assert used[0] in out.stderr and used[1] in out.stderr
    by_id = json.loads(invoke("deps", "--tenant", "contoso", "--group", used[0], "--json").stdout)
    assert by_id and {e["target_name"] for e in by_id} == {"Twin"}
    nobody = invoke("deps", "--tenant", "contoso", "--group", "no such group", "--json")
    assert nobody.exit_code == 0 and json.loads(nobody.stdout) == []
    assert invoke("deps", "--tenant", "contoso").exit_code == 2
    assert invoke("deps", "--tenant", "contoso", "--dangling", "--group", "x").exit_code == 2
    assert invoke("deps", "--tenant", "contoso", "--policy-type", "mobileApp").exit_code == 2
    unknown = invoke("deps", "--tenant", "contoso", "--policy-type", "nope", "--external-id", "x")
    assert unknown.exit_code == 2 and "unknown_policy_type" in unknown.stderr


@pytest.mark.slow
def test_dagster_asset_publishes_edges_and_warns_on_dangling(
    db: Database, conn, emulator: Emulator, contoso: str, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    from tenantatlas_pipelines.definitions import defs

    for var, value in emulator.client_env().items():
        monkeypatch.setenv(var, value)
    asset = AssetKey("dependency_edges")
    assert defs.resolve_assets_def(asset).asset_deps[asset] == {AssetKey("policy_snapshots")}
    partition = PartitionRef("contoso", "compliance").key  # a seeded selection: a partition
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("tenant", ["contoso"])
        snapshot_job = defs.resolve_job_def("policy_snapshot_job")
        deps_job = defs.resolve_job_def("dependency_edges_job")

        def both() -> Any:
            assert snapshot_job.execute_in_process(partition_key=partition, instance=instance).success
            return deps_job.execute_in_process(partition_key=partition, instance=instance)

        first = both()
        mat = first.asset_materializations_for_node("dependency_edges")[0]
        assert mat.metadata["edges"].value > 0 and mat.metadata["dangling"].value == 0
        checks = first.get_asset_check_evaluations()
        assert [(c.check_name, c.passed) for c in checks] == [("dependency_edges_no_dangling", True)]
        victim = store.assigned_group(tenant_scope(conn, contoso))
        assert victim is not None
        emulator.remove_group(contoso, victim[0])
        second = both()
        assert second.success  # a warning, not a failure
        mat = second.asset_materializations_for_node("dependency_edges")[0]
        assert mat.metadata["dangling"].value >= 1
        check = second.get_asset_check_evaluations()[0]
        assert not check.passed and check.severity.value == "WARN"
        assert check.metadata["dangling"].value == mat.metadata["dangling"].value
