"""The pure parts of drift, without a database: presentation of secrets and assignments, what an
acceptance covers and when its fingerprint still matches, and item derivation from version pairs."""

from __future__ import annotations

from tenantatlas_pipelines.drift import accept, present
from tenantatlas_pipelines.drift.derive import derive_items
from tenantatlas_pipelines.drift.model import DriftChange, DriftItem
from tenantatlas_pipelines.snapshots import GroupType, Reference, ReferenceIndex, RefKind
from tenantatlas_pipelines.store.snapshot_objects import VersionPair

KEYED_A = "[secret]:hmac-sha256:" + "a" * 64
KEYED_B = "[secret]:hmac-sha256:" + "b" * 64
REFS = ReferenceIndex(
    [
        Reference(RefKind.GROUP, "g1", "Sales", GroupType.SECURITY),
        Reference(RefKind.ASSIGNMENT_FILTER, "f1", "Windows only"),
    ]
)


def _pair(old, new, policy_type="deviceConfiguration", external_id="x") -> VersionPair:
    return VersionPair(policy_type, external_id, "Old", "New", old, new, "h" * 64 if new else None)


def _derive(pairs, compare_secrets=True, reason=None, acceptances=()):
    return derive_items(
        pairs,
        type_reason=lambda t: reason,
        compare_secrets=compare_secrets,
        acceptances=acceptances,
        baseline_refs=REFS,
        current_refs=REFS,
    )


def test_secret_markers_are_masked_and_compared_only_when_both_keyed() -> None:
    assert present.mask({"a": [KEYED_A, "plain"]}) == {"a": ["[secret]", "plain"]}
    assert present.secrets_comparable(KEYED_A, KEYED_B)
    assert not present.secrets_comparable("[secret]", KEYED_B)
    assert present.secrets_comparable(None, "[secret]")  # a secret set where there was none
    [item] = _derive([_pair({"k": KEYED_A}, {"k": KEYED_B})])
    assert [c.as_json() for c in item.changes] == [
        {"path": "k", "baseline": "[secret]", "current": "[secret]"}
    ]
    assert item.changes[0].current_raw == KEYED_B  # the fingerprint sees the real marker
    assert _derive([_pair({"k": KEYED_A}, {"k": KEYED_B})], compare_secrets=False) == []
    # A set element without identity whose keyed secret changed: not a change when not compared.
    rules_a, rules_b = {"rules": [{"x": 1, "s": KEYED_A}]}, {"rules": [{"x": 1, "s": KEYED_B}]}
    assert _derive([_pair(rules_a, rules_b)], compare_secrets=False) == []
    assert len(_derive([_pair(rules_a, rules_b)])[0].changes) == 2


def test_assignment_paths_and_values_are_named() -> None:
    old = {"displayName": "P", "assignments": [{"target_kind": "group", "group_id": "g1"}]}
    new = {
        "displayName": "P",
        "assignments": [
            {"target_kind": "group", "group_id": "g1", "filter_id": "f1", "filter_mode": "include"},
            {"target_kind": "exclusion_group", "group_id": "g-unknown"},
        ],
    }
    [item] = _derive([_pair(old, new)])
    assert [c.as_json() for c in item.changes] == [
        {
            "path": "assignments[exclusion_group:g-unknown]",
            "baseline": None,
            "current": {"target_kind": "exclusion_group", "group_id": "g-unknown"},
        },
        {"path": "assignments[group:Sales].filter", "baseline": None, "current": "Windows only"},
        {"path": "assignments[group:Sales].filter_mode", "baseline": None, "current": "include"},
    ]
    assert item.changes[1].key == "assignments[group:g1].filter_id"  # stored identity: the id


def test_kinds_confidence_and_no_item_without_changes() -> None:
    items = _derive(
        [
            _pair(None, {"displayName": "A"}, external_id="a"),
            _pair({"displayName": "B"}, None, external_id="b"),
            _pair({"displayName": "C", "v": 1}, {"displayName": "C", "v": 1}, external_id="c"),
        ],
        reason="current snapshot 2 could not read deviceConfiguration completely",
    )
    assert [(i.external_id, i.kind, i.confidence, i.display_name) for i in items] == [
        ("a", "added", "low", "New"),
        ("b", "missing", "low", "Old"),
    ]
    assert all(i.reason and not i.alerting for i in items)


def _item(changes, kind="changed", current_hash="c" * 64) -> DriftItem:
    return DriftItem(
        "deviceConfiguration",
        "x",
        "X",
        kind,
        "high",
        None,
        False,
        tuple(DriftChange(p, None, v, p, v) for p, v in changes),
        current_hash,
    )


def _acceptance(item: DriftItem, path: str | None) -> accept.Acceptance:
    from datetime import UTC, datetime

    return accept.Acceptance(
        1,
        item.policy_type,
        item.external_id,
        path,
        item.kind,
        accept.fingerprint(item, path),
        None,
        "n",
        "bob",
        datetime.now(UTC),
        1,
        "s",
    )


def test_acceptance_cover_and_fingerprint() -> None:
    assert accept.covers("assignments", "assignments[group:Sales].filter")
    assert accept.covers("ssid", "ssid") and not accept.covers("ssid", "ssidHidden")
    item = _item([("ssid", "guest"), ("assignments[group:Sales]", {"target_kind": "group"})])
    whole = _acceptance(item, None)
    assert accept.is_accepted(item, [whole])
    assert not accept.is_accepted(_item([("ssid", "guest")], current_hash="d" * 64), [whole])
    ssid = _acceptance(item, "ssid")
    assert not accept.is_accepted(item, [ssid])  # the assignment change is not covered
    both = [ssid, _acceptance(item, "assignments")]
    assert accept.is_accepted(item, both)
    moved = _item([("ssid", "guest-2"), ("assignments[group:Sales]", {"target_kind": "group"})])
    assert not accept.is_accepted(moved, both)  # the value moved on: alert again
