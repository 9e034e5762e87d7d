"""Dependency graph: pure derivation, then the store (real PostgreSQL) through synthetic snapshots —
every edge kind, exclusions and filter modes, dangling references, name ambiguity, tenant isolation,
whole-partition replacement, selections that overlap, and the analyst views."""

from __future__ import annotations

import psycopg
import pytest

from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.dependencies import Relation, TargetType, edges_of_object, pick_target
from tenantatlas_pipelines.dependencies.derive import derive_partition, partition_dangling
from tenantatlas_pipelines.errors import ErrorCode, TenantAtlasError
from tenantatlas_pipelines.snapshots import GroupType, Reference, ReferenceIndex, RefKind, references_in
from tenantatlas_pipelines.snapshots.synthetic import (
    SyntheticObject,
    group_assignment,
    insert_snapshot,
    virtual_assignment,
)
from tenantatlas_pipelines.store import dependency_edges as store
from tenantatlas_pipelines.store.scope import ANALYST_ROLE, release, tenant_scope
from tenantatlas_pipelines.store.selections import add_selection
from tenantatlas_pipelines.store.tenants import add_tenant
from tests.support import TENANT_A, TENANT_B

G_SALES = "11111111-1111-1111-1111-111111111111"
G_KIOSK = "22222222-2222-2222-2222-222222222222"
G_GONE = "33333333-3333-3333-3333-333333333333"
REFS = [
    Reference(RefKind.GROUP, G_SALES, "Sales", GroupType.SECURITY),
    Reference(RefKind.GROUP, G_KIOSK, "Kiosks", GroupType.DYNAMIC),
    Reference(RefKind.GROUP, G_GONE, resolved=False),
    Reference(RefKind.ASSIGNMENT_FILTER, "f-win", "Windows only"),
    Reference(RefKind.ASSIGNMENT_FILTER, "f-byod", "No BYOD"),
    Reference(RefKind.SCOPE_TAG, "0", "Default"),
    Reference(RefKind.SCOPE_TAG, "7", "Berlin"),
]
TYPES = ["deviceConfiguration", "mobileApp", "assignmentFilter", "conditionalAccessPolicy"]


def _objects() -> list[SyntheticObject]:
    return [
        SyntheticObject("deviceConfiguration", "dc-1",
                        {"displayName": "Wi-Fi", "roleScopeTagIds": ["0", "7"]},
                        [group_assignment(G_SALES, filter_id="f-win", filter_mode="include"),
                         group_assignment(G_KIOSK, exclude=True),
                         virtual_assignment("allDevices") | {"target": {
                             "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget",
                             "deviceAndAppManagementAssignmentFilterId": "f-byod",
                             "deviceAndAppManagementAssignmentFilterType": "exclude"}}]),
        SyntheticObject("mobileApp", "app-1", {"displayName": "Teams"},
                        [group_assignment(G_SALES, intent="required"),
                         group_assignment(G_GONE, intent="available"),
                         virtual_assignment("allLicensedUsers") | {"intent": "available"}]),
        SyntheticObject("assignmentFilter", "f-win", {"displayName": "Windows only", "roleScopeTags": ["7"]}),
        SyntheticObject("conditionalAccessPolicy", "ca-1", {"displayName": "MFA", "conditions": {"users": {
            "includeUsers": ["All"], "includeGroups": [G_KIOSK], "excludeGroups": [G_SALES]}}}),
    ]


def _by(edges, **match):
    return [e for e in edges if all((e[k] if isinstance(e, dict) else getattr(e, k)) == v
                                    for k, v in match.items())]


# --- pure ----------------------------------------------------------------------------------------------
def test_every_edge_kind_from_one_document() -> None:
    from tenantatlas_pipelines.snapshots.capture import capture_object

    refs = ReferenceIndex(REFS)
    edges = []
    for o in _objects():
        raw = {**o.content, "id": o.external_id}
        doc = capture_object(o.policy_type, raw, assignments=o.assignments).document
        found = edges_of_object(o.policy_type, o.external_id, o.content["displayName"], doc, refs)
        assert found.unknown_targets == 0
        edges += found.edges
    kinds = {(e.relation, e.target_type) for e in edges}
    assert kinds == {
        (Relation.INCLUDE, TargetType.GROUP), (Relation.EXCLUDE, TargetType.GROUP),
        (Relation.INCLUDE, TargetType.ALL_DEVICES), (Relation.INCLUDE, TargetType.ALL_LICENSED_USERS),
        (Relation.INCLUDE, TargetType.ALL_USERS), (Relation.FILTER, TargetType.ASSIGNMENT_FILTER),
        (Relation.SCOPE_TAG, TargetType.SCOPE_TAG),
    }
    win = _by(edges, target_id="f-win")[0]
    assert (win.filter_mode, win.via_target_type, win.via_target_id) == ("include", "group", G_SALES)
    byod = _by(edges, target_id="f-byod")[0]
    assert (byod.filter_mode, byod.via_target_type, byod.target_name) == ("exclude", "all_devices", "No BYOD")
    kiosk = _by(edges, external_id="dc-1", target_id=G_KIOSK)[0]
    assert (kiosk.relation, kiosk.group_type, kiosk.target_name) == (Relation.EXCLUDE, "dynamic", "Kiosks")
    assert _by(edges, external_id="app-1", target_id=G_SALES)[0].intent == "required"
    gone = _by(edges, target_id=G_GONE)[0]
    assert (gone.resolved, gone.target_name, gone.intent) == (False, None, "available")
    assert _by(edges, external_id="f-win", relation=Relation.SCOPE_TAG)[0].target_name == "Berlin"
    ca = _by(edges, external_id="ca-1")
    assert {(e.relation, e.target_type, e.target_id) for e in ca} == {
        (Relation.INCLUDE, TargetType.ALL_USERS, "all_users"), (Relation.INCLUDE, TargetType.GROUP, G_KIOSK),
        (Relation.EXCLUDE, TargetType.GROUP, G_SALES)}
    # Conditional access groups are references the snapshot resolves.
    ca_doc = {"conditions": {"users": {"includeGroups": [G_KIOSK], "excludeGroups": [G_SALES]}}}
    assert references_in(ca_doc) == {(RefKind.GROUP, G_KIOSK), (RefKind.GROUP, G_SALES)}


def test_unrecorded_reference_is_unknown_not_dangling_and_new_targets_are_counted() -> None:
    doc = {"assignments": [{"target_kind": "group", "group_id": "g-x"},
                           {"target_kind": "configuration_manager_collection"}]}
    found = edges_of_object("deviceConfiguration", "dc", None, doc, ReferenceIndex([]))
    assert [e.resolved for e in found.edges] == [None] and found.unknown_targets == 1


def test_pick_target_id_name_and_ambiguity() -> None:
    cands = [("g-1", "Sales"), ("g-2", "sales "), ("g-3", "HR")]
    assert pick_target("group", "g-3", cands) == "g-3"
    assert pick_target("group", " hr", cands) == "g-3"
    assert pick_target("group", "Finance", cands) is None
    with pytest.raises(TenantAtlasError) as err:
        pick_target("group", "SALES", cands)
    assert err.value.code is ErrorCode.AMBIGUOUS_TARGET_NAME
    assert "g-1" in err.value.message and "g-2" in err.value.message


# --- store -----------------------------------------------------------------------------------------------
@pytest.fixture
def tenants(db: Database, conn: psycopg.Connection):
    add_tenant(conn, TENANT_A, "contoso", "Contoso")
    add_tenant(conn, TENANT_B, "fabrikam", "Fabrikam")
    return add_selection(conn, "deps", TYPES)


def test_derived_partition_answers_both_directions(db: Database, conn, tenants) -> None:
    scope = tenant_scope(conn, TENANT_A)
    sid = insert_snapshot(scope, tenants, _objects(), references=REFS)
    result = derive_partition(db, "contoso", "deps", dagster_run_id="r-1")
    assert result.header is not None and result.header.snapshot_run_id == sid
    assert result.header.edges == len(result.derived.edges) == 14 and result.header.dangling == 1

    sales = store.edges_using(scope, "group", G_SALES)
    assert {(e["policy_type"], e["relation"]) for e in sales} == {
        ("deviceConfiguration", "include"), ("mobileApp", "include"), ("conditionalAccessPolicy", "exclude")}
    assert all(e["target_name"] == "Sales" and e["group_type"] == "security" and e["snapshot_id"] == sid
               and e["selection_name"] == "deps" for e in sales)
    flt = store.edges_using(scope, "assignment_filter", "f-byod")
    assert [(e["filter_mode"], e["via_target_type"], e["display_name"]) for e in flt] == [
        ("exclude", "all_devices", "Wi-Fi")]
    tagged = store.edges_using(scope, "scope_tag", "7")
    assert {e["external_id"] for e in tagged} == {"dc-1", "f-win"}  # filter -> scope tag too
    uses = store.edges_of_object(scope, "mobileApp", "app-1")
    assert {(e["target_type"], e["intent"], e["resolved"]) for e in uses} == {
        ("group", "required", True), ("group", "available", False), ("all_licensed_users", "available", True)}
    assert store.target_candidates(scope, "group", "kiosks") == [(G_KIOSK, "Kiosks")]
    # The removed group stays an edge, queryable by id, and is what dangles.
    gone = store.edges_using(scope, "group", G_GONE)
    assert [(e["external_id"], e["resolved"], e["target_name"]) for e in gone] == [("app-1", False, None)]
    assert [e["target_id"] for e in store.dangling_edges(scope)] == [G_GONE]
    header, listed = partition_dangling(db, "contoso", "deps")
    assert header is not None and header.dangling == 1 and [e["target_id"] for e in listed] == [G_GONE]


def test_group_removed_in_a_later_snapshot_becomes_dangling_and_stays_queryable(db, conn, tenants) -> None:
    scope = tenant_scope(conn, TENANT_A)
    insert_snapshot(scope, tenants, _objects(), references=REFS)
    derive_partition(db, "contoso", "deps")
    assert all(e["resolved"] for e in store.edges_using(scope, "group", G_KIOSK))
    later = [r if r.ref_id != G_KIOSK else Reference(RefKind.GROUP, G_KIOSK, resolved=False) for r in REFS]
    second = insert_snapshot(scope, tenants, _objects(), references=later)
    derive_partition(db, "contoso", "deps")
    kiosk = store.edges_using(scope, "group", G_KIOSK)
    assert len(kiosk) == 2 and all(e["resolved"] is False and e["snapshot_id"] == second for e in kiosk)
    assert {e["target_id"] for e in store.dangling_edges(scope)} == {G_GONE, G_KIOSK}
    # Replaced whole: no edge of the first snapshot is left.
    rows = conn.execute("SELECT DISTINCT snapshot_run_id FROM dependency_edges").fetchall()
    assert rows == [(second,)]


def test_a_failed_snapshot_is_never_the_source_of_the_graph(db, conn, tenants) -> None:
    scope = tenant_scope(conn, TENANT_A)
    failed = {t: "graph_forbidden" for t in TYPES}
    insert_snapshot(scope, tenants, [], status="failed", failed_types=failed)
    nothing = derive_partition(db, "contoso", "deps")
    assert nothing.derived is None and nothing.header is None
    sid = insert_snapshot(scope, tenants, _objects(), references=REFS)
    derive_partition(db, "contoso", "deps")
    insert_snapshot(scope, tenants, [], status="failed", failed_types=failed)
    result = derive_partition(db, "contoso", "deps")
    assert result.header is not None and result.header.snapshot_run_id == sid
    assert len(store.edges_using(scope, "group", G_SALES)) == 3


def test_a_name_two_groups_carry_is_an_error_listing_both(db, conn, tenants) -> None:
    scope = tenant_scope(conn, TENANT_A)
    twins = [Reference(RefKind.GROUP, G_SALES, "Sales", GroupType.SECURITY),
             Reference(RefKind.GROUP, G_KIOSK, "sales", GroupType.MICROSOFT365)]
    insert_snapshot(scope, tenants, [SyntheticObject("deviceConfiguration", "dc-1", {"displayName": "x"},
                                                     [group_assignment(G_SALES), group_assignment(G_KIOSK)])],
                    references=twins)
    derive_partition(db, "contoso", "deps")
    with pytest.raises(TenantAtlasError) as err:
        pick_target("group", "Sales", store.target_candidates(scope, "group", "Sales"))
    assert err.value.code is ErrorCode.AMBIGUOUS_TARGET_NAME
    assert G_SALES in err.value.message and G_KIOSK in err.value.message


def test_same_group_id_in_two_tenants_stays_two_edges(db, conn, tenants) -> None:
    for tenant_id, name in ((TENANT_A, "Sales A"), (TENANT_B, "Sales B")):
        scope = tenant_scope(conn, tenant_id)
        obj = SyntheticObject("deviceConfiguration", "dc-1", {"displayName": "x"},
                              [group_assignment(G_SALES)])
        insert_snapshot(scope, tenants, [obj],
                        references=[Reference(RefKind.GROUP, G_SALES, name, GroupType.SECURITY)])
    derive_partition(db, "contoso", "deps")
    derive_partition(db, "fabrikam", "deps")
    a = store.edges_using(tenant_scope(conn, TENANT_A), "group", G_SALES)
    b = store.edges_using(tenant_scope(conn, TENANT_B), "group", G_SALES)
    assert [e["target_name"] for e in a] == ["Sales A"] and [e["target_name"] for e in b] == ["Sales B"]
    release(conn)
    both = conn.execute("SELECT count(*) FROM dependency_edges WHERE target_id = %s", (G_SALES,))
    assert both.fetchone() == (2,)
    # Row-level security: the pipeline role bound to one tenant sees only its edge, even without a filter.
    scope = tenant_scope(conn, TENANT_A)
    assert scope.conn.execute("SELECT count(*) FROM dependency_edges").fetchone() == (1,)


def test_an_object_in_two_selections_answers_from_its_newest_snapshot(db, conn, tenants) -> None:
    narrow = add_selection(conn, "narrow", ["deviceConfiguration"])
    scope = tenant_scope(conn, TENANT_A)
    insert_snapshot(scope, tenants, _objects(), references=REFS)
    derive_partition(db, "contoso", "deps")
    # A newer snapshot of another selection sees dc-1 without its Sales assignment.
    newer = insert_snapshot(scope, narrow, [SyntheticObject(
        "deviceConfiguration", "dc-1", {"displayName": "Wi-Fi"}, [group_assignment(G_KIOSK, exclude=True)])],
        references=REFS)
    derive_partition(db, "contoso", "narrow")
    sales = store.edges_using(scope, "group", G_SALES)
    assert {e["external_id"] for e in sales} == {"app-1", "ca-1"}
    dc = store.edges_of_object(scope, "deviceConfiguration", "dc-1")
    assert [(e["target_id"], e["snapshot_id"], e["selection_name"]) for e in dc] == [
        (G_KIOSK, newer, "narrow")]


def test_analyst_views_across_tenants(db, conn, tenants) -> None:
    for tenant_id, key in ((TENANT_A, "contoso"), (TENANT_B, "fabrikam")):
        insert_snapshot(tenant_scope(conn, tenant_id), tenants, _objects(), references=REFS)
        derive_partition(db, key, "deps")
    release(conn)
    conn.execute(f"SET ROLE {ANALYST_ROLE}")
    try:
        dangling = conn.execute(
            "SELECT tenant_key, policy_type, external_id, target_id FROM analyst_dangling_references "
            "ORDER BY tenant_key").fetchall()
        assert dangling == [("contoso", "mobileApp", "app-1", G_GONE),
                            ("fabrikam", "mobileApp", "app-1", G_GONE)]
        usage = conn.execute(
            "SELECT objects, includes, excludes, group_type FROM analyst_group_usage "
            "WHERE tenant_key = 'contoso' AND group_id = %s", (G_SALES,)).fetchone()
        assert usage == (3, 2, 1, "security")
        flt = conn.execute("SELECT include_mode, exclude_mode FROM analyst_filter_usage "
                           "WHERE tenant_key = 'contoso' ORDER BY filter_id").fetchall()
        assert flt == [(0, 1), (1, 0)]  # f-byod, f-win
        tag = conn.execute("SELECT objects, assignment_filters, scope_tag_name FROM analyst_scope_tag_usage "
                           "WHERE tenant_key = 'fabrikam' AND scope_tag_id = '7'").fetchone()
        assert tag == (2, 1, "Berlin")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM dependency_edges")
    finally:
        conn.rollback()
        conn.execute("RESET ROLE")


def test_replacement_is_one_transaction(db, conn, tenants, monkeypatch) -> None:
    scope = tenant_scope(conn, TENANT_A)
    insert_snapshot(scope, tenants, _objects(), references=REFS)
    derive_partition(db, "contoso", "deps")
    before = store.edges_using(scope, "group", G_SALES)
    insert_snapshot(scope, tenants, _objects()[:1], references=REFS)

    def broken(*args, **kwargs):
        raise RuntimeError("database went away mid-insert")

    monkeypatch.setattr(store, "insert_edges", broken)
    with pytest.raises(RuntimeError):
        derive_partition(db, "contoso", "deps")
    assert store.edges_using(scope, "group", G_SALES) == before
