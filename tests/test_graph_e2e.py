"""The Graph client end to end: real TLS, real MSAL, real time, against the bundled Graph/Entra emulator.

No HTTP mocking: every behaviour comes from the emulator (tenantatlas_pipelines.emulator), and the
emulator's request log is the witness (one token request, Retry-After gaps, attempt counts). Each test
adds its own fresh tenant so faults and counters never interfere; retry budgets are small so the file
stays fast.
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme

from tenantatlas_pipelines.emulator import CONTOSO, WOODGROVE, Emulator, Fault, RequestRecord, TenantSpec
from tenantatlas_pipelines.errors import ErrorCode
from tenantatlas_pipelines.graph.client import GraphClient, RequestStats
from tenantatlas_pipelines.graph.errors import GraphError
from tenantatlas_pipelines.graph.settings import GraphSettings
from tenantatlas_pipelines.policy_types import REGISTRY

SECRET = "e2e-Secret~9f8Xq.never-logged"
WRONG_SECRET = "e2e-Wrong~Secret.also-never-logged"
_keys = itertools.count(1)


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(
        state_dir=tmp_path_factory.mktemp("graph-e2e"), tenants=[CONTOSO, WOODGROVE], client_secret=SECRET
    ) as emulator:
        yield emulator


def new_tenant(emu: Emulator, sizes: dict[str, int] | None = None, **kwargs: Any) -> str:
    """A fresh tenant in the shared emulator (3 objects per type, settings catalog on two pages)."""
    n = next(_keys)
    default = {key: 3 for key in REGISTRY} | {"settingsCatalogPolicy": 30}
    spec = TenantSpec(str(uuid.uuid4()), f"e2e-{n}", f"E2E tenant {n}", sizes=sizes or default, **kwargs)
    emu.add_tenant(spec)
    return spec.tenant_id


def rsa_certificate() -> tuple[bytes, bytes]:
    """(private key PEM, self-signed certificate PEM): an app credential as Entra accepts it (RSA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tenantatlas-app")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def settings_for(emu: Emulator, **overrides: Any) -> GraphSettings:
    values: dict[str, Any] = {
        "client_id": emu.client_id,
        "client_secret": SECRET,
        "authority_host": emu.base_url,
        "graph_url": emu.base_url,
        "ca_bundle": emu.ca_path,
        "connect_timeout": 5.0,
        "read_timeout": 10.0,
        "max_attempts": 4,
        "retry_budget_s": 5.0,
        "backoff_base_s": 0.05,
        "backoff_cap_s": 0.4,
    }
    values.update(overrides)
    return GraphSettings(**values)


@pytest.fixture
def make_client(emu: Emulator) -> Iterator[Callable[..., GraphClient]]:
    clients: list[GraphClient] = []

    def make(**overrides: Any) -> GraphClient:
        client = GraphClient(settings_for(emu, **overrides))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def read(client: GraphClient, tenant_id: str, key: str, stats: RequestStats | None = None) -> list[Any]:
    return [item for page in client.iter_pages(tenant_id, key, stats=stats) for item in page.items]


def ids(items: list[Any]) -> list[str]:
    return [i["id"] for i in items if isinstance(i, dict)]


def log_for(emu: Emulator, tenant_id: str, endpoint: str | None = None) -> list[RequestRecord]:
    return [
        r
        for r in emu.request_log
        if r.tenant_id == tenant_id and (endpoint is None or r.endpoint == endpoint)
    ]


def expect_error(code: ErrorCode, fn: Callable[[], object]) -> GraphError:
    with pytest.raises(GraphError) as info:
        fn()
    assert info.value.code == code, info.value
    return info.value


# -- reading --------------------------------------------------------------------------------------------
def test_every_registry_type_is_read_completely_across_pages(
    emu: Emulator, make_client: Callable[..., GraphClient]
) -> None:
    tenant = new_tenant(emu, sizes={key: t.page_size + 1 for key, t in REGISTRY.items()})
    client = make_client()
    client.acquire_token(tenant)
    stats = RequestStats()
    for key, policy_type in REGISTRY.items():
        pages = list(client.iter_pages(tenant, key, stats=stats))
        items = [i for p in pages for i in p.items]
        assert len(pages) == 2, key  # page_size + 1 objects: two pages whatever $top would say
        assert len(pages[0].items) == policy_type.page_size, key
        assert ids(items) == [o["id"] for o in emu.objects(tenant, key)], key
        assert pages[0].url.startswith(f"{emu.base_url}/{policy_type.api_version}/{policy_type.path}")
    graph = log_for(emu, tenant, "graph")
    assert stats.pages == stats.requests == len(graph) == 2 * len(REGISTRY)
    assert all(r.status == 200 for r in graph)
    assert stats.throttled == stats.retries == 0


def test_one_token_request_for_many_pages_and_threads(
    emu: Emulator, make_client: Callable[..., GraphClient]
) -> None:
    tenant = new_tenant(emu, sizes={key: 60 for key in REGISTRY})  # settings catalog: 3 pages
    client = make_client(per_tenant_concurrency=3)
    stats = RequestStats()
    errors: list[BaseException] = []

    def work(keys: list[str]) -> None:
        try:
            for key in keys:
                assert len(read(client, tenant, key, stats)) == 60
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    keys = list(REGISTRY)
    threads = [threading.Thread(target=work, args=(keys[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for _ in range(2):  # a second "run" on the same client reuses the cached token too
        read(client, tenant, "settingsCatalogPolicy", stats)
    tokens = [r for r in emu.request_log if r.endpoint == "token" and r.path.startswith(f"/{tenant}/")]
    assert len(tokens) == 1
    assert stats.pages >= len(REGISTRY) + 6


def test_empty_pages_between_real_pages_are_followed(
    emu: Emulator, make_client: Callable[..., GraphClient]
) -> None:
    tenant = new_tenant(emu)
    emu.inject(Fault("empty_pages", tenant_id=tenant, policy_type="settingsCatalogPolicy"))
    pages = list(make_client().iter_pages(tenant, "settingsCatalogPolicy"))
    assert any(not p.items for p in pages)
    assert ids([i for p in pages for i in p.items]) == [
        o["id"] for o in emu.objects(tenant, "settingsCatalogPolicy")
    ]


# -- throttling and retries --------------------------------------------------------------------------
def _gaps_after_throttles(records: list[RequestRecord]) -> list[tuple[float, float]]:
    """(gap to the next request, Retry-After) for every 429/503 that carried a numeric Retry-After."""
    out = []
    for before, after in itertools.pairwise(records):
        if before.status in (429, 503) and before.retry_after is not None:
            out.append((after.time - before.time, float(before.retry_after)))
    return out


def test_throttling_absorbed_and_retry_after_honoured(
    emu: Emulator, make_client: Callable[..., GraphClient]
) -> None:
    tenant = new_tenant(emu, sizes={"settingsCatalogPolicy": 60})  # 3 pages; every 2nd request is a 429
    emu.inject(
        Fault("throttle", tenant_id=tenant, policy_type="settingsCatalogPolicy", ratio=0.5, retry_after="0.3")
    )
    stats = RequestStats()
    items = read(make_client(), tenant, "settingsCatalogPolicy", stats)
    assert len(items) == 60
    graph = log_for(emu, tenant, "graph")
    throttled = [r for r in graph if r.status == 429]
    assert len(throttled) == 2 and stats.throttled == 2 and stats.retries == 2
    gaps = _gaps_after_throttles(graph)
    assert len(gaps) == 2
    for gap, retry_after in gaps:
        assert gap >= retry_after  # the client waited at least what the service asked
    assert stats.wait_s == pytest.approx(0.6)


def test_fractional_and_http_date_retry_after(emu: Emulator, make_client: Callable[..., GraphClient]) -> None:
    tenant = new_tenant(emu)
    emu.inject(Fault("throttle", tenant_id=tenant, policy_type="mobileApp", count=1, retry_after="0.128"))
    emu.inject(
        Fault(
            "status", status=503, tenant_id=tenant, policy_type="roleScopeTag", count=1, retry_after="date+1"
        )
    )
    client = make_client()
    stats = RequestStats()
    assert len(read(client, tenant, "mobileApp", stats)) == 3
    assert len(read(client, tenant, "roleScopeTag", stats)) == 3
    assert stats.retries == 2 and stats.throttled == 2  # 429 and 503-with-Retry-After
    gaps = _gaps_after_throttles(log_for(emu, tenant, "graph")[:2])
    assert gaps and gaps[0][0] >= 0.128


def test_429_without_retry_after_is_retried_with_backoff(
    emu: Emulator, make_client: Callable[..., GraphClient]
) -> None:
    tenant = new_tenant(emu)
    emu.inject(Fault("throttle", tenant_id=tenant, policy_type="deviceConfiguration", count=2))
    stats = RequestStats()
    assert len(read(make_client(), tenant, "deviceConfiguration", stats)) == 3
    statuses = [r.status for r in log_for(emu, tenant, "graph")]
    assert statuses == [429, 429, 200]
    assert all(r.retry_after is None for r in log_for(emu, tenant, "graph"))
    assert (stats.throttled, stats.retries, stats.requests) == (2, 2, 3)
    assert 0 <= stats.wait_s <= 0.05 + 0.1  # full jitter under base 0.05, then 0.1


def test_rate_limited_tenant_is_read_completely(
    emu: Emulator, make_client: Callable[..., GraphClient]
) -> None:
    # Intune-like sliding window; every other 429 omits Retry-After, as Intune does.
    tenant = new_tenant(emu, sizes={key: 60 for key in REGISTRY}, rate_limit=(4, 0.4))
    client = make_client(max_attempts=10)
    stats = RequestStats()
    for key in ("settingsCatalogPolicy", "deviceConfiguration", "mobileApp", "roleScopeTag"):
        assert len(read(client, tenant, key, stats)) == 60
    graph = log_for(emu, tenant, "graph")
    assert stats.throttled == sum(1 for r in graph if r.status == 429) > 0
    for gap, retry_after in _gaps_after_throttles(graph):
        assert gap >= retry_after


def test_retries_exhausted_is_graph_throttled(emu: Emulator, make_client: Callable[..., GraphClient]) -> None:
    tenant = new_tenant(emu)
    emu.inject(
        Fault("throttle", tenant_id=tenant, policy_type="groupPolicyConfiguration", retry_after="0.05")
    )
    stats = RequestStats()
    error = expect_error(
        ErrorCode.GRAPH_THROTTLED,
        lambda: read(make_client(max_attempts=3), tenant, "groupPolicyConfiguration", stats),
    )
    assert error.status == 429 and error.retryable
    assert [r.status for r in log_for(emu, tenant, "graph")] == [429, 429, 429]
    assert (stats.requests, stats.throttled, stats.retries) == (3, 3, 2)


def test_retry_after_beyond_budget_fails_without_waiting(
    emu: Emulator, make_client: Callable[..., GraphClient]
) -> None:
    tenant = new_tenant(emu)
    emu.inject(Fault("throttle", tenant_id=tenant, policy_type="deviceConfiguration", retry_after="30"))
    error = expect_error(
        ErrorCode.GRAPH_THROTTLED,
        lambda: read(make_client(retry_budget_s=2.0), tenant, "deviceConfiguration"),
    )
    assert "Retry-After 30s exceeds" in error.message
    assert len(log_for(emu, tenant, "graph")) == 1


def test_server_errors(emu: Emulator, make_client: Callable[..., GraphClient]) -> None:
    tenant = new_tenant(emu)
    # a 504 in the middle of paging is absorbed
    emu.inject(
        Fault("status", status=504, tenant_id=tenant, policy_type="settingsCatalogPolicy", ratio=0.5, count=1)
    )
    client = make_client()
    assert len(read(client, tenant, "settingsCatalogPolicy")) == 30
    # a persistent 500 fails soon with graph_server_error
    emu.inject(Fault("status", status=500, tenant_id=tenant, policy_type="deviceCompliancePolicy"))
    error = expect_error(ErrorCode.GRAPH_SERVER_ERROR, lambda: read(client, tenant, "deviceCompliancePolicy"))
    assert error.status == 500 and error.retryable
    # a dropped connection is a transport error: retried, then graph_network
    emu.inject(Fault("status", reset=True, tenant_id=tenant, policy_type="assignmentFilter"))
    error = expect_error(ErrorCode.GRAPH_NETWORK, lambda: read(client, tenant, "assignmentFilter"))
    assert error.retryable


# -- non-retryable answers ----------------------------------------------------------------------------
def test_forbidden_fails_fast(emu: Emulator, make_client: Callable[..., GraphClient]) -> None:
    tenant = new_tenant(emu)
    emu.inject(Fault("forbidden", tenant_id=tenant, policy_type="deviceManagementScript"))
    client = make_client()
    error = expect_error(ErrorCode.GRAPH_FORBIDDEN, lambda: read(client, tenant, "deviceManagementScript"))
    assert error.status == 403 and not error.retryable
    assert len(log_for(emu, tenant, "graph")) == 1
    assert len(read(client, tenant, "deviceConfiguration")) == 3  # other types are unaffected


def test_unlicensed_tenant(emu: Emulator, make_client: Callable[..., GraphClient]) -> None:
    tenant = new_tenant(emu, licensed=False)
    client = make_client()
    error = expect_error(
        ErrorCode.GRAPH_TENANT_NOT_LICENSED, lambda: read(client, tenant, "deviceConfiguration")
    )
    assert error.status == 400 and not error.retryable
    assert len(log_for(emu, tenant, "graph")) == 1
    assert len(read(client, tenant, "conditionalAccessPolicy")) == 3  # Entra, not Intune


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("truncated_page", ErrorCode.GRAPH_INVALID_RESPONSE),
        ("malformed_page", ErrorCode.GRAPH_INVALID_RESPONSE),
        ("nextlink_loop", ErrorCode.GRAPH_PAGING_LOOP),
    ],
)
def test_broken_pages(
    emu: Emulator, make_client: Callable[..., GraphClient], kind: str, code: ErrorCode
) -> None:
    tenant = new_tenant(emu, sizes={"autopilotDeploymentProfile": 250})
    emu.inject(Fault(kind, tenant_id=tenant, policy_type="autopilotDeploymentProfile"))
    error = expect_error(code, lambda: read(make_client(), tenant, "autopilotDeploymentProfile"))
    assert "skiptoken" not in error.message
    assert len(log_for(emu, tenant, "graph")) <= 3  # detected at once, no spinning


def test_non_object_items_are_passed_through(emu: Emulator, make_client: Callable[..., GraphClient]) -> None:
    tenant = new_tenant(emu)
    emu.inject(Fault("non_object_item", tenant_id=tenant, policy_type="roleScopeTag"))
    items = read(make_client(), tenant, "roleScopeTag")
    assert len(ids(items)) == 3 and len(items) == 5  # the normaliser counts the odd ones


# -- authentication -----------------------------------------------------------------------------------
def test_wrong_secret_is_invalid_client(emu: Emulator, make_client: Callable[..., GraphClient]) -> None:
    tenant = new_tenant(emu)
    error = expect_error(
        ErrorCode.AUTH_INVALID_CLIENT, lambda: make_client(client_secret=WRONG_SECRET).acquire_token(tenant)
    )
    assert WRONG_SECRET not in str(error) and WRONG_SECRET not in repr(error)
    assert "AADSTS7000215" in error.message


def test_unconsented_tenant(emu: Emulator, make_client: Callable[..., GraphClient]) -> None:
    error = expect_error(
        ErrorCode.AUTH_APP_NOT_CONSENTED, lambda: make_client().acquire_token(WOODGROVE.tenant_id)
    )
    assert "consent" in error.message


def test_unknown_tenant(emu: Emulator, make_client: Callable[..., GraphClient]) -> None:
    unknown = str(uuid.uuid4())
    client = make_client()
    expect_error(ErrorCode.AUTH_TENANT_NOT_FOUND, lambda: client.acquire_token(unknown))
    # iter_pages surfaces the same code (the token is fetched before the first page)
    expect_error(ErrorCode.AUTH_TENANT_NOT_FOUND, lambda: read(client, unknown, "deviceConfiguration"))
    assert [r.endpoint for r in emu.request_log if unknown in r.path] == ["discovery", "discovery"]


def test_token_endpoint_down_then_back(emu: Emulator, make_client: Callable[..., GraphClient]) -> None:
    tenant = new_tenant(emu)
    client = make_client()
    emu.inject(Fault("token_down", tenant_id=tenant, count=1))
    error = expect_error(ErrorCode.AUTH_FAILED, lambda: client.acquire_token(tenant))
    assert error.status == 503 and error.retryable
    # MSAL would replay its cached 5xx for a while; the client dropped that app, so a retry now works
    client.acquire_token(tenant)
    emu.inject(Fault("token_down", tenant_id=tenant, reset=True, count=1))
    other = new_tenant(emu)
    emu.inject(Fault("token_down", tenant_id=other, reset=True, count=1))
    expect_error(ErrorCode.GRAPH_NETWORK, lambda: client.acquire_token(other))
    assert len(read(client, other, "roleScopeTag")) == 3


def test_rejected_token_is_refreshed_once(emu: Emulator, make_client: Callable[..., GraphClient]) -> None:
    tenant = new_tenant(emu)
    client = make_client()
    emu.inject(Fault("status", status=401, tenant_id=tenant, policy_type="deviceConfiguration", count=1))
    stats = RequestStats()
    assert len(read(client, tenant, "deviceConfiguration", stats)) == 3
    assert [r.status for r in log_for(emu, tenant, "graph")] == [401, 200]
    assert len(log_for(emu, tenant, "token")) == 2  # the cached token was dropped and replaced
    emu.inject(Fault("status", status=401, tenant_id=tenant, policy_type="roleScopeTag"))
    error = expect_error(ErrorCode.GRAPH_UNAUTHORIZED, lambda: read(client, tenant, "roleScopeTag"))
    assert error.status == 401
    assert [r.status for r in log_for(emu, tenant, "graph")][2:] == [401, 401]


def test_certificate_credential(
    emu: Emulator, tmp_path: Path, make_client: Callable[..., GraphClient]
) -> None:
    key_pem, cert_pem = rsa_certificate()
    pem = tmp_path / "app.pem"
    pem.write_bytes(key_pem + cert_pem)
    emu.register_certificate(cert_pem)
    tenant = new_tenant(emu)
    client = make_client(client_secret=None, certificate_path=pem)
    client.acquire_token(tenant)
    assert len(read(client, tenant, "deviceConfiguration")) == 3


def test_unusable_certificate_fails_when_the_client_is_built(emu: Emulator, tmp_path: Path) -> None:
    ec_pem = tmp_path / "ec.pem"
    trustme.CA().issue_cert("app").private_key_and_cert_chain_pem.write_to_path(str(ec_pem))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN NOTHING-----")
    for path in (ec_pem, garbage):
        settings = settings_for(emu, client_secret=None, certificate_path=path)
        expect_error(ErrorCode.CONFIG_INVALID, lambda s=settings: GraphClient(s))


# -- TLS trust and secret hygiene ------------------------------------------------------------------------
def test_ca_bundle_survives_requests_ca_bundle_and_ssl_cert_file(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_client: Callable[..., GraphClient]
) -> None:
    unrelated = tmp_path / "unrelated-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(unrelated))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(unrelated))
    monkeypatch.setenv("SSL_CERT_FILE", str(unrelated))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(unrelated))
    tenant = new_tenant(emu)
    client = make_client()
    client.acquire_token(tenant)  # MSAL's discovery + token over our TLS context
    assert len(read(client, tenant, "deviceConfiguration")) == 3


def test_tls_is_verified(emu: Emulator, make_client: Callable[..., GraphClient]) -> None:
    tenant = new_tenant(emu)
    error = expect_error(ErrorCode.GRAPH_NETWORK, lambda: make_client(ca_bundle=None).acquire_token(tenant))
    assert error.retryable
    assert not log_for(emu, tenant)  # nothing reached the emulator's handlers


def test_secret_never_logged_or_in_errors(
    emu: Emulator, caplog: pytest.LogCaptureFixture, make_client: Callable[..., GraphClient]
) -> None:
    caplog.set_level(logging.DEBUG)  # root: msal, httpx, httpcore and ours
    for name in ("msal", "httpx", "httpcore", "tenantatlas_pipelines"):
        caplog.set_level(logging.DEBUG, logger=name)  # restored after the test
    tenant = new_tenant(emu)
    emu.inject(
        Fault("throttle", tenant_id=tenant, policy_type="deviceConfiguration", count=1, retry_after="0.05")
    )
    good = make_client()
    errors: list[GraphError] = []
    read(good, tenant, "deviceConfiguration")
    for action in (
        lambda: make_client(client_secret=WRONG_SECRET).acquire_token(tenant),
        lambda: make_client(client_secret=SECRET + "x").acquire_token(tenant),
        lambda: good.acquire_token(str(uuid.uuid4())),
    ):
        with pytest.raises(GraphError) as info:
            action()
        errors.append(info.value)
    assert any(r.name.startswith("msal") for r in caplog.records)  # MSAL's DEBUG output was captured
    texts = [
        caplog.text,
        *(m.getMessage() for m in caplog.records),
        *(str(e) for e in errors),
        *(repr(e) for e in errors),
        repr(good.settings),
        str(replace(good.settings)),
    ]
    for text in texts:
        assert SECRET not in text and WRONG_SECRET not in text
