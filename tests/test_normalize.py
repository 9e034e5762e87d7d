"""T023: the whitelist keeps the normalised vocabulary, drops and counts everything else, never fails."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantatlas_pipelines.errors import ErrorCode
from tenantatlas_pipelines.normalize import (
    MAX_NAME_CHARS,
    InventoryRecord,
    ItemFiltered,
    ItemRejected,
    normalize_item,
)
from tenantatlas_pipelines.policy_types import REGISTRY


def test_unknown_and_secret_keys_are_dropped_and_counted() -> None:
    raw = {
        "id": "abc",
        "displayName": "Wi-Fi",
        "@odata.type": "#microsoft.graph.windows10GeneralConfiguration",
        "createdDateTime": "2024-01-02T03:04:05.1234567Z",
        "version": 7,
        "roleScopeTagIds": ["0", "5"],
        "omaSettings": [{"value": "SECRET-OMA"}],
        "preSharedKey": "hunter2",
        "largeIcon": {"value": "A" * 5000},
    }
    rec = normalize_item(REGISTRY["deviceConfiguration"], raw)
    assert isinstance(rec, InventoryRecord)
    assert rec.meta == {
        "odata_type": "#microsoft.graph.windows10GeneralConfiguration",
        "created_at": "2024-01-02T03:04:05.123456Z",
        "version": "7",
        "scope_tag_ids": ["0", "5"],
    }
    assert rec.meta_keys_dropped == 3
    assert "hunter2" not in repr(rec) and "SECRET-OMA" not in repr(rec)


def test_type_specific_vocabulary() -> None:
    sc = normalize_item(
        REGISTRY["settingsCatalogPolicy"],
        {
            "id": "1",
            "name": "Baseline",
            "platforms": "windows10",
            "technologies": "mdm,microsoftSense",
            "templateReference": {"templateId": "t-1", "templateFamily": "endpointSecurityFirewall", "x": 1},
        },
    )
    assert isinstance(sc, InventoryRecord)
    assert sc.display_name == "Baseline"
    assert sc.meta == {
        "platforms": ["windows10"],
        "technologies": ["mdm,microsoftSense"],
        "template_id": "t-1",
        "template_family": "endpointSecurityFirewall",
    }
    af = normalize_item(REGISTRY["assignmentFilter"], {"id": "2", "displayName": "f", "roleScopeTags": ["0"]})
    assert isinstance(af, InventoryRecord) and af.meta == {"scope_tag_ids": ["0"]}
    ca = normalize_item(
        REGISTRY["conditionalAccessPolicy"],
        {"id": "3", "displayName": "MFA", "modifiedDateTime": "2024-05-01T00:00:00Z", "state": "enabled"},
    )
    assert isinstance(ca, InventoryRecord)
    assert ca.meta == {"modified_at": "2024-05-01T00:00:00Z", "state": "enabled"}
    app = normalize_item(REGISTRY["appProtectionPolicy"], {"id": "4", "displayName": "a", "version": '"3"'})
    assert isinstance(app, InventoryRecord) and app.meta == {"version": '"3"'}


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ({"displayName": "no id"}, ErrorCode.ITEM_WITHOUT_ID),
        ({"id": "", "displayName": "empty id"}, ErrorCode.ITEM_WITHOUT_ID),
        ({"id": None}, ErrorCode.ITEM_WITHOUT_ID),
        ({"id": {"nested": 1}}, ErrorCode.ITEM_WITHOUT_ID),
        ("a string", ErrorCode.ITEM_INVALID),
        (42, ErrorCode.ITEM_INVALID),
        (None, ErrorCode.ITEM_INVALID),
        ([{"id": "x"}], ErrorCode.ITEM_INVALID),
        ({"id": "x" * 600}, ErrorCode.ITEM_INVALID),
    ],
)
def test_bad_items_are_rejected_with_a_code(raw: Any, code: ErrorCode) -> None:
    result = normalize_item(REGISTRY["deviceConfiguration"], raw)
    assert isinstance(result, ItemRejected) and result.code == code


def test_hostile_strings_are_cleaned() -> None:
    rec = normalize_item(
        REGISTRY["deviceConfiguration"],
        {
            "id": "i\x00d",
            "displayName": "N\x00ame " + "x" * 10_000 + " 🙂",
            "version": {"not": "text"},
            "createdDateTime": "not a date",
            "roleScopeTagIds": [{"x": 1}],
        },
    )
    assert isinstance(rec, InventoryRecord)
    assert rec.external_id == "id"
    assert rec.display_name is not None and "\x00" not in rec.display_name
    assert len(rec.display_name) == MAX_NAME_CHARS
    assert rec.meta == {}
    assert rec.meta_keys_dropped == 3  # three values that did not fit their kind


def test_client_side_filters() -> None:
    apps = REGISTRY["mobileApp"]
    assert isinstance(
        normalize_item(apps, {"id": "1", "appAvailability": "global", "isAssigned": False}), ItemFiltered
    )
    assert isinstance(
        normalize_item(apps, {"id": "2", "appAvailability": "global", "isAssigned": True}), InventoryRecord
    )
    scripts = REGISTRY["deviceHealthScript"]
    assert isinstance(normalize_item(scripts, {"id": "3", "isGlobalScript": True}), ItemFiltered)
    assert isinstance(normalize_item(scripts, {"id": "4", "isGlobalScript": False}), InventoryRecord)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(
    st.sampled_from(sorted(REGISTRY)),
    st.dictionaries(st.text(max_size=20), json_values, max_size=12),
    json_values,
)
def test_normalisation_never_raises(key: str, payload: dict[str, Any], name: Any) -> None:
    policy_type = REGISTRY[key]
    payload = {**payload, "id": "fixed", policy_type.name_field: name}
    result = normalize_item(policy_type, payload)
    assert isinstance(result, InventoryRecord | ItemFiltered)
    if isinstance(result, InventoryRecord):
        allowed = {f.key for f in policy_type.whitelist}
        assert set(result.meta) <= allowed


def test_lone_surrogates_become_replacement_characters() -> None:
    import json

    raw = json.loads(
        '{"id": "a\\ud800b", "displayName": "x\\udfffy", "version": "v\\ud83d",'
        ' "roleScopeTagIds": ["\\ud800"]}'
    )
    rec = normalize_item(REGISTRY["deviceConfiguration"], raw)
    assert isinstance(rec, InventoryRecord)
    assert (rec.external_id, rec.display_name) == ("a\ufffdb", "x\ufffdy")
    assert rec.meta == {"version": "v\ufffd", "scope_tag_ids": ["\ufffd"]}
    for text in (rec.external_id, rec.display_name, json.dumps(rec.meta, ensure_ascii=False)):
        text.encode("utf-8")  # would raise on a lone surrogate
