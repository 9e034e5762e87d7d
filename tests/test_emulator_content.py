"""Emulator content (graph-facts.md "Content, assignments and references") over real TLS with httpx.

Full objects, assignments and settings both ways, references that resolve, groups, `$batch` with inner
throttling, secrets re-encrypted per read, volatile fields, cross-tenant ids, and the admin hooks the
drift / compare / dependency tests script scenarios with.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenantatlas_pipelines.emulator import (
    DEFAULT_SIZES,
    SECRET_PREFIX,
    Emulator,
    EmulatorClient,
    Fault,
    TenantSpec,
)
from tenantatlas_pipelines.emulator.assignments import ASSIGNABLE, EMPTY_GUID
from tenantatlas_pipelines.policy_types import REGISTRY
from tests.plugins.emulator import fetch_token

SIZES = {**dict.fromkeys(DEFAULT_SIZES, 3), "deviceConfiguration": 60, "settingsCatalogPolicy": 30,
         "mobileApp": 40, "assignmentFilter": 6, "roleScopeTag": 5}
ALPHA = TenantSpec("a1000000-0000-4000-8000-000000000001", "alpha", "Alpha", sizes=SIZES, groups=25)
BETA = TenantSpec("b2000000-0000-4000-8000-000000000002", "beta", "Beta", sizes=SIZES, groups=25)
TID = ALPHA.tenant_id
DEVCONF = "/beta/deviceManagement/deviceConfigurations"
POLICIES = "/beta/deviceManagement/configurationPolicies"
VOLATILE = {"lastModifiedDateTime", "modifiedDateTime", "version", "@odata.etag", "@odata.context",
            "secretReferenceValueId"}


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    with Emulator(state_dir=tmp_path / "emu", tenants=[ALPHA, BETA]) as emulator:
        yield emulator


def _graph(emu: Emulator, tid: str = TID) -> httpx.Client:
    return httpx.Client(base_url=emu.graph_url, verify=ssl.create_default_context(cafile=str(emu.ca_path)),
                        headers={"Authorization": "Bearer " + fetch_token(emu, tid)}, timeout=30)


@pytest.fixture
def graph(emu: Emulator) -> Iterator[httpx.Client]:
    with _graph(emu) as http:
        yield http


def _walk(http: httpx.Client, url: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        resp = http.get(next_url)
        assert resp.status_code == 200, resp.text
        items.extend(resp.json()["value"])
        next_url = resp.json().get("@odata.nextLink")
    return items


def _path(ptype: str) -> str:
    t = REGISTRY[ptype]
    return f"/{t.api_version}/{t.path}"


def _canon(node: Any) -> Any:
    """What a careful normal form keeps: volatile keys dropped, ciphertext masked, arrays as sets."""
    if isinstance(node, dict):
        out = {k: _canon(v) for k, v in node.items() if k not in VOLATILE}
        if node.get("isEncrypted") or str(node.get("@odata.type", "")).endswith("SecretSettingValue"):
            out["value"] = "<secret>"
            out.pop("valueState", None)
        return out
    if isinstance(node, list):
        return sorted((_canon(v) for v in node), key=lambda v: json.dumps(v, sort_keys=True))
    return node


def _kind(assignment: dict[str, Any]) -> str:
    return assignment["target"]["@odata.type"].rsplit(".", 1)[-1]


# --- full content ------------------------------------------------------------------------------------


def test_every_type_serves_its_full_object_by_id(emu: Emulator, graph: httpx.Client) -> None:
    for ptype in REGISTRY:
        stored = emu.objects(TID, ptype)[0]
        resp = graph.get(f"{_path(ptype)}/{stored['id']}")
        assert resp.status_code == 200, (ptype, resp.text)
        got = resp.json()
        assert got["id"] == stored["id"] and got["@odata.context"].endswith("/$entity")
        assert _canon(got) == _canon(stored), ptype  # same content, only volatile parts differ
    assert graph.get(f"{DEVCONF}/00000000-0000-4000-8000-000000000000/assignments").status_code == 404


def test_device_configurations_carry_realistic_settings_and_secrets(emu: Emulator) -> None:
    stored = emu.objects(TID, "deviceConfiguration")
    kinds = {o["@odata.type"].rsplit(".", 1)[-1] for o in stored}
    assert {"windows10CustomConfiguration", "androidDeviceOwnerWiFiConfiguration",
            "windows10VpnConfiguration", "windows10GeneralConfiguration"} <= kinds
    oma = [s for o in stored for s in o.get("omaSettings", [])]
    assert {s["@odata.type"] for s in oma} >= {"#microsoft.graph.omaSettingString",
                                              "#microsoft.graph.omaSettingInteger"}
    encrypted = [s for s in oma if s["isEncrypted"]]
    assert encrypted and all(s["value"].startswith(SECRET_PREFIX) for s in encrypted)
    assert not any(str(s["value"]).startswith(SECRET_PREFIX) for s in oma if not s["isEncrypted"])
    assert any(o.get("preSharedKey", "").startswith(SECRET_PREFIX) for o in stored)
    assert any(o.get("password", "").startswith(SECRET_PREFIX) for o in stored)


def test_encrypted_values_are_reencrypted_on_every_read_and_decryptable(emu: Emulator,
                                                                        graph: httpx.Client) -> None:
    stored = next(o for o in emu.objects(TID, "deviceConfiguration")
                  if any(s["isEncrypted"] for s in o.get("omaSettings", [])))
    secret = next(s for s in stored["omaSettings"] if s["isEncrypted"])
    reads = [graph.get(f"{DEVCONF}/{stored['id']}").json(),
             graph.get(f"{DEVCONF}/{stored['id']}").json(),
             next(o for o in _walk(graph, DEVCONF) if o["id"] == stored["id"])]  # plain listing too
    served = [next(s for s in r["omaSettings"] if s["omaUri"] == secret["omaUri"]) for r in reads]
    values = {s["value"] for s in served}
    refs = {s["secretReferenceValueId"] for s in served}
    assert len(values) == 3 and len(refs) == 3 and None not in refs
    assert not any(SECRET_PREFIX in v for v in values)
    for s in served:
        url = (f"{DEVCONF}/{stored['id']}/getOmaSettingPlainTextValue(secretReferenceValueId="
               f"'{s['secretReferenceValueId']}')")
        assert graph.get(url).json()["value"] == secret["value"]
    other = emu.objects(TID, "deviceConfiguration")[1]["id"]
    ref = served[0]["secretReferenceValueId"]
    wrong = f"{DEVCONF}/{other}/getOmaSettingPlainTextValue(secretReferenceValueId='{ref}')"
    assert graph.get(wrong).status_code == 404
    with _graph(emu, BETA.tenant_id) as beta:  # a reference never crosses tenants
        assert beta.get(url).status_code == 404


def test_content_reads_move_volatile_fields_and_order_but_not_content(emu: Emulator,
                                                                       graph: httpx.Client) -> None:
    oid = next(o["id"] for o in emu.objects(TID, "deviceConfiguration") if len(o["roleScopeTagIds"]) > 1
               or len(o.get("omaSettings", [])) > 2)
    reads = [graph.get(f"{DEVCONF}/{oid}?$expand=assignments").json() for _ in range(8)]
    for key in ("lastModifiedDateTime", "version", "@odata.etag"):
        assert len({json.dumps(r[key]) for r in reads}) > 1, key
    orders = {json.dumps([r.get("omaSettings"), r["roleScopeTagIds"], r["assignments"]]) for r in reads}
    assert len(orders) > 1  # arrays come back in varying order
    assert all(_canon(r) == _canon(reads[0]) for r in reads)
    pols = [graph.get(f"{POLICIES}?$expand=settings").json()["value"] for _ in range(2)]
    assert [p["id"] for p in pols[0]] != [p["id"] for p in pols[1]] or \
        pols[0][0]["settings"] != pols[1][0]["settings"]
    assert _canon(pols[0]) == _canon(pols[1])


def test_plain_listings_stay_stable_for_inventory_unless_asked(emu: Emulator, graph: httpx.Client) -> None:
    def strip(items: list[dict[str, Any]]) -> list[dict[str, Any]]:  # only secrets may move
        for o in items:
            for s in o.get("omaSettings", []):
                s.pop("value", None) if s["isEncrypted"] else None
                s.pop("secretReferenceValueId", None)
        return items

    first, second = strip(_walk(graph, DEVCONF)), strip(_walk(graph, DEVCONF))
    assert first == second
    emu.set_volatile_lists(True)
    third = strip(_walk(graph, DEVCONF))
    assert third != second and _canon(third) == _canon(second)


# --- assignments -------------------------------------------------------------------------------------


def test_assignments_both_ways_agree_for_every_assignable_type(emu: Emulator, graph: httpx.Client) -> None:
    for ptype in sorted(ASSIGNABLE):
        listed = _walk(graph, f"{_path(ptype)}?$expand=assignments")
        assert all("assignments" in o for o in listed), ptype
        for obj in listed[:3]:
            direct = graph.get(f"{_path(ptype)}/{obj['id']}/assignments").json()["value"]
            stored = emu.assignments(TID, ptype, obj["id"])
            assert _canon(direct) == _canon(obj["assignments"]) == _canon(stored)
    assert "assignments" not in _walk(graph, DEVCONF)[0]  # only when expanded
    bad = graph.get(_path("roleScopeTag") + "?$expand=assignments")
    assert bad.status_code == 400 and "Could not find a property named 'assignments'" in bad.text
    assert graph.get(DEVCONF + "?$expand=settings").status_code == 400


def test_assignment_targets_filters_and_intents_cover_graph_facts(emu: Emulator, graph: httpx.Client) -> None:
    assigned = [a for o in _walk(graph, f"{DEVCONF}?$expand=assignments") for a in o["assignments"]]
    apps = [a for o in _walk(graph, _path("mobileApp") + "?$expand=assignments") for a in o["assignments"]]
    everything = assigned + apps
    assert {_kind(a) for a in everything} == {"groupAssignmentTarget", "exclusionGroupAssignmentTarget",
                                             "allDevicesAssignmentTarget", "allLicensedUsersAssignmentTarget"}
    filter_types = {a["target"]["deviceAndAppManagementAssignmentFilterType"] for a in everything}
    assert filter_types == {"include", "exclude", "none"}
    nones = {a["target"]["deviceAndAppManagementAssignmentFilterId"] for a in everything
             if a["target"]["deviceAndAppManagementAssignmentFilterType"] == "none"}
    assert nones == {None, EMPTY_GUID}  # both spellings of "no filter" occur
    assert not any(a["target"]["deviceAndAppManagementAssignmentFilterType"] != "none"
                   for a in everything if _kind(a) == "exclusionGroupAssignmentTarget")
    assert {a["intent"] for a in apps} == {"required", "available", "uninstall"}
    assert all("groupId" in a["target"] for a in everything if "Group" in _kind(a))


def test_every_reference_resolves_in_its_own_tenant(emu: Emulator, graph: httpx.Client) -> None:
    filters = {f["id"] for f in _walk(graph, _path("assignmentFilter"))}
    tags = {t["id"] for t in _walk(graph, _path("roleScopeTag"))}
    assert "0" in tags
    refs_groups: set[str] = set()
    for ptype in sorted(ASSIGNABLE):
        for obj in _walk(graph, f"{_path(ptype)}?$expand=assignments"):
            assert set(obj.get("roleScopeTagIds", [])) <= tags, ptype
            for a in obj["assignments"]:
                fid = a["target"]["deviceAndAppManagementAssignmentFilterId"]
                assert fid in (None, EMPTY_GUID) or fid in filters
                if "groupId" in a["target"]:
                    refs_groups.add(a["target"]["groupId"])
    for f in _walk(graph, _path("assignmentFilter")):
        assert set(f["roleScopeTags"]) <= tags and f["rule"] and f["platform"]
    resolved = graph.post("/v1.0/directoryObjects/getByIds",
                          json={"ids": sorted(refs_groups), "types": ["group"]}).json()["value"]
    assert {g["id"] for g in resolved} == refs_groups


# --- settings catalog --------------------------------------------------------------------------------


def test_settings_both_ways_paged_and_realistic(emu: Emulator, graph: httpx.Client) -> None:
    policies = _walk(graph, f"{POLICIES}?$expand=settings")
    assert len(policies) == 30
    kinds: set[str] = set()
    for pol in policies[:6]:
        assert 20 <= len(pol["settings"]) <= 61 and pol["settingCount"] in (len(pol["settings"]),
                                                                              len(pol["settings"]) - 1)
        first = graph.get(f"{POLICIES}/{pol['id']}/settings").json()
        assert len(first["value"]) == min(25, len(pol["settings"]))
        assert first["@odata.count"] == len(pol["settings"])
        assert ("$skiptoken=" in first.get("@odata.nextLink", "")) == (len(pol["settings"]) > 25)
        paged = _walk(graph, f"{POLICIES}/{pol['id']}/settings")
        assert _canon(paged) == _canon(pol["settings"])
        ids = [s["settingInstance"]["settingDefinitionId"] for s in paged]
        assert len(ids) == len(set(ids))  # keyed by settingDefinitionId
        kinds |= {s["settingInstance"]["@odata.type"].rsplit("Configuration", 1)[-1] for s in paged}
    assert {"ChoiceSettingInstance", "SimpleSettingInstance", "GroupSettingCollectionInstance",
            "SimpleSettingCollectionInstance"} <= kinds
    both = graph.get(f"{POLICIES}?$expand=assignments,settings").json()["value"][0]
    assert "assignments" in both and "settings" in both
    dc = emu.objects(TID, "deviceConfiguration")[0]["id"]
    assert graph.get(f"{DEVCONF}/{dc}/settings").status_code == 400


def test_secret_settings_are_encrypted_value_tokens(emu: Emulator, graph: httpx.Client) -> None:
    emu.set_size(TID, "settingsCatalogPolicy", 120)
    stored = [(p["id"], s) for p in emu.objects(TID, "settingsCatalogPolicy")
              for s in emu.settings(TID, p["id"])
              if s["settingInstance"].get("simpleSettingValue", {}).get("@odata.type", "").endswith("Secret"
                                                                                                  "SettingValue")]
    assert stored
    pid, setting = stored[0]
    served = [next(s for s in graph.get(f"{POLICIES}/{pid}?$expand=settings").json()["settings"]
                   if s["id"] == setting["id"]) for _ in range(2)]
    values = [s["settingInstance"]["simpleSettingValue"] for s in served]
    assert values[0]["valueState"] == "encryptedValueToken" and values[0]["value"] != values[1]["value"]
    assert SECRET_PREFIX not in json.dumps(values)


# --- groups ------------------------------------------------------------------------------------------


def test_get_by_ids_and_groups_by_id(emu: Emulator, graph: httpx.Client) -> None:
    groups = emu.groups(TID)
    assert len(groups) == 25
    assert {tuple(g["groupTypes"]) for g in groups} >= {(), ("Unified",), ("DynamicMembership",)}
    assert all(g["membershipRule"] for g in groups if "DynamicMembership" in g["groupTypes"])
    ids = [g["id"] for g in groups]
    unknown = "00000000-0000-4000-8000-00000000abcd"
    resp = graph.post("/v1.0/directoryObjects/getByIds", json={"ids": [*ids, unknown], "types": ["group"]})
    assert resp.status_code == 200
    got = resp.json()["value"]
    assert sorted(g["id"] for g in got) == sorted(ids)
    sample = next(g for g in got if g["id"] == ids[0])
    assert {"displayName", "groupTypes", "securityEnabled", "membershipRule"} <= set(sample)
    assert graph.post("/v1.0/directoryObjects/getByIds",
                      json={"ids": ids, "types": ["user"]}).json()["value"] == []
    too_many = graph.post("/v1.0/directoryObjects/getByIds",
                          json={"ids": [unknown] * 1001, "types": ["group"]})
    assert too_many.status_code == 400 and too_many.json()["error"]["code"] == "Request_BadRequest"
    assert graph.post("/v1.0/directoryObjects/getByIds", json={"ids": [unknown] * 1000}).status_code == 200
    assert graph.post("/v1.0/directoryObjects/getByIds", json={"ids": ["not-a-guid"]}).status_code == 400
    one = graph.get(f"/v1.0/groups/{ids[1]}?$select=displayName,groupTypes,membershipRule").json()
    assert set(one) == {"@odata.context", "id", "@odata.type", "displayName", "groupTypes", "membershipRule"}
    emu.remove_group(TID, ids[1])
    gone = graph.get(f"/v1.0/groups/{ids[1]}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "Request_ResourceNotFound"
    after = graph.post("/v1.0/directoryObjects/getByIds",
                       json={"ids": ids, "types": ["group"]}).json()["value"]
    assert ids[1] not in {g["id"] for g in after} and len(after) == 24
    with pytest.raises(KeyError):
        emu.remove_group(TID, ids[1])


def test_group_endpoints_work_for_an_unlicensed_tenant_and_obey_faults(tmp_path: Path) -> None:
    spec = TenantSpec("c3000000-0000-4000-8000-000000000003", "nolicence", "No licence", sizes=SIZES,
                      licensed=False, groups=3)
    with Emulator(state_dir=tmp_path, tenants=[spec]) as emu, _graph(emu, spec.tenant_id) as http:
        gid = emu.groups(spec.tenant_id)[0]["id"]
        assert http.get(f"/v1.0/groups/{gid}").status_code == 200
        assert http.get(DEVCONF).status_code == 400
        emu.inject(Fault("throttle", policy_type="group", retry_after="1.5", count=1))
        throttled = http.post("/v1.0/directoryObjects/getByIds", json={"ids": [gid]})
        assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1.5"
        again = http.post("/v1.0/directoryObjects/getByIds", json={"ids": [gid]})
        assert again.json()["value"][0]["id"] == gid


# --- $batch ------------------------------------------------------------------------------------------


def test_batch_answers_each_inner_request_on_its_own(emu: Emulator, graph: httpx.Client) -> None:
    ids = [o["id"] for o in emu.objects(TID, "deviceConfiguration")[:18]]
    requests = [{"id": f"r{i}", "method": "GET",
                 "url": f"/deviceManagement/deviceConfigurations/{oid}/assignments"}
                for i, oid in enumerate(ids)]
    requests.append({"id": "missing", "method": "GET",
                     "url": "/deviceManagement/deviceConfigurations/00000000-0000-4000-8000-000000000000"})
    requests.append({"id": "groups", "method": "POST", "url": "/directoryObjects/getByIds",
                     "body": {"ids": [emu.groups(TID)[0]["id"]], "types": ["group"]},
                     "headers": {"Content-Type": "application/json"}})
    resp = graph.post("/beta/$batch", json={"requests": requests})
    assert resp.status_code == 200
    answers = {r["id"]: r for r in resp.json()["responses"]}
    assert set(answers) == {r["id"] for r in requests}
    for i, oid in enumerate(ids):
        assert answers[f"r{i}"]["status"] == 200
        stored = emu.assignments(TID, "deviceConfiguration", oid)
        assert _canon(answers[f"r{i}"]["body"]["value"]) == _canon(stored)
    missing = answers["missing"]
    assert missing["status"] == 404 and missing["body"]["error"]["code"] == "ResourceNotFound"
    assert len(answers["groups"]["body"]["value"]) == 1
    batch_id = resp.headers["request-id"]
    inner = [r for r in emu.request_log if r.batch == batch_id]
    assert len(inner) == 20 and {r.status for r in inner} == {200, 404}
    outer = [r for r in emu.request_log if r.policy_type == "$batch"]
    assert len(outer) == 1 and outer[0].batch is None
    too_many = graph.post("/beta/$batch",
                          json={"requests": [{**requests[0], "id": str(i)} for i in range(21)]})
    assert too_many.status_code == 400 and "20" in too_many.json()["error"]["message"]
    for bad in ({"requests": []}, {"requests": [requests[0], requests[0]]}, {"nope": 1}):
        assert graph.post("/beta/$batch", json=bad).status_code == 400
    nested = graph.post("/beta/$batch", json={"requests": [{"id": "1", "method": "POST", "url": "/$batch"}]})
    assert nested.json()["responses"][0]["status"] == 400


def test_batch_inner_requests_count_against_the_rate_limit(tmp_path: Path) -> None:
    spec = TenantSpec("d4000000-0000-4000-8000-000000000004", "limited", "Limited", sizes=SIZES,
                      rate_limit=(6, 60.0), rate_limit_retry_after="always")
    with Emulator(state_dir=tmp_path, tenants=[spec]) as emu, _graph(emu, spec.tenant_id) as http:
        oid = emu.objects(spec.tenant_id, "deviceConfiguration")[0]["id"]
        requests = [{"id": str(i), "method": "GET", "url": f"/deviceManagement/deviceConfigurations/{oid}"}
                    for i in range(10)]
        resp = http.post("/beta/$batch", json={"requests": requests})
        assert resp.status_code == 200  # the outer answer is 200 even though inner requests were throttled
        statuses = sorted(r["status"] for r in resp.json()["responses"])
        assert statuses == [200] * 6 + [429] * 4
        throttled = [r for r in resp.json()["responses"] if r["status"] == 429]
        assert all(float(r["headers"]["Retry-After"]) > 0 for r in throttled)
        assert all(r["body"]["error"]["code"] == "TooManyRequests" for r in throttled)
        # the new endpoints share the window with everything else
        assert http.get(f"{DEVCONF}/{oid}/assignments").status_code == 429
        assert http.post("/v1.0/directoryObjects/getByIds", json={"ids": []}).status_code == 429


def test_batch_inner_faults_carry_their_own_retry_after(emu: Emulator, graph: httpx.Client) -> None:
    emu.inject(Fault("throttle", policy_type="settingsCatalogPolicy", ratio=0.5, retry_after="2.128"))
    pids = [p["id"] for p in emu.objects(TID, "settingsCatalogPolicy")[:4]]
    requests = [{"id": pid, "method": "GET", "url": f"/deviceManagement/configurationPolicies/{pid}/settings"}
                for pid in pids]
    answers = graph.post("/beta/$batch", json={"requests": requests}).json()["responses"]
    throttled = [a for a in answers if a["status"] == 429]
    assert len(throttled) == 2 and all(a["headers"]["Retry-After"] == "2.128" for a in throttled)


def test_latency_applies_to_the_new_endpoints(tmp_path: Path) -> None:
    with Emulator(state_dir=tmp_path, tenants=[ALPHA], latency_ms=50) as emu, _graph(emu) as http:
        oid = emu.objects(TID, "deviceConfiguration")[0]["id"]
        inner = {"id": "1", "method": "GET", "url": f"/deviceManagement/deviceConfigurations/{oid}"}
        for call in (lambda: http.get(f"{DEVCONF}/{oid}/assignments"),
                     lambda: http.post("/v1.0/directoryObjects/getByIds", json={"ids": []}),
                     lambda: http.post("/beta/$batch", json={"requests": [inner]})):
            started = time.monotonic()
            assert call().status_code == 200
            assert time.monotonic() - started >= 0.05  # a lower bound only: never flaky under load


# --- cross-tenant realism ----------------------------------------------------------------------------


def test_two_tenants_differ_only_by_ids(emu: Emulator) -> None:
    a, b = ALPHA.tenant_id, BETA.tenant_id
    names: dict[str, dict[str, str]] = {}  # tenant -> id -> name, for every referenceable thing
    for tid in (a, b):
        names[tid] = {g["id"]: g["displayName"] for g in emu.groups(tid)}
        names[tid] |= {o["id"]: o["displayName"] for o in emu.objects(tid, "assignmentFilter")}
        names[tid] |= {o["id"]: o["displayName"] for o in emu.objects(tid, "roleScopeTag")}
        names[tid] |= {o["id"]: REGISTRY["mobileApp"].name_field + ":" + o["displayName"]
                       for o in emu.objects(tid, "mobileApp")}
        names[tid][tid] = "<tenant>"
    assert set(names[a]) & set(names[b]) == {"0"}  # no id is shared except the built-in scope tag

    def by_name(tid: str, node: Any, own: str) -> Any:
        if isinstance(node, dict):
            return {k: by_name(tid, v, own) for k, v in node.items() if k != "id"}
        if isinstance(node, list):
            return [by_name(tid, v, own) for v in node]
        if isinstance(node, str):
            for ref, name in [(own, "<self>"), *names[tid].items()]:
                node = node.replace(ref, name) if len(ref) > 1 else (name if node == ref else node)
        return node

    for ptype in REGISTRY:
        left, right = emu.objects(a, ptype), emu.objects(b, ptype)
        assert {o["id"] for o in left}.isdisjoint({o["id"] for o in right}) or ptype == "roleScopeTag"
        for x, y in zip(left, right, strict=True):
            ex, ey = emu.entity(a, ptype, x["id"]), emu.entity(b, ptype, y["id"])
            assert by_name(a, ex, x["id"]) == by_name(b, ey, y["id"]), ptype


# --- admin hooks -------------------------------------------------------------------------------------


def test_admin_hooks_over_the_admin_api(emu: Emulator, graph: httpx.Client) -> None:
    with EmulatorClient(emu.base_url, emu.ca_path) as admin:
        pid = emu.objects(TID, "settingsCatalogPolicy")[0]["id"]
        setting = next(s for s in admin.settings(TID, pid) if "choiceSettingValue" in s["settingInstance"])
        definition = setting["settingInstance"]["settingDefinitionId"]
        admin.set_setting(TID, "settingsCatalogPolicy", pid, definition, 7)
        admin.rename_object(TID, "settingsCatalogPolicy", pid, "Renamed baseline")
        served = graph.get(f"{POLICIES}/{pid}?$expand=settings").json()
        assert served["name"] == "Renamed baseline"
        changed = next(s for s in served["settings"]
                       if s["settingInstance"]["settingDefinitionId"] == definition)
        assert changed["settingInstance"]["choiceSettingValue"]["value"] == f"{definition}_7"

        dc = next(o for o in emu.objects(TID, "deviceConfiguration") if o.get("omaSettings"))
        uri = dc["omaSettings"][0]["omaUri"]
        admin.set_setting(TID, "deviceConfiguration", dc["id"], uri, 4242)
        wifi = next(o for o in emu.objects(TID, "deviceConfiguration") if "preSharedKey" in o)
        admin.set_setting(TID, "deviceConfiguration", wifi["id"], "preSharedKey", "SECRET-PSK-rotated")
        assert graph.get(f"{DEVCONF}/{wifi['id']}").json()["preSharedKey"] == "SECRET-PSK-rotated"
        oma = graph.get(f"{DEVCONF}/{dc['id']}").json()["omaSettings"]
        got = next(s for s in oma if s["omaUri"] == uri)
        assert got["isEncrypted"] or got["value"] == 4242
        with pytest.raises(KeyError):
            admin.set_setting(TID, "deviceConfiguration", dc["id"], "noSuchProperty", 1)

        group = admin.add_group(TID, {"displayName": "Scenario group", "groupTypes": ["Unified"]})
        assignment = admin.add_assignment(TID, "deviceConfiguration", dc["id"], "group", group_id=group,
                                          filter_id=emu.objects(TID, "assignmentFilter")[0]["id"],
                                          filter_type="exclude")
        direct = graph.get(f"{DEVCONF}/{dc['id']}/assignments").json()["value"]
        assert assignment["id"] in {a["id"] for a in direct}
        assert graph.get(f"/v1.0/groups/{group}").json()["displayName"] == "Scenario group"
        admin.remove_group(TID, group)
        assert graph.get(f"/v1.0/groups/{group}").status_code == 404
        still = graph.get(f"{DEVCONF}/{dc['id']}/assignments").json()["value"]
        assert group in {a["target"].get("groupId") for a in still}  # a removed group leaves a dangling ref
        assert admin.remove_assignment(TID, "deviceConfiguration", dc["id"], group) == 1
        assert group not in {a["target"].get("groupId")
                             for a in graph.get(f"{DEVCONF}/{dc['id']}/assignments").json()["value"]}
        with pytest.raises(KeyError):
            admin.remove_assignment(TID, "deviceConfiguration", dc["id"], group)
        with pytest.raises(RuntimeError):  # a filter type without a filter is bad input (400)
            admin.add_assignment(TID, "deviceConfiguration", dc["id"], "allDevices", filter_type="include")
        admin.add_assignment(TID, "mobileApp", emu.objects(TID, "mobileApp")[0]["id"], "allLicensedUsers",
                             intent="available")

        new_id = admin.add_object(TID, "settingsCatalogPolicy", None)
        assert len(graph.get(f"{POLICIES}/{new_id}?$expand=settings").json()["settings"]) >= 20
        assert admin.assignments(TID, "settingsCatalogPolicy", new_id) == emu.assignments(
            TID, "settingsCatalogPolicy", new_id)
        admin.remove_object(TID, "settingsCatalogPolicy", new_id)
        assert graph.get(f"{POLICIES}/{new_id}").status_code == 404
        admin.reencrypt()
        admin.set_volatile_lists(True)
        assert emu.state.volatile_lists is True


def test_objects_added_with_content_keep_it(emu: Emulator, graph: httpx.Client) -> None:
    pid = emu.add_object(TID, "settingsCatalogPolicy", {
        "name": "Hand made", "@odata.type": "#microsoft.graph.deviceManagementConfigurationPolicy",
        "settings": [{"id": "0", "settingInstance": {
            "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance",
            "settingDefinitionId": "x_y", "choiceSettingValue": {"value": "x_y_1", "children": []}}}],
        "assignments": []})
    got = graph.get(f"{POLICIES}/{pid}?$expand=settings,assignments").json()
    assert got["name"] == "Hand made" and got["assignments"] == [] and len(got["settings"]) == 1
    listed = next(p for p in _walk(graph, POLICIES) if p["id"] == pid)
    assert "settings" not in listed and "assignments" not in listed  # navigation properties stay apart
    emu.update_object(TID, "settingsCatalogPolicy", pid, {"description": "changed"})
    assert graph.get(f"{POLICIES}/{pid}/settings").json()["value"][0]["id"] == "0"


def test_a_huge_tenant_serves_content_lazily(tmp_path: Path) -> None:
    spec = TenantSpec("e5000000-0000-4000-8000-000000000005", "huge", "Huge",
                      sizes={**dict.fromkeys(DEFAULT_SIZES, 1), "settingsCatalogPolicy": 50_000},
                      groups=5_000)
    with Emulator(state_dir=tmp_path, tenants=[spec]) as emu, _graph(emu, spec.tenant_id) as http:
        last = emu.state.collection(spec.tenant_id, "settingsCatalogPolicy").payload_at(49_999)
        assert last is not None
        got = http.get(f"{POLICIES}/{last['id']}?$expand=settings,assignments").json()
        assert got["name"] == last["name"] and len(got["settings"]) >= 20
        page = http.get(f"{POLICIES}?$expand=settings").json()
        assert len(page["value"]) == 25 and all(len(p["settings"]) >= 20 for p in page["value"])


def test_admin_api_rejects_bad_content_scripting_with_clear_errors(emu: Emulator) -> None:
    oid = emu.objects(TID, "deviceConfiguration")[0]["id"]
    base = f"{emu.base_url}/_emulator/objects/{TID}/deviceConfiguration/{oid}"
    with httpx.Client(verify=ssl.create_default_context(cafile=str(emu.ca_path)), timeout=10) as http:
        cases = [
            ("POST", f"{base}/assignments", {"group_id": "x"}, 400, "kind"),
            ("POST", f"{base}/assignments", {"kind": "everyone"}, 400, "assignment kind"),
            ("POST", f"{base}/assignments", {"kind": "group"}, 400, "needs a group id"),
            ("PUT", f"{base}/setting", {"key": "displayName"}, 400, "value"),
            ("PATCH", base, {"id": "another"}, 400, "cannot be changed"),
            ("DELETE", f"{base}/assignments/nothing-like-this", None, 404, "no assignment"),
            ("GET", f"{emu.base_url}/_emulator/objects/{TID}/deviceConfiguration/nope", None, 404,
             "no object"),
            ("DELETE", f"{emu.base_url}/_emulator/groups/{TID}/nope", None, 404, "no group"),
            ("POST", f"{emu.base_url}/_emulator/objects/{TID}/roleScopeTag/0/assignments",
             {"kind": "allDevices"}, 400, "no assignments"),
        ]
        for method, url, body, status, text in cases:
            resp = http.request(method, url, json=body)
            assert resp.status_code == status and text in resp.text, (method, url, resp.text)


def test_state_counts_groups_and_content_is_the_same_in_another_process(emu: Emulator) -> None:
    gid = emu.groups(TID)[0]["id"]
    emu.remove_group(TID, gid)
    emu.add_group(TID, {"displayName": "Extra"})
    counts = {t["key"]: t["group_count"] for t in emu.describe()["tenants"]}
    assert counts == {"alpha": 25, "beta": 25}
    emu.add_group(TID)
    assert {t["key"]: t["group_count"] for t in emu.describe()["tenants"]}["alpha"] == 26
    code = (
        "import json, sys\n"
        "from tenantatlas_pipelines.emulator import refs_of, TenantSpec\n"
        "from tenantatlas_pipelines.emulator.assignments import generate_assignments\n"
        "from tenantatlas_pipelines.emulator.catalog import generate_settings\n"
        "from tenantatlas_pipelines.emulator.payloads import generate\n"
        "spec = TenantSpec.from_json(json.loads(sys.argv[1]))\n"
        "p = generate(0, spec.tenant_id, 'settingsCatalogPolicy', 3, refs_of(0, spec))\n"
        "print(json.dumps({'payload': p, 'settings': generate_settings(0, 3), 'assignments': "
        "generate_assignments(0, 'settingsCatalogPolicy', 3, p['id'], refs_of(0, spec),"
        " spec.assigned_ratio)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, json.dumps(BETA.to_json())],
                         capture_output=True, text=True, check=True).stdout
    remote = json.loads(out)
    pid = emu.objects(BETA.tenant_id, "settingsCatalogPolicy")[3]["id"]
    local = emu.entity(BETA.tenant_id, "settingsCatalogPolicy", pid)
    assert remote["payload"]["id"] == pid
    expected = {**remote["payload"], "assignments": remote["assignments"], "settings": remote["settings"]}
    assert expected == local


def test_app_protection_is_addressable_per_platform_collection(emu: Emulator, graph: httpx.Client) -> None:
    oid = emu.objects(TID, "appProtectionPolicy")[0]["id"]
    for collection in ("managedAppPolicies", "iosManagedAppProtections", "androidManagedAppProtections"):
        one = graph.get(f"/beta/deviceAppManagement/{collection}/{oid}")
        assert one.status_code == 200 and one.json()["id"] == oid
        assigned = graph.get(f"/beta/deviceAppManagement/{collection}/{oid}/assignments").json()["value"]
        assert _canon(assigned) == _canon(emu.assignments(TID, "appProtectionPolicy", oid))


def test_assigned_ratio_controls_how_much_is_assigned(tmp_path: Path) -> None:
    every = TenantSpec("f7000000-0000-4000-8000-000000000007", "every", "Every", sizes=SIZES,
                       assigned_ratio=1.0)
    none = TenantSpec("f8000000-0000-4000-8000-000000000008", "none", "None", sizes=SIZES, assigned_ratio=0.0)
    with Emulator(state_dir=tmp_path, tenants=[every, none]) as emu:
        for ptype in ("deviceConfiguration", "settingsCatalogPolicy", "mobileApp"):
            for o in emu.objects(every.tenant_id, ptype):
                assert emu.assignments(every.tenant_id, ptype, o["id"]), ptype
            assert not any(emu.assignments(none.tenant_id, ptype, o["id"])
                           for o in emu.objects(none.tenant_id, ptype))


def test_administrative_templates_serve_definition_and_presentation_values(emu: Emulator,
                                                                           graph: httpx.Client) -> None:
    gpc = "/beta/deviceManagement/groupPolicyConfigurations"
    oid = emu.objects(TID, "groupPolicyConfiguration")[0]["id"]
    stored = emu.entity(TID, "groupPolicyConfiguration", oid)["definitionValues"]
    assert 2 <= len(stored) <= 8
    plain = graph.get(f"{gpc}/{oid}/definitionValues").json()["value"]
    assert {v["id"] for v in plain} == {v["id"] for v in stored}
    assert not any("definition" in v or "presentationValues" in v for v in plain)
    expanded = graph.get(f"{gpc}/{oid}/definitionValues?$expand=definition").json()["value"]
    assert all(v["definition"]["displayName"] and v["definition"]["categoryPath"] for v in expanded)
    with_values = [v for v in stored if v["presentationValues"]]
    for value in with_values:
        url = f"{gpc}/{oid}/definitionValues/{value['id']}/presentationValues?$expand=presentation"
        served = graph.get(url).json()["value"]
        assert _canon(served) == _canon(value["presentationValues"])
        assert all(p["presentation"]["label"] for p in served)
    inline = graph.get(f"{gpc}/{oid}?$expand=definitionValues").json()["definitionValues"]
    assert _canon(inline) == _canon(stored)
    assert graph.get(f"{gpc}/{oid}/definitionValues/00000000-0000-4000-8000-000000000000/"
                     "presentationValues").status_code == 404
    # the same definitions (Microsoft's ADMX ids) in every tenant, the values' ids per tenant
    other = emu.entity(BETA.tenant_id, "groupPolicyConfiguration",
                       emu.objects(BETA.tenant_id, "groupPolicyConfiguration")[0]["id"])["definitionValues"]
    assert [v["definition"]["id"] for v in other] == [v["definition"]["id"] for v in stored]
    assert {v["id"] for v in other}.isdisjoint({v["id"] for v in stored})
    # scripted changes: switch a setting off, change a presentation value
    target = stored[0]["definition"]["displayName"]
    emu.set_setting(TID, "groupPolicyConfiguration", oid, target, False)
    now = graph.get(f"{gpc}/{oid}/definitionValues").json()["value"]
    assert next(v for v in now if v["id"] == stored[0]["id"])["enabled"] is False
    if with_values:
        value = with_values[0]
        new = ["a", "b"] if "values" in value["presentationValues"][0] else "changed"
        emu.set_setting(TID, "groupPolicyConfiguration", oid, value["definition"]["id"], new)
        served = graph.get(f"{gpc}/{oid}/definitionValues/{value['id']}/presentationValues").json()["value"]
        first = value["presentationValues"][0]["id"]
        got = next(p for p in served if p["id"] == first)
        assert _canon(got.get("values", got.get("value"))) == _canon(new)
    with pytest.raises(KeyError):
        emu.set_setting(TID, "groupPolicyConfiguration", oid, "No such ADMX setting", True)


def test_endpoint_security_intents_serve_their_settings(emu: Emulator, graph: httpx.Client) -> None:
    intents = "/beta/deviceManagement/intents"
    oid = emu.objects(TID, "endpointSecurityIntent")[0]["id"]
    stored = emu.entity(TID, "endpointSecurityIntent", oid)["settings"]
    assert len(stored) >= 5 and all(s["definitionId"] and "valueJson" in s for s in stored)
    served = graph.get(f"{intents}/{oid}/settings").json()["value"]
    assert _canon(served) == _canon(stored)
    inline = next(i for i in _walk(graph, f"{intents}?$expand=settings") if i["id"] == oid)["settings"]
    assert _canon(inline) == _canon(stored)
    target = stored[0]["definitionId"]
    emu.set_setting(TID, "endpointSecurityIntent", oid, target, 123)
    now = graph.get(f"{intents}/{oid}/settings").json()["value"]
    changed = next(s for s in now if s["definitionId"] == target)
    assert changed["valueJson"] == "123"


# --- frozen generated content (data.py `_Frozen`) ----------------------------------------------------


def test_listing_reads_of_frozen_content_still_reencrypt_reorder_and_move(emu: Emulator,
                                                                          graph: httpx.Client) -> None:
    """The first `$expand=settings` page freezes its objects; later reads come from the frozen copy
    and must still be new reads: fresh ciphertext, settings in another order, timestamps moved."""
    emu.set_size(TID, "settingsCatalogPolicy", 120)
    secret_in = {p["id"] for p in emu.objects(TID, "settingsCatalogPolicy")
                 if any(s["settingInstance"].get("simpleSettingValue", {}).get("@odata.type", "")
                        .endswith("SecretSettingValue") for s in emu.settings(TID, p["id"]))}
    assert secret_in
    pages = [_walk(graph, f"{POLICIES}?$expand=settings") for _ in range(3)]
    pid = min(secret_in)
    reads = [next(p for p in page if p["id"] == pid) for page in pages]

    def secrets(policy: dict[str, Any]) -> list[str]:
        values = [s["settingInstance"].get("simpleSettingValue") or {} for s in policy["settings"]]
        return sorted(v["value"] for v in values if v.get("valueState") == "encryptedValueToken")

    served = [secrets(r) for r in reads]
    assert served[0] and not set(served[0]) & set(served[1]) and not set(served[1]) & set(served[2])
    assert SECRET_PREFIX not in json.dumps(reads)
    orders = [[s["id"] for s in r["settings"]] for r in reads]
    assert orders[1] != orders[2] or orders[0] != orders[1]  # 20+ settings: one equal order is chance
    assert len({r["lastModifiedDateTime"] for r in reads}) > 1
    assert _canon(reads[0]) == _canon(reads[1]) == _canon(reads[2])


def test_frozen_content_is_a_private_copy_and_follows_every_change(emu: Emulator) -> None:
    from tenantatlas_pipelines.emulator.assignments import generate_assignments

    coll = emu.state.collection(TID, "deviceConfiguration")
    first = coll.payload_at(0)
    assert first is not None
    first["displayName"] = "changed by a caller"
    first["omaSettings"] = []
    again = coll.payload_at(0)
    assert again is not None and again["displayName"] != "changed by a caller" and again != first
    nav = coll.nav_at(0, "assignments")
    nav.append({"id": "not-really-there"})
    assert {"id": "not-really-there"} not in coll.nav_at(0, "assignments")

    # A change through the overlay wins over what was frozen.
    emu.state.add_object(TID, "deviceConfiguration", {**again, "displayName": "replaced"})
    assert coll.payload_at(0)["displayName"] == "replaced"  # type: ignore[index]
    coll.set_nav(again["id"], "assignments", [])
    assert coll.nav_at(0, "assignments") == []

    # Content generated with the tenant's references is generated again when they change.
    kept = {None, EMPTY_GUID, emu.objects(TID, "assignmentFilter")[0]["id"]}  # what 1 filter leaves
    slot = next(i for i in range(1, coll.size)
                if any(a["target"].get("deviceAndAppManagementAssignmentFilterId") not in kept
                       for a in coll.nav_at(i, "assignments")))
    emu.state.set_size(TID, "assignmentFilter", 1)
    oid = coll.payload_at(slot)["id"]  # type: ignore[index]
    fresh = generate_assignments(coll.seed, "deviceConfiguration", slot, oid, emu.state.refs(TID),
                                 coll.assigned_ratio)
    assert coll.nav_at(slot, "assignments") == fresh
    assert {a["target"].get("deviceAndAppManagementAssignmentFilterId") for a in fresh} <= kept


def test_the_request_log_separates_service_time_from_latency(tmp_path: Path) -> None:
    with Emulator(state_dir=tmp_path, tenants=[ALPHA], latency_ms=400) as emu, _graph(emu) as http:
        emu.clear_log()
        started = time.monotonic()
        assert http.get(f"{POLICIES}?$expand=settings").status_code == 200
        elapsed = time.monotonic() - started
        record = next(r for r in emu.request_log if r.endpoint == "graph")
    assert 0 < record.service_s < elapsed and elapsed >= 0.4
    assert record.service_s < 0.4 or elapsed >= 0.4 + record.service_s  # the latency comes on top


def test_compiled_settings_render_what_encrypt_settings_serves(emu: Emulator) -> None:
    """rendering.py mirrors present.encrypt_settings: the same content, every array it reorders still
    reordered, every secret encrypted anew, for every generated policy and for odd shapes."""
    import random

    from tenantatlas_pipelines.emulator.present import encrypt_settings
    from tenantatlas_pipelines.emulator.rendering import compile_settings, render

    emu.set_size(TID, "settingsCatalogPolicy", 80)
    odd: list[Any] = [5, {"id": "x"}, {"id": "y", "settingInstance": None, "@odata.etag": "W/1"},
                      {"id": "z", "settingInstance": {"choiceSettingValue": {"children": "no list"}}},
                      {"id": "g", "settingInstance": {"groupSettingCollectionValue": [7, {"children": [1]}]}},
                      {"id": "s", "settingInstance": {"simpleSettingCollectionValue": [1, 2, 3, 4, 5, 6]}}]
    lists = [emu.settings(TID, p["id"]) for p in emu.objects(TID, "settingsCatalogPolicy")] + [odd]
    assert any("SecretSettingValue" in json.dumps(s) for s in lists)
    vault = emu.state.vault
    orders, nested = set(), set()
    for settings in lists:
        template = compile_settings(settings)
        rendered = [json.loads(render(template, vault, random.Random(n))) for n in range(3)]
        served = json.loads(json.dumps(settings))
        encrypt_settings(served, vault, random.Random(0))
        for setting in served:
            if isinstance(setting, dict):
                setting.pop("@odata.etag", None)
        assert all(_canon(r) == _canon(served) for r in rendered)
        assert SECRET_PREFIX not in json.dumps(rendered)
        orders.add(json.dumps(rendered[1]) != json.dumps(rendered[2]))
        # With the settings list itself put back in order, what still differs is nested arrays.
        if settings is not odd:
            nested.add(len({json.dumps(sorted(r, key=lambda x: x["id"])) for r in rendered}) > 1)
        secrets = [json.dumps(r) for r in rendered if "encryptedValueToken" in json.dumps(r)]
        assert len(set(secrets)) == len(secrets)  # fresh ciphertext (and order) on every read
    assert True in orders and True in nested


def test_listed_settings_equal_the_object_read_on_its_own(emu: Emulator, graph: httpx.Client) -> None:
    listed = _walk(graph, f"{POLICIES}?$expand=assignments,settings")
    assert len(listed) == SIZES["settingsCatalogPolicy"]
    for item in listed[:12]:
        alone = graph.get(f"{POLICIES}/{item['id']}?$expand=assignments,settings").json()
        assert _canon(item) == _canon(alone)
        assert len(item["settings"]) == len(alone["settings"]) >= 20


def test_warm_generates_a_tenant_ahead_and_reads_still_vary(emu: Emulator, graph: httpx.Client) -> None:
    expected = sum(emu.state.collection(TID, k).size for k in REGISTRY)
    assert emu.warm(TID) == expected
    with EmulatorClient(emu.base_url, emu.ca_path) as admin:
        assert admin.warm(TID) == expected
        with pytest.raises(RuntimeError):
            admin.warm("00000000-0000-4000-8000-00000000dead")
    reads = [graph.get(f"{DEVCONF}?$expand=assignments").json()["value"] for _ in range(2)]
    encrypted = [sorted(s["value"] for o in r for s in o.get("omaSettings") or [] if s.get("isEncrypted"))
                 for r in reads]
    assert encrypted[0] and not set(encrypted[0]) & set(encrypted[1])
    assert SECRET_PREFIX not in json.dumps(encrypted)
    assert json.dumps(reads[0]) != json.dumps(reads[1]) and _canon(reads[0]) == _canon(reads[1])
    stored = emu.objects(TID, "deviceConfiguration")
    assert [o["id"] for o in _walk(graph, DEVCONF)] == [o["id"] for o in stored]
