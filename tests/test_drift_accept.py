"""Accepted deviations on the real PostgreSQL: they stay visible with accepted=true, stop alerting,
re-alert when the value moves on (and apply again when it comes back); who and when are recorded;
revoking keeps the record."""

from __future__ import annotations

import copy

import psycopg
import pytest

from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.drift import compute_drift
from tenantatlas_pipelines.drift.deviations import accept_deviation, revoke
from tenantatlas_pipelines.errors import ErrorCode, TenantAtlasError
from tenantatlas_pipelines.snapshots.synthetic import group_assignment
from tenantatlas_pipelines.store.drift_acceptances import list_acceptances
from tenantatlas_pipelines.store.scope import tenant_scope
from tenantatlas_pipelines.store.selections import add_selection
from tenantatlas_pipelines.store.tenants import add_tenant
from tests import drift_support as ds
from tests.support import TENANT_A


@pytest.fixture
def scene(db: Database, conn: psycopg.Connection):
    add_tenant(conn, TENANT_A, "contoso", "Contoso")
    selection = add_selection(conn, "drift", ds.TYPES)
    scope = tenant_scope(conn, TENANT_A)
    content, assignments = ds.baseline_content(), ds.baseline_assignments()
    ds.snapshot(scope, selection, content, assignments)
    return scope, selection, content, assignments


def _item(scope, selection, external_id):
    report = compute_drift(scope, selection)
    return next((i for i in report.items if i.external_id == external_id), None), report


def _with_ssid(content, ssid: str):
    c = copy.deepcopy(content)
    c["wifi"]["ssid"] = ssid
    return c


def test_accepted_item_stays_visible_and_realerts_on_a_new_value(scene, db: Database) -> None:
    scope, selection, content, assignments = scene
    from tenantatlas_pipelines.drift.baselines import set_baseline

    set_baseline(scope, selection, None, "alice")
    ds.snapshot(scope, selection, _with_ssid(content, "guest"), assignments)
    acc = accept_deviation(
        scope,
        selection,
        policy_type="deviceConfiguration",
        external_id="wifi",
        path=None,
        note="guest network approved",
        accepted_by="bob",
    )
    assert acc.accepted_by == "bob" and acc.accepted_at is not None and acc.revoked_at is None

    item, report = _item(scope, selection, "wifi")
    assert item is not None and item.accepted and item.confidence == "high" and not item.alerting
    assert report.counts.accepted == 1 and report.counts.unaccepted_high == 0

    # Another snapshot with the same value: still accepted (against the pinned baseline).
    ds.snapshot(scope, selection, _with_ssid(content, "guest"), assignments)
    assert _item(scope, selection, "wifi")[0].accepted

    # The value moves on: it alerts again.
    ds.snapshot(scope, selection, _with_ssid(content, "guest-2"), assignments)
    item, report = _item(scope, selection, "wifi")
    assert item is not None and not item.accepted and item.alerting
    assert report.counts.unaccepted_high == 1

    # It comes back to the accepted value: accepted again.
    ds.snapshot(scope, selection, _with_ssid(content, "guest"), assignments)
    assert _item(scope, selection, "wifi")[0].accepted

    # Revoked: alerts, and the record stays with who and when.
    with db.connect() as other:
        revoked = revoke(other, acc.id, "carol")
    assert revoked.revoked_by == "carol" and revoked.revoked_at is not None
    assert not _item(scope, selection, "wifi")[0].accepted
    history = list_acceptances(scope, include_revoked=True)
    assert [(a.id, a.accepted_by, a.revoked_by) for a in history] == [(acc.id, "bob", "carol")]
    assert list_acceptances(scope) == []
    with db.connect() as other, pytest.raises(TenantAtlasError) as exc:
        revoke(other, acc.id, "carol")
    assert exc.value.code == ErrorCode.ACCEPTANCE_NOT_FOUND


def test_path_acceptance_covers_only_its_changes(scene) -> None:
    scope, selection, content, assignments = scene
    changed = _with_ssid(content, "guest")
    changed["wifi"]["displayName"] = "Guest Wi-Fi"
    now_assign = copy.deepcopy(assignments)
    now_assign["wifi"] = [
        group_assignment("g-sales", filter_id="f-mac"),
        group_assignment("g-gone", exclude=True),
    ]
    ds.snapshot(scope, selection, changed, now_assign)
    item, _ = _item(scope, selection, "wifi")
    assert item is not None
    assert sorted(c.path for c in item.changes) == ["assignments[group:Sales].filter", "displayName", "ssid"]

    accept_deviation(
        scope,
        selection,
        policy_type="deviceConfiguration",
        external_id="wifi",
        path="ssid",
        note="ok",
        accepted_by="bob",
    )
    assert not _item(scope, selection, "wifi")[0].accepted  # other changes still alert
    accept_deviation(
        scope,
        selection,
        policy_type="deviceConfiguration",
        external_id="wifi",
        path="displayName",
        note="ok",
        accepted_by="bob",
    )
    assert not _item(scope, selection, "wifi")[0].accepted
    # A parent path covers the changes under it (the assignment's filter, named by resolved name).
    acc = accept_deviation(
        scope,
        selection,
        policy_type="deviceConfiguration",
        external_id="wifi",
        path="assignments",
        note="Macs filter is intended",
        accepted_by="bob",
    )
    assert acc.accepted_value == [{"path": "assignments[group:Sales].filter", "current": "Macs"}]
    assert _item(scope, selection, "wifi")[0].accepted

    # Accepting the same path again supersedes the earlier acceptance (one active per object and path).
    accept_deviation(
        scope,
        selection,
        policy_type="deviceConfiguration",
        external_id="wifi",
        path="ssid",
        note="still ok",
        accepted_by="dave",
    )
    active = list_acceptances(scope)
    assert sorted((a.path, a.accepted_by) for a in active) == [
        ("assignments", "bob"),
        ("displayName", "bob"),
        ("ssid", "dave"),
    ]


def test_accepting_what_shows_no_drift_is_refused(scene) -> None:
    scope, selection, content, assignments = scene
    ds.snapshot(scope, selection, _with_ssid(content, "guest"), assignments)
    for external_id, path in (("kiosk", None), ("wifi", "displayName"), ("nope", None)):
        with pytest.raises(TenantAtlasError) as exc:
            accept_deviation(
                scope,
                selection,
                policy_type="deviceConfiguration",
                external_id=external_id,
                path=path,
                note="x",
                accepted_by="bob",
            )
        assert exc.value.code == ErrorCode.DRIFT_ITEM_NOT_FOUND
    assert list_acceptances(scope, include_revoked=True) == []


def test_accepted_missing_item_stays_accepted_while_missing(scene) -> None:
    scope, selection, content, assignments = scene
    from tenantatlas_pipelines.drift.baselines import set_baseline

    set_baseline(scope, selection, None, "alice")
    gone = {k: v for k, v in content.items() if k != "old"}
    ds.snapshot(scope, selection, gone, assignments)
    accept_deviation(
        scope,
        selection,
        policy_type="deviceConfiguration",
        external_id="old",
        path=None,
        note="decommissioned",
        accepted_by="bob",
    )
    ds.snapshot(scope, selection, gone, assignments)
    item, _ = _item(scope, selection, "old")
    assert item is not None and item.kind == "missing" and item.accepted
    # It reappears with other content: that is a change now, and it alerts.
    back = copy.deepcopy(content)
    back["old"]["server"] = "vpn2.contoso.com"
    ds.snapshot(scope, selection, back, assignments)
    item, _ = _item(scope, selection, "old")
    assert item is not None and item.kind == "changed" and not item.accepted
