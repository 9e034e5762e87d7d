"""T023: the whitelist keeps the normalised vocabulary, drops and counts everything else, never fails."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenantatlas_pipelines.errors import ErrorCode
from tenantatlas_pipelines.normalize import (
    MAX_NAME_CHARS,
    InventoryRecord,
    ItemFiltered,
    ItemRejected,
    fold_id,
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

    raw = json.loads('{"id": "a\\ud800b", "displayName": "x\\udfffy", "version": "v\\ud83d",'
                     ' "roleScopeTagIds": ["\\ud800"]}')
    rec = normalize_item(REGISTRY["deviceConfiguration"], raw)
    assert isinstance(rec, InventoryRecord)
    assert (rec.external_id, rec.display_name) == ("a\ufffdb", "x\ufffdy")
    assert rec.meta == {"version": "v\ufffd", "scope_tag_ids": ["\ufffd"]}
    for text in (rec.external_id, rec.display_name, json.dumps(rec.meta, ensure_ascii=False)):
        text.encode("utf-8")  # would raise on a lone surrogate


# --- issue 10: no value of any type fails an item; ids are stored in one case -------------------------
@pytest.mark.parametrize(
    "stamp",
    ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00.1234567+14:00"],
)
def test_a_timestamp_that_leaves_the_calendar_is_a_dropped_counted_field(stamp: str) -> None:
    rec = normalize_item(REGISTRY["deviceConfiguration"],
                         {"id": "a", "displayName": "n", "createdDateTime": stamp, "version": 1})
    assert isinstance(rec, InventoryRecord)
    assert rec.meta == {"version": "1"} and rec.meta_keys_dropped == 1


def test_an_integer_too_long_to_print_costs_its_field_or_is_a_counted_rejection() -> None:
    huge = 10**5000  # str() refuses it (Python's 4,300-digit limit)
    rec = normalize_item(REGISTRY["deviceConfiguration"],
                         {"id": "a", "version": huge, "roleScopeTagIds": [huge]})
    assert isinstance(rec, InventoryRecord) and rec.meta == {} and rec.meta_keys_dropped == 2
    rejected = normalize_item(REGISTRY["deviceConfiguration"], {"id": huge})
    assert isinstance(rejected, ItemRejected) and rejected.code == ErrorCode.ITEM_INVALID


def test_graph_ids_are_stored_with_ascii_letters_lower_cased() -> None:
    dc = REGISTRY["deviceConfiguration"]
    rec = normalize_item(dc, {"id": " A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D_DefaultWindows10 "})
    assert isinstance(rec, InventoryRecord)
    assert rec.external_id == "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d_defaultwindows10"
    odd = normalize_item(dc, {"id": "ÄÖ-İ-ß-X"})  # only ASCII folds: the same as PostgreSQL's "C" lower()
    assert isinstance(odd, InventoryRecord) and odd.external_id == "ÄÖ-İ-ß-x"
    assert fold_id("ABC-xyz-09") == "abc-xyz-09"
    filtered = normalize_item(REGISTRY["mobileApp"],
                              {"id": "APP-1", "appAvailability": "global", "isAssigned": False})
    assert filtered == ItemFiltered("app-1"), "a filtered item keeps its (folded) id: it was seen"


# Any JSON value, plus the ones json.loads can produce that strict JSON cannot (NaN, huge integers),
# strings with NUL and lone surrogates, and timestamps at and past the calendar's ends.
any_text = st.text(st.characters(exclude_categories=()), max_size=40)
# Past Python's 4,300-digit int-to-str limit (built lazily: hypothesis cannot print such a constant).
huge_ints = st.integers(1, 9).map(lambda d: d * 10**5000)
edge_stamps = st.sampled_from([
    "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.9999999-14:00",
    "9999-12-31T23:59:59+00:00", "2024-02-30T00:00:00Z", "2024-01-01T00:00:00.123456789Z", "2024-01-01",
    "24:00", "", " 2024-01-01T00:00:00Z ", "2024-01-01T00:00:00+99:00",
])
stamps = edge_stamps | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | huge_ints | st.floats() | any_text | stamps,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12,
)
any_id = st.one_of(any_text, st.uuids().map(lambda u: str(u).upper()), st.integers(), huge_ints, any_json)


def _source_keys(policy_type: Any) -> list[str]:
    return sorted(policy_type.source_keys)


@st.composite
def raw_items(draw: st.DrawFn) -> tuple[str, Any]:
    key = draw(st.sampled_from(sorted(REGISTRY)))
    policy_type = REGISTRY[key]
    item: dict[str, Any] = draw(st.dictionaries(any_text, any_json, max_size=3))
    for source in draw(st.lists(st.sampled_from(_source_keys(policy_type)), max_size=8, unique=True)):
        item[source] = draw(any_json | stamps)
    for field in policy_type.whitelist:  # nested sources (templateReference/templateId) too
        if len(field.source) > 1 and draw(st.booleans()):
            item[field.source[0]] = {field.source[1]: draw(any_json)}
    if draw(st.booleans()):
        item["id"] = draw(any_id)
    return key, draw(st.sampled_from([item, item, item, draw(any_json)]))


def test_normalise_any_json_never_raises_and_postgresql_stores_what_it_returns(conn: Any) -> None:
    from tenantatlas_pipelines.store.inventory import write_page
    from tenantatlas_pipelines.store.scope import tenant_scope
    from tenantatlas_pipelines.store.selections import add_selection, get_selection
    from tenantatlas_pipelines.store.sync_runs import start_run
    from tenantatlas_pipelines.store.tenants import add_tenant
    from tests.support import TENANT_A

    add_tenant(conn, TENANT_A, "contoso", "Contoso")
    add_selection(conn, "every-type", sorted(REGISTRY))
    scope = tenant_scope(conn, TENANT_A)
    run_id = start_run(scope, get_selection(conn, "every-type"), dagster_run_id=None, worker="test")
    conn.commit()

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(raw_items())
    def check(drawn: tuple[str, Any]) -> None:
        key, raw = drawn
        policy_type = REGISTRY[key]
        result = normalize_item(policy_type, raw)  # must not raise, whatever `raw` holds
        if isinstance(raw, dict) and isinstance(raw.get("id"), str) and raw["id"].strip(" \x00") \
                and len(raw["id"]) < 300 and (policy_type.keep is None or policy_type.keep(raw)):
            assert isinstance(result, InventoryRecord), (result, raw)  # bad values never cost the item
        if not isinstance(result, InventoryRecord):
            return
        assert set(result.meta) <= {f.key for f in policy_type.whitelist}
        assert result.external_id == fold_id(result.external_id)
        write_page(scope, run_id, key, [result], errors=0, filtered=0,
                   meta_keys_dropped=result.meta_keys_dropped)
        conn.commit()
        stored = conn.execute(
            """SELECT display_name, meta_jsonb FROM inventory_items
               WHERE tenant_id = %s AND policy_type = %s AND external_id = %s""",
            (TENANT_A, key, result.external_id),
        ).fetchone()
        conn.commit()
        assert stored == (result.display_name, result.meta), "what PostgreSQL holds is what normalize gave"

    check()
