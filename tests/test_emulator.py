"""The emulator reproduces reference/graph-facts.md over real TLS, with real MSAL and httpx.

Every test talks to a started emulator through the network stack the production client uses; none of
them reaches into handler functions, so a broken transport fails here too.
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import msal
import pytest
import requests
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tenantatlas_pipelines.emulator import (
    CONTOSO,
    DEMO_TENANTS,
    FABRIKAM,
    NORTHWIND,
    STATE_FILE,
    TAILSPIN,
    WOODGROVE,
    Emulator,
    EmulatorClient,
    Fault,
    TenantSpec,
    generate,
    object_id,
    refs_of,
    serve,
)
from tenantatlas_pipelines.emulator.data import DEFAULT_SIZES
from tenantatlas_pipelines.policy_types import REGISTRY

TID = CONTOSO.tenant_id
DEVCONF = "/beta/deviceManagement/deviceConfigurations"
AAD_FIELDS = {"error", "error_description", "error_codes", "trace_id", "correlation_id", "timestamp"}


# --- helpers -----------------------------------------------------------------------------------------


def _http(emu: Emulator, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(verify=ssl.create_default_context(cafile=str(emu.ca_path)), headers=headers,
                        timeout=10)


def _token_form(emu: Emulator, **over: str) -> dict[str, str]:
    form = {"client_id": emu.client_id, "client_secret": emu.client_secret,
            "scope": f"{emu.graph_url}/.default", "grant_type": "client_credentials"}
    form.update(over)
    return form


def _path(ptype: str, version: str | None = None) -> str:
    t = REGISTRY[ptype]
    return f"/{version or t.api_version}/{t.path}"


def _walk(http: httpx.Client, url: str, max_pages: int = 200) -> tuple[list[Any], list[dict[str, Any]]]:
    """Follow nextLinks verbatim; returns (all items, all page bodies)."""
    items: list[Any] = []
    pages: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url and len(pages) < max_pages:
        resp = http.get(next_url)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        pages.append(body)
        items.extend(body["value"])
        next_url = body.get("@odata.nextLink")
    return items, pages


@pytest.fixture
def graph(emulator: Emulator, emulator_token: Callable[[str], str]) -> Iterator[httpx.Client]:
    with _http(emulator, emulator_token(TID)) as http:
        http.base_url = httpx.URL(emulator.graph_url)
        yield http


def _msal_app(emu: Emulator, tenant: str, credential: Any = None) -> msal.ConfidentialClientApplication:
    # REQUESTS_CA_BUNDLE would override `verify` (graph-facts.md); a session without trust_env survives it.
    session = requests.Session()
    session.trust_env = False
    session.verify = str(emu.ca_path)
    return msal.ConfidentialClientApplication(
        emu.client_id, client_credential=credential or emu.client_secret,
        authority=f"{emu.base_url}/{tenant}", instance_discovery=False, http_client=session)


# --- Entra: discovery and tokens ---------------------------------------------------------------------


def test_discovery_document_for_guid_domain_and_v1_path(emulator: Emulator) -> None:
    with _http(emulator) as http:
        for alias in (TID, "contoso.onmicrosoft.com", TID.upper()):
            doc = http.get(f"{emulator.base_url}/{alias}/v2.0/.well-known/openid-configuration").json()
            assert doc["token_endpoint"] == f"{emulator.base_url}/{TID}/oauth2/v2.0/token"
            assert doc["authorization_endpoint"] == f"{emulator.base_url}/{TID}/oauth2/v2.0/authorize"
            assert doc["issuer"] == f"{emulator.base_url}/{TID}/v2.0"
        v1 = http.get(f"{emulator.base_url}/{TID}/.well-known/openid-configuration")
        assert v1.status_code == 200 and "token_endpoint" in v1.json()


def test_discovery_of_unknown_tenant_is_aadsts90002(emulator: Emulator) -> None:
    unknown = "11111111-2222-4333-8444-555555555555"
    with _http(emulator) as http:
        resp = http.get(f"{emulator.base_url}/{unknown}/v2.0/.well-known/openid-configuration")
    body = resp.json()
    assert resp.status_code == 400
    assert set(body) >= AAD_FIELDS and body["error_codes"] == [90002]
    assert body["error_description"].startswith(f"AADSTS90002: Tenant '{unknown}' not found.")


def test_msal_with_verify_gets_a_token_end_to_end(emulator: Emulator,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # The plain documented call; the env CA variables must be absent for `verify=` to be honoured.
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    app = msal.ConfidentialClientApplication(
        emulator.client_id, client_credential=emulator.client_secret,
        authority=f"{emulator.base_url}/{TID}", instance_discovery=False, verify=str(emulator.ca_path))
    result = app.acquire_token_for_client([f"{emulator.graph_url}/.default"])
    assert result["token_type"] == "Bearer" and result["expires_in"] == 3599, result
    with _http(emulator, result["access_token"]) as http:
        assert http.get(emulator.graph_url + DEVCONF).status_code == 200
    endpoints = [(r.endpoint, r.status) for r in emulator.request_log]
    assert endpoints == [("discovery", 200), ("token", 200), ("graph", 200)]


def test_msal_survives_requests_ca_bundle_with_own_session(emulator: Emulator,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/bundle.pem")
    result = _msal_app(emulator, "contoso.onmicrosoft.com").acquire_token_for_client(
        [f"{emulator.graph_url}/.default"])
    assert "access_token" in result, result


def test_msal_unknown_tenant_fails_at_construction(emulator: Emulator) -> None:
    with pytest.raises(ValueError, match="Unable to get authority configuration") as info:
        _msal_app(emulator, "99999999-2222-4333-8444-555555555555")
    assert "AADSTS90002" in str(info.value.__context__)  # MSAL keeps Entra's answer as the cause
    assert [(r.endpoint, r.status) for r in emulator.request_log] == [("discovery", 400)]


def test_token_errors_have_entra_shape_and_never_echo_the_secret(emulator: Emulator) -> None:
    emulator.add_tenant(WOODGROVE)
    leaked = "my-very-wrong-secret-VALUE"
    cases = [
        (TID, {"client_secret": leaked}, 401, "invalid_client", 7000215),
        (WOODGROVE.tenant_id, {}, 400, "unauthorized_client", 700016),
        (TID, {"client_id": "12345678-0000-4000-8000-000000000000"}, 400, "unauthorized_client", 700016),
        ("00000000-1111-4222-8333-444444444444", {}, 400, "invalid_request", 90002),
        (TID, {"scope": "https://graph.microsoft.com/User.Read"}, 400, "invalid_scope", 1002012),
        (TID, {"scope": "https://graph.microsoft.com/.default"}, 400, "invalid_resource", 500011),
        (TID, {"client_secret": ""}, 401, "invalid_client", 7000218),
    ]
    with _http(emulator) as http:
        for tenant, over, status, error, code in cases:
            resp = http.post(f"{emulator.base_url}/{tenant}/oauth2/v2.0/token",
                             data=_token_form(emulator, **over), headers={"client-request-id": "corr-1"})
            body = resp.json()
            assert (resp.status_code, body["error"], body["error_codes"]) == (status, error, [code]), body
            assert set(body) >= AAD_FIELDS
            assert body["error_description"].startswith(f"AADSTS{code}: ")
            assert body["correlation_id"] == "corr-1"
            assert leaked not in resp.text and emulator.client_secret not in resp.text
    assert leaked not in repr(emulator.request_log)


def test_token_success_body_is_exactly_entras(emulator: Emulator) -> None:
    with _http(emulator) as http:
        resp = http.post(f"{emulator.base_url}/{TID}/oauth2/v2.0/token", data=_token_form(emulator))
    body = resp.json()
    assert resp.status_code == 200
    assert set(body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert (body["token_type"], body["expires_in"], body["ext_expires_in"]) == ("Bearer", 3599, 3599)
    claims = json.loads(base64.urlsafe_b64decode(body["access_token"].split(".")[1] + "=="))
    assert claims["tid"] == TID and claims["aud"] == emulator.graph_url
    assert emulator.client_secret not in resp.text


def test_certificate_assertion_via_msal(emulator: Emulator) -> None:
    ca = trustme.CA()
    rsa = trustme.KeyType.RSA  # Entra app certificates are RSA; MSAL signs with PS256
    good, other = ca.issue_cert("app.example", key_type=rsa), ca.issue_cert("other.example", key_type=rsa)

    def cred(leaf: trustme.LeafCert) -> dict[str, str]:
        key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)
        return {"private_key": key.private_bytes(serialization.Encoding.PEM,  # type: ignore[union-attr]
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()).decode(),
                "public_certificate": leaf.cert_chain_pems[0].bytes().decode()}

    scope = [f"{emulator.graph_url}/.default"]
    # Nothing registered: a well-formed assertion whose aud/iss fit is accepted.
    assert "access_token" in _msal_app(emulator, TID, cred(good)).acquire_token_for_client(scope)
    emulator.register_certificate(good.cert_chain_pems[0].bytes())
    accepted = _msal_app(emulator, FABRIKAM.tenant_id, cred(good)).acquire_token_for_client(scope)
    assert "access_token" in accepted, accepted
    refused = _msal_app(emulator, NORTHWIND.tenant_id, cred(other)).acquire_token_for_client(scope)
    assert refused["error"] == "invalid_client" and 700027 in refused["error_codes"]
    x509.load_pem_x509_certificate(good.cert_chain_pems[0].bytes())  # the fixture itself is sane


def test_token_down_503_and_connection_reset(emulator: Emulator) -> None:
    emulator.inject(Fault("token_down", tenant_id=TID, count=1, retry_after="1"))
    emulator.inject(Fault("token_down", tenant_id=FABRIKAM.tenant_id, reset=True))
    with _http(emulator) as http:
        first = http.post(f"{emulator.base_url}/{TID}/oauth2/v2.0/token", data=_token_form(emulator))
        assert (first.status_code, first.headers["Retry-After"]) == (503, "1")
        assert first.json()["error"] == "temporarily_unavailable"
        second = http.post(f"{emulator.base_url}/{TID}/oauth2/v2.0/token", data=_token_form(emulator))
        assert second.status_code == 200  # count=1
        with pytest.raises(httpx.TransportError):
            http.post(f"{emulator.base_url}/{FABRIKAM.tenant_id}/oauth2/v2.0/token",
                      data=_token_form(emulator))


# --- Graph: authentication ---------------------------------------------------------------------------


def test_graph_rejects_missing_garbage_foreign_and_expired_tokens(emulator: Emulator, tmp_path: Path) -> None:
    url = emulator.graph_url + DEVCONF
    with Emulator(state_dir=tmp_path / "other", tenants=[CONTOSO], token_lifetime=3) as other:
        with _http(other) as http:
            short = http.post(f"{other.base_url}/{TID}/oauth2/v2.0/token", data=_token_form(other)).json()
        assert short["expires_in"] == 3
        with _http(other, short["access_token"]) as http:
            assert http.get(other.graph_url + DEVCONF).status_code == 200
            time.sleep(3.05)
            expired = http.get(other.graph_url + DEVCONF)
        assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
        for token in (None, "garbage", short["access_token"]):
            with _http(emulator, token) as http:
                resp = http.get(url)
            err = resp.json()["error"]
            assert resp.status_code == 401 and err["code"] == "InvalidAuthenticationToken", token
            assert {"date", "request-id", "client-request-id"} <= set(err["innerError"])


# --- Graph: collections and paging -------------------------------------------------------------------


def test_every_type_pages_completely_on_beta_and_v1(tmp_path: Path) -> None:
    sizes = {k: t.page_size + 3 for k, t in REGISTRY.items()}
    spec = TenantSpec("a0000000-0000-4000-8000-000000000001", "paging", "Paging Inc.", sizes=sizes)
    with Emulator(state_dir=tmp_path, tenants=[spec]) as emu, _http(emu) as http:
        token = http.post(f"{emu.base_url}/{spec.tenant_id}/oauth2/v2.0/token", data=_token_form(emu))
        http.headers["Authorization"] = "Bearer " + token.json()["access_token"]
        for key, ptype in REGISTRY.items():
            expected = [o["id"] for o in emu.objects(spec.tenant_id, key)]
            assert len(expected) == ptype.page_size + 3
            for version in ("beta", "v1.0"):
                items, pages = _walk(http, emu.graph_url + _path(key, version))
                assert [i["id"] for i in items] == expected, (key, version)
                assert [len(p["value"]) for p in pages] == [ptype.page_size, 3], key
                assert all(i.get(ptype.name_field) and i["@odata.type"].startswith("#microsoft.graph.")
                           for i in items)
                assert pages[0]["@odata.context"].endswith("$metadata#" + ptype.path)
                assert pages[0]["@odata.nextLink"].startswith(emu.graph_url + f"/{version}/")


def test_top_is_honoured_only_where_graph_honours_it(emulator: Emulator, graph: httpx.Client) -> None:
    emulator.set_size(TID, "deviceConfiguration", 10)
    for query in ("$top=4", "top=4"):
        _, pages = _walk(graph, f"{DEVCONF}?{query}")
        assert [len(p["value"]) for p in pages] == [4, 4, 2]
        assert all(query in p["@odata.nextLink"] for p in pages[:-1])  # options repeated verbatim
    _, pages = _walk(graph, _path("settingsCatalogPolicy") + "?$top=5")
    assert [len(p["value"]) for p in pages] == [25, 5]
    _, pages = _walk(graph, _path("settingsCatalogPolicy") + "?$top=999")
    assert len(pages[0]["value"]) == 25
    assert graph.get(f"{DEVCONF}?$top=abc").status_code == 400


def test_nextlink_styles_skiptoken_double_encoded_and_skip(emulator: Emulator, graph: httpx.Client) -> None:
    for key in ("deviceConfiguration", "groupPolicyConfiguration", "roleScopeTag"):
        emulator.set_size(TID, key, 7)
    _, pages = _walk(graph, f"{DEVCONF}?$top=3&$select=id,displayName")
    link = pages[0]["@odata.nextLink"]
    assert "$skiptoken=" in link and "%3D" in link and "$select=id,displayName" in link
    _, pages = _walk(graph, _path("groupPolicyConfiguration") + "?$top=3")
    assert "%253D" in pages[0]["@odata.nextLink"]  # double-encoded
    items, pages = _walk(graph, _path("roleScopeTag") + "?$top=3")
    assert parse_qs(urlsplit(pages[0]["@odata.nextLink"]).query)["$skip"] == ["3"]
    ids = [i["id"] for i in items]  # scope tags have numeric ids: "0" (Default) then a per-tenant range
    assert ids[0] == "0" and all(i.isdigit() for i in ids) and len(set(ids)) == 7
    select_items, _ = _walk(graph, f"{DEVCONF}?$select=id,displayName")
    assert all(set(i) <= {"id", "displayName", "@odata.type"} for i in select_items)


def test_odata_count_appears_unasked_on_some_types(graph: httpx.Client) -> None:
    with_count = [k for k in REGISTRY if "@odata.count" in graph.get(_path(k)).json()]
    assert 0 < len(with_count) < len(REGISTRY)
    assert graph.get(DEVCONF + "?$count=true").json()["@odata.count"] == len(_walk(graph, DEVCONF)[0])


def test_single_object_and_not_found(emulator: Emulator, graph: httpx.Client) -> None:
    first = emulator.objects(TID, "deviceConfiguration")[0]
    got = graph.get(f"{DEVCONF}/{first['id']}").json()
    assert got["id"] == first["id"] and got["displayName"] == first["displayName"]
    missing = graph.get(f"{DEVCONF}/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ResourceNotFound"
    bad = graph.get("/beta/deviceManagement/noSuchThings")
    assert bad.status_code == 400 and "noSuchThings" in bad.json()["error"]["message"]


def test_payloads_are_realistic_per_type(emulator_session: Emulator) -> None:
    tid = NORTHWIND.tenant_id

    def objs(key: str) -> list[dict[str, Any]]:
        return emulator_session.objects(tid, key)

    assert not any("createdDateTime" in o for k in ("endpointSecurityIntent", "notificationMessageTemplate",
                                                    "roleScopeTag") for o in objs(k))
    assert not any("lastModifiedDateTime" in o for o in objs("roleScopeTag"))
    ca = objs("conditionalAccessPolicy")
    assert all("modifiedDateTime" in o and "lastModifiedDateTime" not in o for o in ca)
    assert any(o["modifiedDateTime"] is None for o in ca)
    assert all(isinstance(o["roleScopeTags"], list) and "roleScopeTagIds" not in o
               for o in objs("assignmentFilter"))
    assert all(isinstance(o["version"], str) for o in objs("appProtectionPolicy"))
    assert all(isinstance(o["version"], int) for o in objs("deviceConfiguration"))
    apps = objs("mobileApp")
    assert any(len((o.get("largeIcon") or {}).get("value", "")) >= 20_000 for o in apps)
    catalogue = [o for o in apps if o["appAvailability"] == "global" and not o["isAssigned"]]
    assert 0 < len(catalogue) < len(apps)
    assert not all(REGISTRY["mobileApp"].keep(o) for o in apps)  # type: ignore[misc]
    assert any(o["isGlobalScript"] for o in objs("deviceHealthScript"))
    dumped = json.dumps(objs("deviceConfiguration") + objs("appConfigurationPolicy"), ensure_ascii=False)
    for marker in ('"value": "SECRET-OMA-', '"preSharedKey": "SECRET-', '"password": "SECRET-',
                   '"clientSecret": "SECRET-'):
        assert marker in dumped, marker
    names = [o["displayName"] for o in objs("deviceConfiguration")]
    assert any(not n.isascii() for n in names) and any(len(n) > 200 for n in names)
    assert all(o["name"] for o in objs("settingsCatalogPolicy"))
    known = REGISTRY["deviceConfiguration"].source_keys
    assert all(set(o) - known - {"@odata.type"} for o in objs("deviceConfiguration"))  # unknown fields


def test_payloads_are_deterministic_across_processes_and_seeds(emulator: Emulator) -> None:
    code = textwrap.dedent(f"""
        import json
        from tenantatlas_pipelines.emulator import generate
        from tenantatlas_pipelines.emulator import refs_of, small_tenants
        spec = next(t for t in small_tenants() if t.tenant_id == {TID!r})
        print(json.dumps([generate(0, {TID!r}, "mobileApp", i, refs_of(0, spec)) for i in range(4)]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == emulator.objects(TID, "mobileApp")[:4]
    assert generate(1, TID, "mobileApp", 0)["id"] != generate(0, TID, "mobileApp", 0)["id"]
    assert object_id(0, TID, "mobileApp", 0) == emulator.objects(TID, "mobileApp")[0]["id"]


def test_mutations_show_in_the_next_listing(emulator: Emulator, graph: httpx.Client) -> None:
    before = [o["id"] for o in emulator.objects(TID, "deviceConfiguration")]
    emulator.remove_object(TID, "deviceConfiguration", before[0])
    new_id = emulator.add_object(TID, "deviceConfiguration")
    custom = emulator.add_object(TID, "deviceConfiguration", {"displayName": "hand made",
                                                              "@odata.type": "#microsoft.graph.x"})
    emulator.add_object(TID, "deviceConfiguration", {"id": before[1], "displayName": "renamed",
                                                     "@odata.type": "#microsoft.graph.x"})
    items, _ = _walk(graph, DEVCONF)
    ids = [i["id"] for i in items]
    assert ids == [*before[1:], new_id, custom]
    assert items[0]["displayName"] == "renamed"
    with pytest.raises(KeyError):
        emulator.remove_object(TID, "deviceConfiguration", before[0])
    emulator.set_size(TID, "deviceConfiguration", 0)
    assert [i["id"] for i in _walk(graph, DEVCONF)[0]] == [new_id, custom]


# --- Graph: errors, licensing, throttling ------------------------------------------------------------


def test_unlicensed_tenant_is_bad_request_for_intune_only(emulator: Emulator) -> None:
    with _http(emulator) as http:
        token = http.post(f"{emulator.base_url}/{TAILSPIN.tenant_id}/oauth2/v2.0/token",
                          data=_token_form(emulator)).json()["access_token"]
        http.headers["Authorization"] = "Bearer " + token
        resp = http.get(emulator.graph_url + DEVCONF)
        err = resp.json()["error"]
        assert resp.status_code == 400 and err["code"] == "BadRequest"
        assert err["message"] == "Request not applicable to target tenant."
        assert http.get(emulator.graph_url + _path("conditionalAccessPolicy")).status_code == 200


def test_forbidden_has_the_real_scope_message(emulator: Emulator, graph: httpx.Client) -> None:
    emulator.inject(Fault("forbidden", tenant_id=TID, policy_type="mobileApp"))
    resp = graph.get(_path("mobileApp"))
    err = resp.json()["error"]
    assert resp.status_code == 403 and err["code"] == "Forbidden"
    assert err["message"].startswith("Application is not authorized to perform this operation. Application "
                                     "must have one of the following scopes: DeviceManagementApps.Read.All")
    assert graph.get(DEVCONF).status_code == 200  # other types unaffected


def test_status_fault_ratio_is_deterministic_with_intune_json_message(emulator: Emulator,
                                                                      graph: httpx.Client) -> None:
    emulator.inject(Fault("status", status=503, ratio=0.5, retry_after="2.128",
                          policy_type="deviceConfiguration"))
    answers = [graph.get(DEVCONF) for _ in range(6)]
    assert [r.status_code for r in answers] == [200, 503, 200, 503, 200, 503]
    failed = answers[1]
    assert failed.headers["Retry-After"] == "2.128"
    inner = json.loads(failed.json()["error"]["message"])  # Intune: JSON inside the message string
    assert inner["_version"] == 3 and "Activity ID" in inner["Message"]
    emulator.clear_faults()
    emulator.inject(Fault("status", status=504, count=1))
    assert [graph.get(DEVCONF).status_code for _ in range(2)] == [504, 200]
    emulator.inject(Fault("status", reset=True, count=1))
    with pytest.raises(httpx.TransportError):
        graph.get(DEVCONF)
    assert graph.get(DEVCONF).status_code == 200


def test_fault_validation_json_round_trip_and_quarter_ratio(emulator: Emulator, graph: httpx.Client) -> None:
    fault = Fault("throttle", policy_type="deviceConfiguration", ratio=0.25, retry_after="date+2")
    assert Fault.from_json(fault.to_json()) == fault
    for bad in ({"kind": "nope"}, {"kind": "status"}, {"kind": "throttle", "ratio": 0},
                {"kind": "throttle", "policy_type": "nope"}, {"kind": "latency"},
                {"kind": "throttle", "retry_after": "date+soon"}):
        with pytest.raises(ValueError):
            Fault(**bad)
    emulator.inject(Fault("throttle", policy_type="deviceConfiguration", ratio=0.25))
    assert [graph.get(DEVCONF).status_code for _ in range(8)] == [200, 200, 200, 429] * 2


def test_throttle_retry_after_seconds_date_and_omitted(emulator: Emulator, graph: httpx.Client) -> None:
    for retry_after in ("0.2", "date+3", None):
        emulator.clear_faults()
        emulator.inject(Fault("throttle", count=1, retry_after=retry_after))
        resp = graph.get(DEVCONF)
        assert resp.status_code == 429 and resp.json()["error"]["code"] == "TooManyRequests"
        if retry_after is None:
            assert "Retry-After" not in resp.headers
        elif retry_after == "0.2":
            assert resp.headers["Retry-After"] == "0.2"
        else:
            when = email.utils.parsedate_to_datetime(resp.headers["Retry-After"]).timestamp()
            assert 1 <= when - time.time() <= 4
    log = [r for r in emulator.request_log if r.status == 429]
    assert [r.retry_after is not None for r in log] == [True, True, False]
    assert all(r.fault == "throttle" for r in log)


def test_per_tenant_rate_limit_with_and_without_retry_after(tmp_path: Path) -> None:
    spec = TenantSpec("a0000000-0000-4000-8000-000000000002", "busy", "Busy",
                      sizes={"deviceConfiguration": 2}, rate_limit=(3, 0.5))
    with Emulator(state_dir=tmp_path, tenants=[spec, CONTOSO]) as emu, _http(emu) as http:
        tokens = {t: http.post(f"{emu.base_url}/{t}/oauth2/v2.0/token", data=_token_form(emu)).json()[
            "access_token"] for t in (spec.tenant_id, TID)}
        busy = {"Authorization": "Bearer " + tokens[spec.tenant_id]}
        statuses = [http.get(emu.graph_url + DEVCONF, headers=busy) for _ in range(5)]
        assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429]
        assert 0 < float(statuses[3].headers["Retry-After"]) <= 0.5
        assert "Retry-After" not in statuses[4].headers  # Intune often omits it
        other = http.get(emu.graph_url + DEVCONF, headers={"Authorization": "Bearer " + tokens[TID]})
        assert other.status_code == 200  # per tenant
        time.sleep(0.55)
        assert http.get(emu.graph_url + DEVCONF, headers=busy).status_code == 200


# --- Graph: broken pages -----------------------------------------------------------------------------


def test_truncated_and_malformed_pages(emulator: Emulator, graph: httpx.Client) -> None:
    emulator.inject(Fault("truncated_page", count=1))
    resp = graph.get(DEVCONF)
    assert resp.status_code == 200 and int(resp.headers["Content-Length"]) == len(resp.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(resp.content)
    emulator.inject(Fault("malformed_page", count=1))
    body = graph.get(DEVCONF).json()
    assert not isinstance(body["value"], list)
    assert isinstance(graph.get(DEVCONF).json()["value"], list)


def test_bad_items_non_object_and_without_id(emulator: Emulator, graph: httpx.Client) -> None:
    emulator.inject(Fault("non_object_item", count=1))
    emulator.inject(Fault("item_without_id", count=1))
    value = graph.get(DEVCONF).json()["value"]
    assert any(isinstance(v, str) for v in value) and any(isinstance(v, int) for v in value)
    objects = [v for v in value if isinstance(v, dict)]
    assert "id" not in objects[0] and all("id" in v for v in objects[1:])


def test_nextlink_loop_drop_one_and_empty_pages(emulator: Emulator, graph: httpx.Client) -> None:
    url = _path("autopilotDeploymentProfile")
    emulator.inject(Fault("nextlink_loop", policy_type="autopilotDeploymentProfile"))
    _, pages = _walk(graph, url, max_pages=5)
    assert len(pages) == 5 and len({p["@odata.nextLink"] for p in pages}) == 1
    assert len({json.dumps(p["value"]) for p in pages}) == 1

    expected = [o["id"] for o in emulator.objects(TID, "settingsCatalogPolicy")]
    emulator.inject(Fault("drop_one", policy_type="settingsCatalogPolicy"))
    items, _ = _walk(graph, _path("settingsCatalogPolicy"))
    assert [i["id"] for i in items] == expected[1:]

    emulator.clear_faults()
    emulator.inject(Fault("empty_pages", policy_type="settingsCatalogPolicy"))
    items, pages = _walk(graph, _path("settingsCatalogPolicy"))
    assert [len(p["value"]) for p in pages] == [25, 0, 5]
    assert "@odata.nextLink" in pages[1]
    assert [i["id"] for i in items] == expected


def test_latency_fault_and_constructor_default(emulator: Emulator, graph: httpx.Client,
                                               tmp_path: Path) -> None:
    emulator.inject(Fault("latency", latency_ms=150, policy_type="deviceConfiguration", count=1))
    started = time.monotonic()
    graph.get(DEVCONF)
    assert time.monotonic() - started >= 0.15
    slow_emu = Emulator(state_dir=tmp_path / "slow", tenants=[CONTOSO], latency_ms=120)
    with slow_emu as slow, _http(slow) as http:
        started = time.monotonic()
        http.get(f"{slow.base_url}/{TID}/v2.0/.well-known/openid-configuration")
        assert time.monotonic() - started >= 0.12


# --- transport, log, admin, serve, speed -------------------------------------------------------------


def test_keep_alive_serves_many_requests_on_one_connection(emulator: Emulator,
                                                           emulator_token: Callable[[str], str]) -> None:
    conn = http.client.HTTPSConnection("127.0.0.1", int(emulator.base_url.rsplit(":", 1)[1]),
                                       context=ssl.create_default_context(cafile=str(emulator.ca_path)))
    headers = {"Authorization": "Bearer " + emulator_token(TID)}
    for _ in range(3):
        conn.request("GET", DEVCONF, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200 and int(resp.headers["Content-Length"]) == len(body)
        assert resp.headers.get("Connection", "").lower() != "close"
    conn.close()


def test_request_log_records_what_tests_assert_on(emulator: Emulator, graph: httpx.Client) -> None:
    emulator.clear_log()
    graph.get(_path("mobileApp") + "?$top=2")
    (rec,) = emulator.request_log
    assert (rec.method, rec.path, rec.query, rec.endpoint) == ("GET", _path("mobileApp"), "$top=2", "graph")
    assert (rec.tenant_id, rec.policy_type, rec.status, rec.client_id) == (TID, "mobileApp", 200,
                                                                           emulator.client_id)
    assert rec.items == len(emulator.objects(TID, "mobileApp")) and rec.retry_after is None
    assert rec.wall_time > 1e9 and rec.time <= time.monotonic()


def test_admin_api_and_state_file_drive_the_emulator(emulator: Emulator, graph: httpx.Client) -> None:
    state = json.loads(emulator.state_file.read_text())
    assert state["base_url"] == emulator.base_url and Path(state["ca_path"]) == emulator.ca_path
    assert {t["key"]: t["tenant_id"] for t in state["tenants"]}["contoso"] == TID
    assert "client_secret" not in state and emulator.client_secret not in emulator.state_file.read_text()
    with EmulatorClient.from_state_file(emulator.state_dir) as admin:
        admin.inject(Fault("throttle", policy_type="deviceConfiguration", count=1, retry_after="0.1"))
        assert graph.get(DEVCONF).status_code == 429
        assert admin.faults[0]["applied"] == 1
        admin.clear_faults()
        new_id = admin.add_object(TID, "roleScopeTag", {"displayName": "Added by admin"})
        assert new_id in [o["id"] for o in emulator.objects(TID, "roleScopeTag")]
        admin.remove_object(TID, "roleScopeTag", new_id)
        with pytest.raises(KeyError):
            admin.remove_object(TID, "roleScopeTag", new_id)
        admin.set_size(TID, "termsAndConditions", 9)
        assert len(admin.objects(TID, "termsAndConditions")) == 9
        spec = TenantSpec("a0000000-0000-4000-8000-000000000003", "added", "Added", sizes={"mobileApp": 3})
        admin.add_tenant(spec)
        assert spec.tenant_id in admin.tenant_ids
        graph.get(DEVCONF)
        log = admin.request_log
        assert log[-1].path == DEVCONF and log[-1].status == 200
        assert not any(r.endpoint == "admin" for r in log)
        admin.clear_log()
        assert admin.request_log == []


def test_serve_in_another_process_agrees_with_local_generation(tmp_path: Path) -> None:
    code = ("from tenantatlas_pipelines.emulator import serve; import sys; "
            "serve(state_dir=sys.argv[1], seed=7)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while not (tmp_path / STATE_FILE).exists():
            assert time.monotonic() < deadline and proc.poll() is None, "serve did not start"
            time.sleep(0.05)
        with EmulatorClient.from_state_file(tmp_path) as admin:
            state = admin.state()
            assert [t["key"] for t in state["tenants"]] == [t.key for t in DEMO_TENANTS]
            remote = admin.objects(FABRIKAM.tenant_id, "deviceCompliancePolicy")
        local = [generate(7, FABRIKAM.tenant_id, "deviceCompliancePolicy", i, refs_of(7, FABRIKAM))
                 for i in range(FABRIKAM.size_of("deviceCompliancePolicy"))]
        assert remote == local
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0 and not (tmp_path / STATE_FILE).exists()


def test_serve_in_thread_stops_on_event(tmp_path: Path) -> None:
    stop, ready = threading.Event(), []
    thread = threading.Thread(target=serve, kwargs={"state_dir": tmp_path, "tenants": [CONTOSO],
                                                    "on_ready": ready.append, "stop_event": stop})
    thread.start()
    deadline = time.monotonic() + 10
    while not ready and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ready and (tmp_path / STATE_FILE).exists()
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive() and not (tmp_path / STATE_FILE).exists()


def test_large_collection_pages_completely_and_mutates_lazily(tmp_path: Path) -> None:
    # Speed is measured by bench/sync.py, never asserted here.
    spec = TenantSpec("a0000000-0000-4000-8000-000000000004", "huge", "Huge",
                      sizes={**dict.fromkeys(DEFAULT_SIZES, 0), "mobileApp": 20_000,
                             "deviceConfiguration": 50_000})
    with Emulator(state_dir=tmp_path, tenants=[spec]) as emu, _http(emu) as http:
        token = http.post(f"{emu.base_url}/{spec.tenant_id}/oauth2/v2.0/token", data=_token_form(emu))
        http.headers["Authorization"] = "Bearer " + token.json()["access_token"]
        items, pages = _walk(http, emu.graph_url + _path("mobileApp"))
        assert len(items) == 20_000 and len(pages) == 20
        assert len({i["id"] for i in items}) == 20_000
        victim = object_id(0, spec.tenant_id, "deviceConfiguration", 49_999)
        emu.remove_object(spec.tenant_id, "deviceConfiguration", victim)
        last = http.get(emu.graph_url + DEVCONF + "?$top=5&$skip=49995").json()
        assert [i["id"] for i in last["value"]][-1] != victim and len(last["value"]) == 4


def test_hostile_payloads_are_served_not_500(emulator: Emulator, graph: httpx.Client) -> None:
    """Objects a hostile-input test adds (lone surrogates, ids that are objects) still page normally."""
    emulator.add_object(TID, "deviceConfiguration", {"id": "lone", "displayName": "bad \ud800 name"})
    items, _ = _walk(graph, DEVCONF)
    names = {i.get("displayName") for i in items}
    assert "bad \ud800 name" in names  # escaped as \\ud800 on the wire, decoded back by json


def test_drop_one_tolerates_items_whose_id_is_not_a_string(emulator: Emulator, graph: httpx.Client) -> None:
    emulator.add_object(TID, "deviceConfiguration", {"id": {"not": "a string"}, "displayName": "odd"})
    emulator.inject(Fault("drop_one", policy_type="deviceConfiguration"))
    items, _ = _walk(graph, DEVCONF)
    assert {"not": "a string"} in [i.get("id") for i in items]
