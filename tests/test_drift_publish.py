"""The `policy_drift` asset: published per partition in one replacement, counts as metadata, a preview,
and a check that WARNs on unaccepted high-confidence drift — materialized in-process through Dagster on
the real PostgreSQL. Plus the analyst views over what it published."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import psycopg
import pytest
from dagster import AssetCheckSeverity, DagsterInstance, instance_for_test, materialize

from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.defs.drift import CHECK, policy_drift
from tenantatlas_pipelines.defs.partitions import PartitionRef
from tenantatlas_pipelines.defs.resources import InventoryDatabase
from tenantatlas_pipelines.drift.deviations import accept_deviation
from tenantatlas_pipelines.drift.publish import preview_markdown, publish_drift
from tenantatlas_pipelines.store.drift_items import get_result, read_partition
from tenantatlas_pipelines.store.scope import ANALYST_ROLE, tenant_scope
from tenantatlas_pipelines.store.selections import add_selection
from tenantatlas_pipelines.store.tenants import add_tenant
from tests import drift_support as ds
from tests.support import TENANT_A, TENANT_B

# A selection name the partitions definition knows (the seeded ones), redefined to the drift types.
REF = PartitionRef("contoso", "configuration")


@pytest.fixture
def scene(db: Database, conn: psycopg.Connection):
    add_tenant(conn, TENANT_A, "contoso", "Contoso")
    add_tenant(conn, TENANT_B, "fabrikam", "Fabrikam")
    selection = add_selection(conn, REF.selection, ds.TYPES)
    return tenant_scope(conn, TENANT_A), selection


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        inst.add_dynamic_partitions("tenant", ["contoso", "fabrikam"])
        yield inst


def _materialize(db: Database, instance: DagsterInstance, ref: PartitionRef = REF):
    return materialize(
        [policy_drift],
        partition_key=str(ref.key),
        instance=instance,
        resources={"inventory_db": InventoryDatabase(database_url=db.url)},
        raise_on_error=True,
    )


def _events(result, kind: str):
    return [e for e in result.all_events if e.event_type_value == kind]


def test_asset_publishes_counts_preview_and_warns(scene, db: Database, instance: DagsterInstance) -> None:
    scope, selection = scene
    content, assignments = ds.baseline_content(), ds.baseline_assignments()

    # Nothing to compare yet: published as such, the run stays green, the check passes.
    result = _materialize(db, instance)
    meta = {
        k: getattr(v, "value", v)
        for k, v in result.asset_materializations_for_node("policy_drift")[0].metadata.items()
    }
    assert meta["status"] == "no_snapshot" and meta["items"] == 0
    assert "no_snapshot" in meta["no_drift_reason"]
    header = get_result(scope, REF.selection)
    assert header is not None and header.status == "no_snapshot" and header.current_snapshot_id is None

    ds.snapshot(scope, selection, content, assignments)
    changed = copy.deepcopy(content)
    changed["wifi"]["ssid"] = "guest"
    changed["kiosk"]["displayName"] = "Kiosk | <b>lobby</b>"
    del changed["old"]
    current = ds.snapshot(scope, selection, changed, assignments)
    result = _materialize(db, instance)
    mat = result.asset_materializations_for_node("policy_drift")[0]
    meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    assert {
        k: meta[k]
        for k in ("items", "changed", "added", "missing", "high", "low", "accepted", "unaccepted_high")
    } == {
        "items": 3,
        "changed": 2,
        "added": 0,
        "missing": 1,
        "high": 3,
        "low": 0,
        "accepted": 0,
        "unaccepted_high": 3,
    }
    assert all(isinstance(mat.metadata[k].value, int) for k in ("changed", "added", "missing"))  # plotted
    assert meta["current_snapshot_id"] == str(current) and meta["baseline_kind"] == "previous"
    assert "Kiosk \\| <b>lobby</b>" in meta["preview"] and "missing" in meta["preview"]
    checks = [e.event_specific_data for e in _events(result, "ASSET_CHECK_EVALUATION")]
    assert [(c.check_name, c.passed, c.severity) for c in checks] == [(CHECK, False, AssetCheckSeverity.WARN)]

    rows = read_partition(scope, REF.selection)
    assert [(r.external_id, r.kind) for r in rows] == [
        ("kiosk", "changed"),
        ("old", "missing"),
        ("wifi", "changed"),
    ]
    assert {"path": "ssid", "baseline": "corp", "current": "guest"} in rows[2].changes

    # Accept everything: still published (accepted), the check passes.
    for oid in ("kiosk", "old", "wifi"):
        accept_deviation(
            scope,
            selection,
            policy_type="deviceConfiguration",
            external_id=oid,
            path=None,
            note="planned",
            accepted_by="bob",
        )
    result = _materialize(db, instance)
    checks = [e.event_specific_data for e in _events(result, "ASSET_CHECK_EVALUATION")]
    assert [c.passed for c in checks] == [True]
    assert all(r.accepted for r in read_partition(scope, REF.selection))
    header = get_result(scope, REF.selection)
    assert header is not None and (header.items, header.accepted, header.unaccepted_high) == (3, 3, 0)


def test_publish_replaces_the_partition_whole(scene, db: Database, conn: psycopg.Connection) -> None:
    scope, selection = scene
    content, assignments = ds.baseline_content(), ds.baseline_assignments()
    ds.snapshot(scope, selection, content, assignments)
    changed = copy.deepcopy(content)
    del changed["old"], changed["kiosk"]
    ds.snapshot(scope, selection, changed, assignments)
    # The other tenant's partition of the same selection is untouched by this one's publication.
    theirs = tenant_scope(conn, TENANT_B)
    ds.snapshot(theirs, selection, content, assignments)
    ds.snapshot(theirs, selection, changed, assignments)
    assert publish_drift(db, "fabrikam", REF.selection).counts.missing == 2
    assert publish_drift(db, "contoso", REF.selection).counts.missing == 2
    ds.snapshot(scope, selection, changed, assignments)  # nothing changed since
    published = publish_drift(db, "contoso", REF.selection)
    assert published.counts.items == 0 and preview_markdown(published).endswith("No drift.")
    assert read_partition(scope, REF.selection) == []
    assert len(read_partition(tenant_scope(conn, TENANT_B), REF.selection)) == 2


def test_analyst_views_join_tenants_and_inventory(scene, db: Database, conn: psycopg.Connection) -> None:
    scope, selection = scene
    content, assignments = ds.baseline_content(), ds.baseline_assignments()
    ds.snapshot(scope, selection, content, assignments)
    changed = copy.deepcopy(content)
    changed["wifi"]["ssid"] = "guest"
    ds.snapshot(scope, selection, changed, assignments)
    publish_drift(db, "contoso", REF.selection)
    with db.connect() as analyst:
        analyst.execute(f"SET ROLE {ANALYST_ROLE}")
        rows = analyst.execute(
            """SELECT d.tenant_key, t.display_name, d.external_id, d.alerting, c.path, c.baseline_value,
                      c.current_value, s.items, s.unaccepted_high
               FROM analyst_drift_items d
               JOIN tenants t USING (tenant_id)
               JOIN analyst_drift_changes c USING (tenant_id, selection_name, policy_type, external_id)
               JOIN analyst_drift_summary s USING (tenant_id, selection_name)
               LEFT JOIN analyst_inventory_items i USING (tenant_id, policy_type, external_id)"""
        ).fetchall()
        assert rows == [("contoso", "Contoso", "wifi", True, "ssid", "corp", "guest", 1, 1)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            analyst.execute("DELETE FROM drift_items")


def test_drift_is_requested_eagerly_after_a_snapshot(instance: DagsterInstance) -> None:
    from dagster import AssetKey, AssetMaterialization, evaluate_automation_conditions

    from tenantatlas_pipelines.definitions import defs

    drift = AssetKey("policy_drift")
    first = evaluate_automation_conditions(defs, instance)
    assert not first.get_requested_partitions(drift)  # no snapshot yet: nothing to derive
    instance.report_runless_asset_event(
        AssetMaterialization(asset_key="policy_snapshots", partition=str(REF.key))
    )
    second = evaluate_automation_conditions(defs, instance, cursor=first.cursor)
    requested = second.get_requested_partitions(drift)
    assert REF.key in requested
    upstream = defs.resolve_asset_graph().get(AssetKey("policy_snapshots"))
    if upstream.partitions_def is not None:  # the snapshot asset itself, partitioned like drift
        assert requested == {REF.key}  # only the partition whose snapshot was taken
