"""The normal form, hash and diff (pure): property tests (hypothesis) and worked cases."""

from __future__ import annotations

import copy
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenantatlas_pipelines.selection import selection_hash
from tenantatlas_pipelines.snapshots import (
    SECRET_MARKER,
    GroupType,
    Reference,
    ReferenceIndex,
    RefKind,
    assignment_records,
    canonicalise_references,
    content_hash,
    diff,
    normal_content,
    version_document,
    with_reference_names,
)
from tenantatlas_pipelines.snapshots.capture import capture_object
from tenantatlas_pipelines.snapshots.normal_form import as_set
from tenantatlas_pipelines.snapshots.rules import RULES, VOLATILE_KEYS, ContentRules

KEYS = st.sampled_from(["alpha", "beta", "gamma", "mode", "level", "items", "rules", "enabled", "ssid",
                        "omaUri", "description", "displayName", "nested", "targets"])
SCALARS = st.one_of(st.text(min_size=1, max_size=8), st.integers(-1000, 1000), st.booleans())
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=4),
        st.dictionaries(KEYS, inner, min_size=1, max_size=4),
    ),
    max_leaves=20,
)
DOCS = st.dictionaries(KEYS, VALUES, min_size=1, max_size=6)
PT = "deviceConfiguration"
# Other builds share this machine: generation speed and run time are not what these tests are about.
LOADED_MACHINE = {
    "deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]
}


def h(raw: dict[str, Any], key: bytes | None = None, policy_type: str = PT) -> str:
    return content_hash(normal_content(policy_type, raw, key))


def _walk(value: Any, fn) -> Any:
    """Apply fn to every dict (bottom-up), rebuilding lists and dicts."""
    if isinstance(value, dict):
        return fn({k: _walk(v, fn) for k, v in value.items()})
    if isinstance(value, list):
        return [_walk(v, fn) for v in value]
    return value


@settings(max_examples=150, **LOADED_MACHINE)
@given(DOCS, st.randoms(use_true_random=False))
def test_reordering_arrays_never_changes_the_hash(doc: dict[str, Any], rnd: random.Random) -> None:
    def shuffle(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: shuffle(v) for k, v in reversed(list(value.items()))}
        if isinstance(value, list):
            items = [shuffle(v) for v in value]
            rnd.shuffle(items)
            return items
        return value

    assert h(shuffle(doc)) == h(doc)


@settings(max_examples=150, **LOADED_MACHINE)
@given(DOCS, st.lists(st.sampled_from(sorted(VOLATILE_KEYS | {"@odata.etag", "lastSyncDateTime",
                                                              "items@odata.context"})), min_size=1),
       SCALARS)
def test_volatile_fields_never_change_the_hash(doc: dict[str, Any], volatile: list[str], value: Any) -> None:
    def add(d: dict[str, Any]) -> dict[str, Any]:
        return {**d, **{k: value for k in volatile}}

    assert h(_walk(copy.deepcopy(doc), add)) == h(doc)


@settings(max_examples=150, **LOADED_MACHINE)
@given(DOCS, st.lists(KEYS, min_size=1, max_size=3), st.sampled_from([None, "", [], {}, [None, ""]]))
def test_null_absent_empty_are_the_same(doc: dict[str, Any], keys: list[str], empty: Any) -> None:
    def blank(d: dict[str, Any]) -> dict[str, Any]:
        return {**{k: empty for k in keys if k not in d}, **d}

    assert h(_walk(copy.deepcopy(doc), blank)) == h(doc)


@settings(max_examples=100, **LOADED_MACHINE)
@given(DOCS, st.text(min_size=1), st.text(min_size=1), st.text(min_size=1))
def test_reencrypted_secrets_never_change_the_hash(doc: dict[str, Any], c1: str, c2: str, ref: str) -> None:
    def oma(cipher: str, reference: str) -> dict[str, Any]:
        return {**doc, "omaSettings": [{"@odata.type": "#microsoft.graph.omaSettingString",
                                        "omaUri": "./Vendor/MSFT/WiFi", "isEncrypted": True,
                                        "value": cipher, "secretReferenceValueId": reference}]}

    for key in (None, b"k3y"):
        assert h(oma(c1, ref), key) == h(oma(c2, ref + "x"), key)
        stored = str(normal_content(PT, oma("CIPHER:" + c1, ref), key))
        assert "CIPHER:" not in stored and SECRET_MARKER in stored


def _leaves(value: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))]
    return [path]


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    return value + "x"


@settings(max_examples=200, **LOADED_MACHINE)
@given(DOCS, st.data())
def test_changing_any_real_value_changes_the_hash_and_the_diff_names_it(doc: dict[str, Any], data) -> None:
    normal = normal_content(PT, doc)
    assert normal_content(PT, normal) == normal  # idempotent: a normal form is its own normal form
    path = data.draw(st.sampled_from(_leaves(normal)))
    mutated = copy.deepcopy(normal)
    parent = mutated
    for seg in path[:-1]:
        parent = parent[seg]
    parent[path[-1]] = _changed(parent[path[-1]])
    assert h(mutated) != h(normal)
    changes = diff(normal, normal_content(PT, mutated), policy_type=PT)
    assert changes and all(c.old != c.new for c in changes)
    assert changes[0].segments[0] == path[0]  # the change is reported under the property that moved


def test_secret_fields_become_markers_and_hmac_only_with_a_key() -> None:
    raw = {"displayName": "Wi-Fi", "wiFiPreSharedKey": "hunter2", "passwordRequired": True,
           "passwordMinimumLength": 8, "passwordRequiredType": "alphanumeric", "vpnPassword": "pw1"}
    plain = normal_content(PT, raw)
    assert plain["wiFiPreSharedKey"] == SECRET_MARKER and plain["vpnPassword"] == SECRET_MARKER
    assert plain["passwordRequired"] is True and plain["passwordMinimumLength"] == 8
    assert plain["passwordRequiredType"] == "alphanumeric"
    assert h(raw) == h({**raw, "wiFiPreSharedKey": "changed"})  # without a key secrets are not compared
    keyed = normal_content(PT, raw, b"k3y")
    assert keyed["wiFiPreSharedKey"].startswith(SECRET_MARKER + ":hmac-sha256:")
    assert "hunter2" not in str(keyed) and "k3y" not in str(keyed)
    assert h(raw, b"k3y") != h({**raw, "wiFiPreSharedKey": "changed"}, b"k3y")
    assert h(raw, b"k3y") != h(raw, b"other")


def _setting(def_id: str, value: Any, children: list | None = None) -> dict[str, Any]:
    return {"id": "x", "settingInstance": {
        "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance",
        "settingDefinitionId": def_id,
        "settingInstanceTemplateReference": {"settingInstanceTemplateId": "t"},
        "choiceSettingValue": {"value": value, "children": [c["settingInstance"] for c in children or []]}}}


SECRET_VALUE = "#microsoft.graph.deviceManagementConfigurationSecretSettingValue"
NO_FILTER = "00000000-0000-0000-0000-000000000000"


def test_settings_catalog_flattens_per_definition_path_in_any_order() -> None:
    secret = {"id": "s", "settingInstance": {
        "settingDefinitionId": "vpn_key",
        "simpleSettingValue": {"@odata.type": SECRET_VALUE,
                               "value": "c1ph3r", "valueState": "encryptedValueToken"}}}
    group = {"id": "g", "settingInstance": {"settingDefinitionId": "rules", "groupSettingCollectionValue": [
        {"children": [{"settingDefinitionId": "rules_name", "simpleSettingValue": {"value": "a"}}]},
        {"children": [{"settingDefinitionId": "rules_name", "simpleSettingValue": {"value": "b"}}]}]}}
    settings_ = [_setting("fw", "fw_1", [_setting("fw_log", "fw_log_0")]), secret, group]
    raw = {"name": "Firewall", "settingCount": 3, "settings": settings_}
    assert normal_content("settingsCatalogPolicy", raw) == {
        "name": "Firewall",
        "settings": {"fw": "fw_1", "fw/fw_log": "fw_log_0", "vpn_key": SECRET_MARKER,
                     "rules": [{"rules_name": "a"}, {"rules_name": "b"}]},
    }
    reordered = copy.deepcopy(raw)
    reordered["settings"] = list(reversed(settings_))
    reordered["settings"][0]["settingInstance"]["groupSettingCollectionValue"].reverse()
    reordered["settings"][1]["settingInstance"]["simpleSettingValue"]["value"] = "re-encrypted"
    assert h(reordered, policy_type="settingsCatalogPolicy") == h(raw, policy_type="settingsCatalogPolicy")
    changed = copy.deepcopy(raw)
    changed["settings"][0] = _setting("fw", "fw_1", [_setting("fw_log", "fw_log_1")])
    sc = "settingsCatalogPolicy"
    [change] = diff(normal_content(sc, raw), normal_content(sc, changed))
    assert (change.path, change.old, change.new) == ('settings["fw/fw_log"]', "fw_log_0", "fw_log_1")


def test_ordered_paths_keep_their_order(monkeypatch) -> None:
    monkeypatch.setitem(RULES, "kioskPolicy", ContentRules(ordered_paths=frozenset({"edgeHomepageUrls"})))
    a = {"edgeHomepageUrls": ["https://a", "https://b"], "tags": ["x", "y"]}
    b = {"edgeHomepageUrls": ["https://b", "https://a"], "tags": ["y", "x"]}
    assert h(a, policy_type="kioskPolicy") != h(b, policy_type="kioskPolicy")
    assert h(a) == h(b)  # not ordered for deviceConfiguration: a set
    kiosk = "kioskPolicy"
    changes = diff(normal_content(kiosk, a), normal_content(kiosk, b), policy_type=kiosk)
    assert [c.path for c in changes] == ["edgeHomepageUrls[0]", "edgeHomepageUrls[1]"]


def test_content_hash_uses_the_selection_canonicalisation() -> None:
    payload = {"policy_types": ["deviceConfiguration", "mobileApp"]}
    assert content_hash(payload) == selection_hash(payload)


RAW_ASSIGNMENTS = [
    {"id": "a1", "target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g1",
                            "deviceAndAppManagementAssignmentFilterId": "f1",
                            "deviceAndAppManagementAssignmentFilterType": "exclude"}, "intent": "required"},
    {"id": "a2", "target": {"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": "g2",
                            "deviceAndAppManagementAssignmentFilterId": NO_FILTER,
                            "deviceAndAppManagementAssignmentFilterType": "none"}},
    {"id": "a3", "target": {"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget"}},
]


def test_assignment_records_resolve_names_and_drop_empty_filters() -> None:
    refs = ReferenceIndex([Reference(RefKind.GROUP, "g1", "Sales", GroupType.DYNAMIC),
                           Reference(RefKind.ASSIGNMENT_FILTER, "f1", "Corporate")])
    stored = assignment_records(RAW_ASSIGNMENTS, "mobileApp")
    assert "Sales" not in str(stored)  # hashed content holds ids; names are joined in on read
    records = with_reference_names({"assignments": stored}, refs)["assignments"]
    assert records == as_set([
        {"target_kind": "group", "group_id": "g1", "group_name": "Sales", "filter_id": "f1",
         "filter_name": "Corporate", "filter_mode": "exclude", "intent": "required"},
        {"target_kind": "exclusion_group", "group_id": "g2"},
        {"target_kind": "all_licensed_users"},
    ])
    assert assignment_records(list(reversed(RAW_ASSIGNMENTS)), "mobileApp") == stored


def test_assignment_changes_are_reported_per_assignment() -> None:
    before = capture_object(PT, {"id": "o", "displayName": "P"}, assignments=RAW_ASSIGNMENTS)
    moved = copy.deepcopy(RAW_ASSIGNMENTS)
    moved[0]["target"]["deviceAndAppManagementAssignmentFilterType"] = "include"
    moved.append({"target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}})
    after = capture_object(PT, {"id": "o", "displayName": "P"}, assignments=moved)
    changes = {c.path: (c.old, c.new) for c in diff(before.document, after.document)}
    assert changes == {
        "assignments[all_devices]": (None, {"target_kind": "all_devices"}),
        "assignments[group:g1].filter_mode": ("exclude", "include"),
    }


def test_reference_canonicaliser_compares_two_tenants_by_name() -> None:
    def side(group_id: str, tag: str) -> tuple[dict[str, Any], ReferenceIndex]:
        refs = ReferenceIndex([Reference(RefKind.GROUP, group_id, "All Staff"),
                               Reference(RefKind.SCOPE_TAG, tag, "Helpdesk")])
        raw = [{"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group_id}}]
        doc = version_document(normal_content(PT, {"displayName": "P", "roleScopeTagIds": [tag]}),
                               assignment_records(raw))
        return doc, refs

    (a, refs_a), (b, refs_b) = side("g-aaa", "1"), side("g-bbb", "7")
    assert diff(a, b)  # by id they differ ...
    same_a = canonicalise_references(refs_a)(a)
    same_b = canonicalise_references(refs_b)(b)
    assert diff(same_a, same_b) == []  # ... by resolved name they are identical
    c, _ = side("g-ccc", "1")
    unresolved = canonicalise_references(ReferenceIndex([]))(c)  # nothing resolves on this side
    assert [(x.path, x.old, x.new) for x in diff(same_a, unresolved)] == [
        ("assignments[group:All Staff]", {"target_kind": "group", "group_name": "All Staff"}, None),
        ("assignments[group:unresolved:g-ccc]", None,
         {"target_kind": "group", "group_name": "unresolved:g-ccc"}),
        ("roleScopeTagIds", ["Helpdesk"], ["unresolved:1"]),
    ]


def test_diff_of_added_and_missing_objects() -> None:
    doc = {"displayName": "P", "ssid": "corp"}
    assert [(c.path, c.old, c.new) for c in diff(None, doc)] == [
        ("displayName", None, "P"), ("ssid", None, "corp")]
    assert diff(doc, None)[0].as_dict() == {"path": "displayName", "old": "P", "new": None}
    assert diff(doc, dict(doc)) == []
