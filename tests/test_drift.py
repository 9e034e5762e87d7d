"""Drift against the real PostgreSQL, on snapshots stored through the snapshot store's own path.

The scenarios the issue names: a no-change re-read that touches every false-positive source yields no
item; each real change kind is reported once with the right path and values; a partial current
snapshot never yields a high-confidence `missing`; secrets only via HMAC; baselines and their errors.
"""

from __future__ import annotations

import copy

import psycopg
import pytest

from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.drift import compute_drift
from tenantatlas_pipelines.drift.baselines import set_baseline, show_baseline, unpin_baseline
from tenantatlas_pipelines.errors import ErrorCode, TenantAtlasError
from tenantatlas_pipelines.snapshots import GroupType, Reference, RefKind
from tenantatlas_pipelines.snapshots.synthetic import group_assignment
from tenantatlas_pipelines.store.scope import tenant_scope
from tenantatlas_pipelines.store.selections import add_selection, make_selection
from tenantatlas_pipelines.store.tenants import add_tenant
from tests import drift_support as ds
from tests.support import TENANT_A, TENANT_B


@pytest.fixture
def scene(db: Database, conn: psycopg.Connection):
    add_tenant(conn, TENANT_A, "contoso", "Contoso")
    add_tenant(conn, TENANT_B, "fabrikam", "Fabrikam")
    selection = add_selection(conn, "drift", ds.TYPES)
    add_selection(conn, "other", ["deviceConfiguration"])
    return tenant_scope(conn, TENANT_A), selection


def _by_id(report):
    return {i.external_id: i for i in report.items}


@pytest.mark.parametrize("key", [None, ds.KEY], ids=["no-key", "hmac-key"])
def test_no_change_reread_yields_no_drift(scene, key: bytes | None) -> None:
    scope, selection = scene
    content, assignments = ds.baseline_content(), ds.baseline_assignments()
    first = ds.snapshot(scope, selection, content, assignments, key=key)
    again_content, again_assignments = ds.reread(content, assignments)
    # A group renamed in Entra between the reads is not a change of the policies that use it.
    renamed = [
        Reference(RefKind.GROUP, "g-sales", "Sales EU", GroupType.SECURITY),
        *[r for r in ds.REFERENCES if r.ref_id != "g-sales"],
    ]
    second = ds.snapshot(scope, selection, again_content, again_assignments, references=renamed, key=key)
    report = compute_drift(scope, selection, compare_secrets=key is not None)
    assert (report.baseline_snapshot_id, report.current_snapshot_id) == (first, second)
    assert report.baseline_kind == "previous"
    assert report.items == ()
    # The re-read really differed in its raw form (the test would be vacuous otherwise).
    assert again_content != content and again_assignments != assignments


def test_each_change_kind_once_with_path_and_values(scene) -> None:
    scope, selection = scene
    content, assignments = ds.baseline_content(), ds.baseline_assignments()
    ds.snapshot(scope, selection, content, assignments, key=ds.KEY)
    now, now_assign = ds.reread(content, assignments)
    now["wifi"]["ssid"] = "guest"  # a setting changed
    now["wifi"]["preSharedKey"] = "hunter3"  # a secret changed (HMAC differs)
    now["kiosk"]["displayName"] = "Kiosk (lobby)"  # renamed
    now_assign["kiosk"] = [group_assignment("g-fin")]  # first assignment added
    now_assign["defender"] = [group_assignment("g-sales", filter_id="f-mac", filter_mode="exclude")]
    now["defender"]["settings"][0]["settingInstance"]["choiceSettingValue"]["children"][0][
        "choiceSettingValue"
    ]["value"] = "fw_log_1"  # a nested catalog setting changed
    del now["old"]  # removed
    now["new"] = {"displayName": "New baseline", "enabled": True}  # added
    ds.snapshot(scope, selection, now, now_assign, key=ds.KEY)

    report = compute_drift(scope, selection, compare_secrets=True)
    items = _by_id(report)
    assert sorted(items) == ["defender", "kiosk", "new", "old", "wifi"]
    assert {i.confidence for i in report.items} == {"high"}
    assert items["old"].kind == "missing" and items["old"].display_name == "Legacy VPN"
    assert items["new"].kind == "added" and items["new"].display_name == "New baseline"
    assert {c.path for c in items["new"].changes} == {"displayName", "enabled"}

    wifi = {c.path: c for c in items["wifi"].changes}
    assert items["wifi"].kind == "changed" and sorted(wifi) == ["preSharedKey", "ssid"]
    assert (wifi["ssid"].baseline, wifi["ssid"].current) == ("corp", "guest")
    # Masked both ways: the HMAC never leaves the store.
    assert (wifi["preSharedKey"].baseline, wifi["preSharedKey"].current) == ("[secret]", "[secret]")

    kiosk = {c.path: c for c in items["kiosk"].changes}
    assert sorted(kiosk) == ["assignments[group:Finance]", "displayName"]
    assert (kiosk["displayName"].baseline, kiosk["displayName"].current) == ("Kiosk", "Kiosk (lobby)")
    assert kiosk["assignments[group:Finance]"].baseline is None
    assert kiosk["assignments[group:Finance]"].current == {
        "target_kind": "group",
        "group_id": "g-fin",
        "group_name": "Finance",
    }

    defender = {c.path: c for c in items["defender"].changes}
    assert sorted(defender) == [
        "assignments[group:Sales].filter",
        "assignments[group:Sales].filter_mode",
        'settings["fw/fw_log"]',
    ]
    assert (
        defender["assignments[group:Sales].filter"].baseline,
        defender["assignments[group:Sales].filter"].current,
    ) == (None, "Macs")
    assert defender['settings["fw/fw_log"]'].current == "fw_log_1"
    assert report.counts.changed == 3 and report.counts.added == 1 and report.counts.missing == 1


def test_secrets_not_compared_without_key(scene) -> None:
    scope, selection = scene
    content, assignments = ds.baseline_content(), ds.baseline_assignments()
    ds.snapshot(scope, selection, content, assignments)
    changed = copy.deepcopy(content)
    changed["wifi"]["preSharedKey"] = "another"
    ds.snapshot(scope, selection, changed, assignments)
    assert compute_drift(scope, selection, compare_secrets=True).items == ()
    # Captured with the key, compared without it: still not compared.
    ds.snapshot(scope, selection, content, assignments, key=ds.KEY)
    ds.snapshot(scope, selection, changed, assignments, key=ds.KEY)
    assert compute_drift(scope, selection, compare_secrets=False).items == ()
    assert [c.path for c in compute_drift(scope, selection, compare_secrets=True).items[0].changes] == [
        "preSharedKey"
    ]


def test_key_configured_between_snapshots_is_not_a_change(scene) -> None:
    scope, selection = scene
    content, assignments = ds.baseline_content(), ds.baseline_assignments()
    ds.snapshot(scope, selection, content, assignments)  # plain markers
    ds.snapshot(scope, selection, content, assignments, key=ds.KEY)  # HMAC markers
    assert compute_drift(scope, selection, compare_secrets=True).items == ()


def test_partial_current_snapshot_never_yields_high_confidence_missing(scene) -> None:
    scope, selection = scene
    content, assignments = ds.baseline_content(), ds.baseline_assignments()
    ds.snapshot(scope, selection, content, assignments)
    # The current run could not read deviceConfiguration past the first object.
    partial = {k: v for k, v in content.items() if k in ("wifi", "defender")}
    partial["defender"] = copy.deepcopy(partial["defender"])
    partial["defender"]["name"] = "Defender (renamed)"
    current = ds.snapshot(
        scope,
        selection,
        partial,
        assignments,
        status="partial",
        failed_types={"deviceConfiguration": "graph_forbidden"},
    )
    report = compute_drift(scope, selection)
    items = _by_id(report)
    assert report.current_snapshot_id == current
    assert {i.kind for i in items.values() if i.policy_type == "deviceConfiguration"} == {"missing"}
    for oid in ("kiosk", "old"):
        assert items[oid].confidence == "low"
        assert "could not read deviceConfiguration completely (graph_forbidden)" in (items[oid].reason or "")
    # The type that was read cleanly keeps high confidence.
    assert items["defender"].confidence == "high" and items["defender"].reason is None
    assert report.counts.unaccepted_high == 1


def test_baseline_pin_show_clear_and_refusals(scene) -> None:
    scope, selection = scene
    content, assignments = ds.baseline_content(), ds.baseline_assignments()
    with pytest.raises(TenantAtlasError) as exc:
        compute_drift(scope, selection)
    assert exc.value.code == ErrorCode.NO_SNAPSHOT
    with pytest.raises(TenantAtlasError) as exc:
        set_baseline(scope, selection, None, "alice")
    assert exc.value.code == ErrorCode.NO_SNAPSHOT

    first = ds.snapshot(scope, selection, content, assignments)
    with pytest.raises(TenantAtlasError) as exc:
        compute_drift(scope, selection)
    assert exc.value.code == ErrorCode.NO_BASELINE_SNAPSHOT

    pin = set_baseline(scope, selection, None, "alice")
    assert (pin.snapshot_run_id, pin.pinned_by) == (first, "alice")
    changed = copy.deepcopy(content)
    changed["kiosk"]["kioskMode"] = False
    ds.snapshot(scope, selection, changed, assignments)
    ds.snapshot(scope, selection, changed, assignments)  # unchanged since the previous one
    pinned = compute_drift(scope, selection)
    assert (pinned.baseline_kind, pinned.baseline_snapshot_id) == ("pinned", first)
    assert [i.external_id for i in pinned.items] == ["kiosk"]
    assert compute_drift(scope, selection, against="previous").items == ()
    explicit = compute_drift(scope, selection, against=str(first))
    assert explicit.baseline_kind == "explicit" and len(explicit.items) == 1

    partial = ds.snapshot(
        scope,
        selection,
        changed,
        assignments,
        status="partial",
        failed_types={"settingsCatalogPolicy": "graph_server_error"},
    )
    with pytest.raises(TenantAtlasError) as exc:
        set_baseline(scope, selection, partial, "alice")
    assert exc.value.code == ErrorCode.BASELINE_NOT_USABLE
    other = make_selection("other", ["deviceConfiguration"])
    foreign = ds.snapshot(scope, other, {"x": {"displayName": "X"}}, {})
    for bad in (
        lambda: set_baseline(scope, selection, foreign, "alice"),
        lambda: compute_drift(scope, selection, against=str(foreign)),
    ):
        with pytest.raises(TenantAtlasError) as exc:
            bad()
        assert exc.value.code == ErrorCode.BASELINE_NOT_USABLE
    with pytest.raises(TenantAtlasError) as exc:
        compute_drift(scope, selection, against="999999")
    assert exc.value.code == ErrorCode.SNAPSHOT_NOT_FOUND

    assert show_baseline(scope, selection) is not None
    assert unpin_baseline(scope, selection) is True
    assert show_baseline(scope, selection) is None
    with pytest.raises(TenantAtlasError) as exc:
        compute_drift(scope, selection, against="baseline")
    assert exc.value.code == ErrorCode.NO_BASELINE_SNAPSHOT
    # The partial current snapshot is compared with the previous succeeded one.
    previous = compute_drift(scope, selection)
    assert previous.baseline_kind == "previous" and previous.current_snapshot_id == partial


def test_other_tenants_snapshots_are_invisible(scene, conn: psycopg.Connection) -> None:
    scope, selection = scene
    content, assignments = ds.baseline_content(), ds.baseline_assignments()
    theirs = ds.snapshot(tenant_scope(conn, TENANT_B), selection, content, assignments)
    ds.snapshot(scope, selection, content, assignments)
    with pytest.raises(TenantAtlasError) as exc:
        compute_drift(scope, selection, against=str(theirs))
    assert exc.value.code == ErrorCode.SNAPSHOT_NOT_FOUND
