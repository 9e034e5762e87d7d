"""Settings: clouds, overrides, scope, instance discovery, validation, secret hygiene, TLS trust (pure)."""

from __future__ import annotations

import logging
import pickle
import ssl
from pathlib import Path

import pytest
import trustme

from tenantatlas_pipelines.errors import ErrorCode
from tenantatlas_pipelines.graph.errors import GraphError
from tenantatlas_pipelines.graph.settings import CLOUDS, GraphSettings
from tenantatlas_pipelines.graph.tls import build_ssl_context

SECRET = "Zq8~very.secret-value_123"


def env(**values: str) -> dict[str, str]:
    base = {
        "TENANTATLAS_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
        "TENANTATLAS_CLIENT_SECRET": SECRET,
    }
    base.update({f"TENANTATLAS_{k.upper()}": v for k, v in values.items()})
    return base


@pytest.mark.parametrize(
    ("cloud", "authority", "graph", "scope"),
    [
        (
            "global",
            "https://login.microsoftonline.com",
            "https://graph.microsoft.com",
            "https://graph.microsoft.com/.default",
        ),
        (
            "usgov",
            "https://login.microsoftonline.us",
            "https://graph.microsoft.us",
            "https://graph.microsoft.us/.default",
        ),
        (
            "usgov-dod",
            "https://login.microsoftonline.us",
            "https://dod-graph.microsoft.us",
            "https://dod-graph.microsoft.us/.default",
        ),
        (
            "china",
            "https://login.chinacloudapi.cn",
            "https://microsoftgraph.chinacloudapi.cn",
            "https://microsoftgraph.chinacloudapi.cn/.default",
        ),
    ],
)
def test_every_cloud(cloud: str, authority: str, graph: str, scope: str) -> None:
    settings = GraphSettings.from_env(env(cloud=cloud.upper() if cloud == "china" else cloud))
    assert (settings.cloud, settings.authority_host, settings.graph_url, settings.scope) == (
        cloud,
        authority,
        graph,
        scope,
    )
    assert settings.instance_discovery is True  # Microsoft's own hosts: let MSAL validate them
    assert settings.authority("tid") == f"{authority}/tid"


def test_clouds_table_is_complete() -> None:
    assert set(CLOUDS) == {"global", "usgov", "usgov-dod", "china"}


def test_default_cloud_is_global() -> None:
    settings = GraphSettings.from_env(env())
    assert settings.cloud == "global" and settings.graph_url == "https://graph.microsoft.com"


def test_overrides_turn_off_instance_discovery_and_derive_scope_from_graph_host(tmp_path: Path) -> None:
    settings = GraphSettings.from_env(
        env(authority_host="https://127.0.0.1:8443/", graph_url="https://127.0.0.1:8443/")
    )
    assert settings.authority_host == "https://127.0.0.1:8443"
    assert settings.graph_url == "https://127.0.0.1:8443"
    assert settings.scope == "https://127.0.0.1:8443/.default"
    assert settings.instance_discovery is False
    # the scope is the Graph *host*, even if the URL carries a path (a proxy prefix)
    proxied = GraphSettings(client_id="c", client_secret=SECRET, graph_url="https://proxy.example/graph")
    assert proxied.scope == "https://proxy.example/.default"
    # overriding only the Graph URL keeps the cloud's authority and its discovery
    only_graph = GraphSettings.from_env(env(cloud="usgov", graph_url="https://graph.example"))
    assert only_graph.authority_host == "https://login.microsoftonline.us"
    assert only_graph.instance_discovery is True


def test_numbers_from_env() -> None:
    settings = GraphSettings.from_env(
        env(
            graph_max_attempts="3",
            graph_retry_budget_s="1.5",
            graph_per_tenant_concurrency="2",
            graph_read_timeout="5",
            graph_connect_timeout="2",
            graph_backoff_base_s="0.1",
            graph_backoff_cap_s="1",
        )
    )
    assert (settings.max_attempts, settings.retry_budget_s, settings.per_tenant_concurrency) == (3, 1.5, 2)
    assert (settings.read_timeout, settings.connect_timeout) == (5.0, 2.0)
    assert (settings.backoff_base_s, settings.backoff_cap_s) == (0.1, 1.0)
    defaults = GraphSettings(client_id="c", client_secret="x")
    assert (defaults.connect_timeout, defaults.read_timeout, defaults.max_attempts) == (10.0, 60.0, 8)
    assert (defaults.retry_budget_s, defaults.backoff_base_s, defaults.backoff_cap_s) == (120.0, 0.5, 30.0)
    assert defaults.per_tenant_concurrency == 4 and defaults.ca_bundle is None


@pytest.mark.parametrize(
    ("values", "code"),
    [
        ({"TENANTATLAS_CLIENT_SECRET": SECRET}, ErrorCode.AUTH_MISSING_CREDENTIALS),
        ({"TENANTATLAS_CLIENT_ID": "c"}, ErrorCode.AUTH_MISSING_CREDENTIALS),
        (
            {"TENANTATLAS_CLIENT_ID": "c", "TENANTATLAS_CLIENT_SECRET": "  "},
            ErrorCode.AUTH_MISSING_CREDENTIALS,
        ),
        ({}, ErrorCode.AUTH_MISSING_CREDENTIALS),
        (env(cloud="mars"), ErrorCode.CONFIG_INVALID),
        (env(graph_url="http://graph.example"), ErrorCode.CONFIG_INVALID),
        (env(authority_host="login.example"), ErrorCode.CONFIG_INVALID),
        (env(ca_bundle="/nonexistent/ca.pem"), ErrorCode.CONFIG_INVALID),
        (env(client_certificate="/nonexistent/cert.pem"), ErrorCode.CONFIG_INVALID),
        (env(graph_max_attempts="many"), ErrorCode.CONFIG_INVALID),
        (env(graph_max_attempts="0"), ErrorCode.CONFIG_INVALID),
        (env(graph_retry_budget_s="-1"), ErrorCode.CONFIG_INVALID),
    ],
)
def test_invalid_settings_fail_with_codes(values: dict[str, str], code: ErrorCode) -> None:
    with pytest.raises(GraphError) as info:
        GraphSettings.from_env(values)
    assert info.value.code == code
    assert SECRET not in str(info.value)


def test_missing_credentials_message_names_the_variables() -> None:
    with pytest.raises(GraphError) as info:
        GraphSettings.from_env({"TENANTATLAS_CLIENT_ID": "c"})
    assert "TENANTATLAS_CLIENT_SECRET" in info.value.message
    assert "TENANTATLAS_CLIENT_CERTIFICATE" in info.value.message


def test_secret_and_certificate_together_are_ambiguous(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(GraphError) as info:
        GraphSettings.from_env(env(client_certificate=str(cert)))
    assert info.value.code == ErrorCode.CONFIG_INVALID


def test_certificate_only_is_enough(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    settings = GraphSettings.from_env(
        {
            "TENANTATLAS_CLIENT_ID": "c",
            "TENANTATLAS_CLIENT_CERTIFICATE": str(cert),
            "TENANTATLAS_CLIENT_CERTIFICATE_THUMBPRINT": "AB:CD",
        }
    )
    assert settings.certificate_path == cert and settings.certificate_thumbprint == "AB:CD"
    assert settings.client_secret is None


def test_secret_never_in_repr_str_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    settings = GraphSettings.from_env(env())
    assert settings.client_secret == SECRET
    caplog.set_level(logging.DEBUG)
    logging.getLogger("test").debug("settings: %s %r", settings, settings)
    for text in (repr(settings), str(settings), f"{settings}", caplog.text):
        assert SECRET not in text
    assert "client_id" in repr(settings)


def test_settings_are_frozen_and_picklable() -> None:
    settings = GraphSettings.from_env(env())
    with pytest.raises(AttributeError):
        settings.cloud = "china"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(settings)) == settings
    assert {settings: 1}[GraphSettings.from_env(env())] == 1  # hashable: callers key client caches by it


def test_ssl_context_adds_the_bundle_to_default_trust(tmp_path: Path) -> None:
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    baseline = build_ssl_context(None)
    extended = build_ssl_context(bundle)
    assert extended.verify_mode == ssl.CERT_REQUIRED and extended.check_hostname
    # added, not replaced: everything trusted before is still trusted, plus exactly one more CA
    assert len(extended.get_ca_certs()) == len(baseline.get_ca_certs()) + 1
    assert len(baseline.get_ca_certs()) > 1


def test_public_trust_survives_an_empty_or_replaced_system_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import certifi

    mozilla = ssl.create_default_context(cafile=certifi.where()).get_ca_certs(binary_form=True)
    assert build_ssl_context(None).cert_store_stats()["x509_ca"] > 1  # this machine's system store
    # A slim image without ca-certificates: OpenSSL finds nothing at its default paths.
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "absent.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "absent"))
    assert ssl.create_default_context().cert_store_stats()["x509_ca"] == 0
    assert set(mozilla) <= set(build_ssl_context(None).get_ca_certs(binary_form=True))
    # SSL_CERT_FILE replaced by a bundle holding only a TLS-inspecting proxy's CA: the proxy's CA and
    # the public roots (Microsoft's endpoints are often exempt from inspection) are both trusted.
    proxy = trustme.CA()
    proxy_pem = tmp_path / "proxy-only.pem"
    proxy.cert_pem.write_to_path(str(proxy_pem))
    monkeypatch.setenv("SSL_CERT_FILE", str(proxy_pem))
    trusted = set(build_ssl_context(None).get_ca_certs(binary_form=True))
    assert ssl.create_default_context().cert_store_stats()["x509_ca"] == 1
    assert set(mozilla) <= trusted and len(trusted) == len(set(mozilla)) + 1


def test_unreadable_bundle_is_config_invalid(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(GraphError) as info:
        build_ssl_context(bad)
    assert info.value.code == ErrorCode.CONFIG_INVALID
