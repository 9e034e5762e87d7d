"""Snapshot runs end to end: the production GraphClient (MSAL + httpx over TLS) against the emulator's
content endpoints, the real PostgreSQL, the run engine's guarantees."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.emulator import SECRET_PREFIX, Emulator, Fault
from tenantatlas_pipelines.graph.client import GraphClient
from tenantatlas_pipelines.policy_types import REGISTRY
from tenantatlas_pipelines.snapshots import RefKind, diff
from tenantatlas_pipelines.snapshots.fetch import ASSIGNABLE, Strategy
from tenantatlas_pipelines.snapshots.run import SNAPSHOT_NAMESPACE, run_snapshot
from tenantatlas_pipelines.store import snapshot_runs
from tenantatlas_pipelines.store.locks import SYNC_NAMESPACE, run_lock
from tenantatlas_pipelines.store.object_versions import versions_of_object
from tenantatlas_pipelines.store.scope import release, tenant_scope
from tenantatlas_pipelines.store.selections import add_selection, get_selection
from tenantatlas_pipelines.store.snapshot_objects import object_in_snapshot, objects_of_snapshot
from tenantatlas_pipelines.store.snapshot_references import references_of_snapshot
from tenantatlas_pipelines.store.tenants import add_tenant
from tests.test_sync_e2e import settings_for

CONTENT_TYPES = ["deviceConfiguration", "settingsCatalogPolicy", "mobileApp", "appConfigurationPolicy",
                 "assignmentFilter", "roleScopeTag", "conditionalAccessPolicy"]


@pytest.fixture
def graph(emulator: Emulator) -> Iterator[GraphClient]:
    with GraphClient(settings_for(emulator)) as client:
        yield client


@pytest.fixture
def contoso(conn: psycopg.Connection, emulator: Emulator) -> str:
    spec = emulator.tenant("contoso")
    add_tenant(conn, spec.tenant_id, spec.key, spec.name)
    add_selection(conn, "content", CONTENT_TYPES)
    return spec.tenant_id


def _expected(emu: Emulator, tenant_id: str, policy_type: str) -> set[str]:
    keep = REGISTRY[policy_type].keep
    return {o["id"] for o in emu.objects(tenant_id, policy_type) if keep is None or keep(o)}


def test_snapshot_captures_everything_and_an_unchanged_tenant_adds_no_versions(
    db: Database, conn, emulator: Emulator, graph: GraphClient, contoso: str
) -> None:
    first = run_snapshot(db, graph, "contoso", "content")
    assert first.status == "succeeded" and not first.had_errors, first
    scope = tenant_scope(conn, contoso)
    objects = objects_of_snapshot(scope, first.snapshot_id)
    for policy_type in CONTENT_TYPES:
        seen = {o.external_id for o in objects if o.policy_type == policy_type}
        assert seen == _expected(emulator, contoso, policy_type), policy_type
    assert first.objects == len(objects) == first.new_versions
    # Assignments: exactly the emulator's, with group and filter names resolved at capture time.
    groups = {g["id"]: g["displayName"] for g in emulator.groups(contoso)}
    checked = 0
    for obj in objects:
        if obj.policy_type not in ASSIGNABLE:
            continue
        stored = {(a["target_kind"], a.get("group_id")) for a in obj.content.get("assignments", [])}
        truth = emulator.assignments(contoso, obj.policy_type, obj.external_id)
        assert len(stored) == len(truth), obj.external_id
        for a in obj.content.get("assignments", []):
            if a.get("group_id"):
                assert a["group_name"] == groups[a["group_id"]]
                checked += 1
    assert checked > 0
    sc = next(o for o in objects if o.policy_type == "settingsCatalogPolicy")
    truth = emulator.settings(contoso, sc.external_id)
    assert set(sc.content["settings"]) >= {s["settingInstance"]["settingDefinitionId"] for s in truth}
    refs = references_of_snapshot(scope, first.snapshot_id)
    assert {r.kind for r in refs} == {RefKind.GROUP, RefKind.ASSIGNMENT_FILTER, RefKind.SCOPE_TAG}
    assert all(r.resolved for r in refs) and first.references == len(refs)
    # Every content read re-orders arrays, bumps versions and timestamps, re-encrypts secrets: nothing new.
    second = run_snapshot(db, graph, "contoso", "content")
    assert second.status == "succeeded" and second.objects == first.objects
    assert second.new_versions == 0, [
        (c.path) for o in objects_of_snapshot(scope, second.snapshot_id)
        for p in [object_in_snapshot(scope, first.snapshot_id, o.policy_type, o.external_id)]
        if p is None or p.content_hash != o.content_hash
        for c in diff(p.content if p else None, o.content)
    ][:10]
    latest = snapshot_runs.latest_succeeded_snapshot(scope, get_selection(conn, "content").selection_hash)
    assert latest is not None and latest.id == second.snapshot_id


def _all_rows_text(db: Database) -> str:
    """Every row of every table as text (as the owner: no row-level security)."""
    parts = []
    with db.connect() as c:
        tables = [r[0] for r in c.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            for (row,) in c.execute(sql.SQL("SELECT row_to_json(t)::text FROM {} t").format(
                    sql.Identifier(table))):
                parts.append(row)
    return "\n".join(parts)


@pytest.mark.parametrize("snapshot_key", [None, "s3cr3t-snapshot-key"])
def test_secrets_are_never_stored_or_logged(
    db: Database, conn, emulator: Emulator, graph: GraphClient, contoso: str, caplog, monkeypatch,
    snapshot_key: str | None,
) -> None:
    if snapshot_key:
        monkeypatch.setenv("TENANTATLAS_SNAPSHOT_KEY", snapshot_key)
    caplog.set_level(logging.DEBUG)
    result = run_snapshot(db, graph, "contoso", "content")
    assert result.status == "succeeded"
    # The emulator's secrets exist (in clear in its store) and were served to us...
    clear = [o for o in emulator.objects(contoso, "deviceConfiguration") if SECRET_PREFIX in str(o)]
    assert clear, "the emulator should serve objects with secrets"
    stored = _all_rows_text(db)
    assert "object_versions" and "[secret]" in stored  # ... and were replaced by markers
    assert SECRET_PREFIX not in stored
    assert SECRET_PREFIX not in caplog.text and SECRET_PREFIX not in str(result.as_dict())
    if snapshot_key:
        assert "[secret]:hmac-sha256:" in stored
        assert snapshot_key not in stored and snapshot_key not in caplog.text
    else:
        assert "hmac-sha256" not in stored


def test_changes_make_new_versions_of_exactly_the_changed_objects(
    db: Database, conn, emulator: Emulator, graph: GraphClient, contoso: str
) -> None:
    first = run_snapshot(db, graph, "contoso", "content")
    scope = tenant_scope(conn, contoso)
    sc_id = sorted(_expected(emulator, contoso, "settingsCatalogPolicy"))[0]
    setting = emulator.settings(contoso, sc_id)[0]["settingInstance"]
    definition = setting["settingDefinitionId"]
    dc_id = sorted(_expected(emulator, contoso, "deviceConfiguration"))[0]
    emulator.rename_object(contoso, "deviceConfiguration", dc_id, "Renamed by the test")
    new_group = emulator.add_group(contoso, {"displayName": "Pilot devices"})
    emulator.add_assignment(contoso, "deviceConfiguration", dc_id, "group", group_id=new_group)
    before = object_in_snapshot(scope, first.snapshot_id, "settingsCatalogPolicy", sc_id)
    assert before is not None
    old_value = before.content["settings"][definition]
    new_value = f"{old_value}_changed" if isinstance(old_value, str) else 12345
    emulator.set_setting(contoso, "settingsCatalogPolicy", sc_id, definition, new_value)
    second = run_snapshot(db, graph, "contoso", "content")
    assert second.status == "succeeded" and second.new_versions == 2, second
    after = object_in_snapshot(scope, second.snapshot_id, "settingsCatalogPolicy", sc_id)
    assert after is not None
    [change] = diff(before.content, after.content, policy_type="settingsCatalogPolicy")
    assert change.segments == ("settings", definition) and change.new == new_value
    dc_before = object_in_snapshot(scope, first.snapshot_id, "deviceConfiguration", dc_id)
    dc_after = object_in_snapshot(scope, second.snapshot_id, "deviceConfiguration", dc_id)
    changes = {c.path: c for c in diff(dc_before.content, dc_after.content)}
    assert changes["displayName"].new == "Renamed by the test"
    assert f"assignments[group:{new_group}]" in changes, list(changes)
    added = changes[f"assignments[group:{new_group}]"]
    assert added.old is None and added.new["group_name"] == "Pilot devices"
    assert [len(v.snapshot_ids) for v in versions_of_object(scope, "deviceConfiguration", dc_id)] == [1, 1]
    # A removed group: the assignment stays, its reference no longer resolves (dangling, not "deleted").
    emulator.remove_group(contoso, new_group)
    third = run_snapshot(db, graph, "contoso", "content")
    assert third.status == "succeeded" and third.new_versions == 0 and third.references_unresolved == 1
    ref = next(r for r in references_of_snapshot(scope, third.snapshot_id, RefKind.GROUP)
               if r.ref_id == new_group)
    assert not ref.resolved and ref.name is None
    dangling = object_in_snapshot(scope, third.snapshot_id, "deviceConfiguration", dc_id)
    record = next(a for a in dangling.content["assignments"] if a.get("group_id") == new_group)
    assert "group_name" not in record


def test_a_failed_type_makes_the_snapshot_partial_never_smaller(
    db: Database, conn, emulator: Emulator, graph: GraphClient, contoso: str
) -> None:
    emulator.inject(Fault("forbidden", policy_type="settingsCatalogPolicy"))
    result = run_snapshot(db, graph, "contoso", "content")
    assert result.status == "partial" and result.had_errors
    assert result.error_codes == ("graph_forbidden",)
    scope = tenant_scope(conn, contoso)
    run = snapshot_runs.get_snapshot(scope, result.snapshot_id)
    assert not run.read_cleanly("settingsCatalogPolicy") and run.read_cleanly("deviceConfiguration")
    assert run.type_outcome("settingsCatalogPolicy").error_code == "graph_forbidden"
    kept = {o.policy_type for o in objects_of_snapshot(scope, result.snapshot_id)}
    assert "settingsCatalogPolicy" not in kept and "deviceConfiguration" in kept
    selection_hash = get_selection(conn, "content").selection_hash
    assert snapshot_runs.latest_succeeded_snapshot(scope, selection_hash) is None


def test_group_resolution_that_cannot_look_fails_the_type_not_the_reference(
    db: Database, conn, emulator: Emulator, graph: GraphClient, contoso: str
) -> None:
    emulator.inject(Fault("forbidden", policy_type="group"))
    result = run_snapshot(db, graph, "contoso", "content")
    assert result.status == "partial" and "graph_forbidden" in result.error_codes
    scope = tenant_scope(conn, contoso)
    # No group was recorded as dangling because we could not look.
    assert not [r for r in references_of_snapshot(scope, result.snapshot_id) if not r.resolved]


def test_batch_strategy_retries_inner_429s_on_their_own_retry_after(
    db: Database, conn, emulator: Emulator, graph: GraphClient, contoso: str
) -> None:
    add_selection(conn, "dc", ["deviceConfiguration", "mobileApp"])
    emulator.set_size(contoso, "deviceConfiguration", 45)  # 3 batches of details
    emulator.clear_log()
    emulator.inject(
        Fault("throttle", policy_type="deviceConfiguration", ratio=0.25, count=6, retry_after="0.2"))
    result = run_snapshot(db, graph, "contoso", "dc", strategy=Strategy.BATCH)
    assert result.status == "succeeded", result
    log = emulator.request_log
    inner = [r for r in log if r.batch is not None]
    assert any(r.status == 429 for r in inner), "the fault should have hit inner requests"
    assert result.throttled >= sum(r.status == 429 for r in log)
    outer = [r for r in log if r.batch is None and r.policy_type == "$batch"]
    assert outer and all(sum(i.batch == o.batch for i in inner) <= 20 for o in outer if o.batch)
    scope = tenant_scope(conn, contoso)
    seen = {o.external_id for o in objects_of_snapshot(scope, result.snapshot_id)}
    expected = _expected(emulator, contoso, "deviceConfiguration") | _expected(emulator, contoso, "mobileApp")
    assert seen == expected
    # The same content whichever way it was read: an expand snapshot adds no version.
    again = run_snapshot(db, graph, "contoso", "dc", strategy=Strategy.EXPAND)
    changed = [
        (o.external_id, [c.path for c in diff(p.content, o.content)])
        for o in objects_of_snapshot(scope, again.snapshot_id)
        for p in [object_in_snapshot(scope, result.snapshot_id, o.policy_type, o.external_id)]
        if p is None or p.content_hash != o.content_hash
    ]
    assert again.status == "succeeded" and again.new_versions == 0, changed


def test_lock_is_per_kind_and_abandoned_snapshots_are_recovered(
    db: Database, conn, emulator: Emulator, graph: GraphClient, contoso: str
) -> None:
    scope = tenant_scope(conn, contoso)
    selection = get_selection(conn, "content")
    stale = snapshot_runs.LEDGER.start_run(scope, selection, dagster_run_id=None, worker="dead:1")
    with db.connect(autocommit=True) as lock_conn, run_lock(
        lock_conn, scope, selection.selection_hash, SYNC_NAMESPACE
    ) as owned:
        assert owned
        ran = run_snapshot(db, graph, "contoso", "content")  # a sync of the pair does not block it
    assert ran.status == "succeeded"
    assert snapshot_runs.get_snapshot(scope, stale).error_codes == ["run_abandoned"]
    with db.connect(autocommit=True) as lock_conn, run_lock(
        lock_conn, scope, selection.selection_hash, SNAPSHOT_NAMESPACE
    ) as owned:
        assert owned
        skipped = run_snapshot(db, graph, "contoso", "content")  # another snapshot does
    assert skipped.status == "skipped" and skipped.error_codes == ("lock_held",)
    release(conn)


def test_administrative_templates_are_read_below_the_object(
    db: Database, conn, emulator: Emulator, graph: GraphClient, contoso: str
) -> None:
    add_selection(conn, "admx", ["groupPolicyConfiguration"])
    first = run_snapshot(db, graph, "contoso", "admx")
    assert first.status == "succeeded", first
    scope = tenant_scope(conn, contoso)
    objects = objects_of_snapshot(scope, first.snapshot_id)
    assert {o.external_id for o in objects} == _expected(emulator, contoso, "groupPolicyConfiguration")
    policy = objects[0]
    truth = emulator.entity(contoso, "groupPolicyConfiguration", policy.external_id)["definitionValues"]
    stored = policy.content["definitionValues"]
    assert set(stored) == {v["definition"]["id"] for v in truth}
    some = truth[0]
    entry = stored[some["definition"]["id"]]
    assert entry["definition"]["displayName"] == some["definition"]["displayName"]
    assert len(entry.get("presentationValues", {})) == len(some["presentationValues"])
    # Real Graph has no one-level $expand for this content: the snapshot asks per policy and per value.
    paths = {r.path for r in emulator.request_log if r.batch is not None}
    assert any(p.endswith("/presentationValues") for p in paths)
    again = run_snapshot(db, graph, "contoso", "admx")
    assert again.new_versions == 0


def test_the_dead_run_sweep_finalises_snapshots_nobody_holds(
    db: Database, conn, emulator: Emulator, contoso: str
) -> None:
    from tenantatlas_pipelines.defs.sensors import RUN_KINDS
    from tenantatlas_pipelines.runs import sweep_dead_runs

    scope = tenant_scope(conn, contoso)
    stale = snapshot_runs.LEDGER.start_run(scope, get_selection(conn, "content"), dagster_run_id=None,
                                           worker="dead:1")
    release(conn)
    assert sweep_dead_runs(conn, RUN_KINDS) == {"snapshot": [stale]}
    assert snapshot_runs.get_snapshot(tenant_scope(conn, contoso), stale).error_codes == ["run_abandoned"]


def test_paging_faults_fail_the_type_as_in_sync_runs(
    db: Database, conn, emulator: Emulator, graph: GraphClient, contoso: str
) -> None:
    emulator.inject(Fault("nextlink_loop", policy_type="settingsCatalogPolicy"))
    emulator.inject(Fault("truncated_page", policy_type="mobileApp"))
    result = run_snapshot(db, graph, "contoso", "content")
    assert result.status == "partial"
    scope = tenant_scope(conn, contoso)
    run = snapshot_runs.get_snapshot(scope, result.snapshot_id)
    assert run.type_outcome("settingsCatalogPolicy").error_code == "graph_paging_loop"
    assert run.type_outcome("mobileApp").error_code == "graph_invalid_response"
    assert run.read_cleanly("deviceConfiguration")


def test_a_bad_page_inside_a_chain_read_ahead_keeps_the_pages_before(
    db: Database, conn, emulator: Emulator, graph: GraphClient, contoso: str
) -> None:
    """Snapshots request pages ahead of decoding them (graph/read_ahead.py): a damaged second page
    still fails the type where it is, and the first page's objects are in the snapshot, counted."""
    emulator.set_size(contoso, "settingsCatalogPolicy", 60)  # 3 pages of 25
    emulator.inject(Fault("truncated_page", policy_type="settingsCatalogPolicy", ratio=0.5, count=1))
    emulator.clear_log()
    result = run_snapshot(db, graph, "contoso", "content")
    assert result.status == "partial"
    scope = tenant_scope(conn, contoso)
    outcome = snapshot_runs.get_snapshot(scope, result.snapshot_id).type_outcome("settingsCatalogPolicy")
    assert outcome is not None and outcome.error_code == "graph_invalid_response"
    kept = {o.external_id for o in objects_of_snapshot(scope, result.snapshot_id,
                                                       policy_types=["settingsCatalogPolicy"])}
    first_page = [o["id"] for o in emulator.objects(contoso, "settingsCatalogPolicy")][:25]
    assert kept == set(first_page) and outcome.objects == 25 and outcome.pages == 1
    listed = [r for r in emulator.request_log if r.policy_type == "settingsCatalogPolicy" and r.batch is None]
    assert len(listed) == 2  # page 2 lost its tail with its second half: no guess of page 3 either
