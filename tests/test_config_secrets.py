"""No configuration value is ever quoted in a message (issue #10, item 2).

A PEM pasted into TENANTATLAS_CLIENT_CERTIFICATE (instead of a path), or a secret put in the wrong
variable, must not be echoed into CLI output, `--json` reports or Dagster's event log: messages name the
variable and say why it is wrong, never what it holds. Each variable built into a message is tried with a
distinctive value that must not come back.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from tenantatlas_pipelines.errors import ErrorCode, TenantAtlasError
from tenantatlas_pipelines.graph.auth import _certificate_credential
from tenantatlas_pipelines.graph.settings import GraphSettings
from tenantatlas_pipelines.graph.tls import build_ssl_context

NEEDLE = "Zq8NEEDLEsecretvalue"
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    f"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC{NEEDLE}BKcwggSjAgEAAoIBAQC7\n"
    "-----END PRIVATE KEY-----\n"
)
BASE = {"TENANTATLAS_CLIENT_ID": "00000000-0000-0000-0000-000000000001"}


def _message(exc: BaseException) -> str:
    return f"{exc} {getattr(exc, 'message', '')} {exc!r}"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TENANTATLAS_CLIENT_CERTIFICATE", PEM),
        ("TENANTATLAS_CLIENT_CERTIFICATE", PEM.replace("\n", " ")),
        ("TENANTATLAS_CLIENT_CERTIFICATE", f"/etc/{NEEDLE}.pem"),
        ("TENANTATLAS_CA_BUNDLE", PEM),
        ("TENANTATLAS_CLOUD", NEEDLE),
        ("TENANTATLAS_AUTHORITY_HOST", f"http://{NEEDLE}.example"),
        ("TENANTATLAS_GRAPH_URL", f"https://user:{NEEDLE}@/x"),
        ("TENANTATLAS_GRAPH_MAX_ATTEMPTS", NEEDLE),
        ("TENANTATLAS_GRAPH_RETRY_BUDGET_S", NEEDLE),
        ("TENANTATLAS_GLOBAL_CONCURRENCY", NEEDLE),
    ],
)
def test_settings_errors_name_the_variable_never_its_value(variable: str, value: str) -> None:
    environ = {**BASE, variable: value}
    if variable != "TENANTATLAS_CLIENT_CERTIFICATE":
        environ["TENANTATLAS_CLIENT_SECRET"] = "s"
    with pytest.raises(TenantAtlasError) as info:
        GraphSettings.from_env(environ)
    assert info.value.code == ErrorCode.CONFIG_INVALID
    text = _message(info.value)
    assert NEEDLE not in text and "BEGIN PRIVATE" not in text
    assert variable in info.value.message


def test_pem_text_instead_of_a_path_is_explained() -> None:
    with pytest.raises(TenantAtlasError) as info:
        GraphSettings.from_env({**BASE, "TENANTATLAS_CLIENT_CERTIFICATE": PEM})
    assert "looks like PEM text" in info.value.message


def test_settings_repr_holds_no_credential_value(tmp_path: Path) -> None:
    cert = tmp_path / f"{NEEDLE}.pem"
    cert.write_text("x")
    settings = GraphSettings.from_env({**BASE, "TENANTATLAS_CLIENT_CERTIFICATE": str(cert)})
    assert NEEDLE not in repr(settings)


def test_unreadable_certificate_and_bundle_messages_do_not_quote_the_path(tmp_path: Path) -> None:
    bad = tmp_path / f"{NEEDLE}.pem"
    bad.write_text(PEM)  # not a usable key: the loader fails
    settings = GraphSettings.from_env({**BASE, "TENANTATLAS_CLIENT_CERTIFICATE": str(bad)})
    with pytest.raises(TenantAtlasError) as info:
        _certificate_credential(settings)
    assert info.value.code == ErrorCode.CONFIG_INVALID
    assert NEEDLE not in _message(info.value)
    assert "TENANTATLAS_CLIENT_CERTIFICATE" in info.value.message
    with pytest.raises(TenantAtlasError) as info:
        build_ssl_context(bad)
    assert NEEDLE not in _message(info.value)
    assert "TENANTATLAS_CA_BUNDLE" in info.value.message


def test_ec_certificate_message_does_not_quote_the_path(tmp_path: Path) -> None:
    ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
    cert = ca.issue_cert("client.example", key_type=trustme.KeyType.ECDSA)
    path = tmp_path / f"{NEEDLE}.pem"
    path.write_bytes(cert.private_key_pem.bytes() + cert.cert_chain_pems[0].bytes())
    settings = GraphSettings.from_env({**BASE, "TENANTATLAS_CLIENT_CERTIFICATE": str(path)})
    with pytest.raises(TenantAtlasError) as info:
        _certificate_credential(settings)
    assert "RSA" in info.value.message and NEEDLE not in _message(info.value)


def test_schedule_cron_error_does_not_quote_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    from tenantatlas_pipelines.defs.schedules import CRON_ENV, sync_cron

    monkeypatch.setenv(CRON_ENV, NEEDLE)
    with pytest.raises(TenantAtlasError) as info:
        sync_cron()
    assert info.value.code == ErrorCode.CONFIG_INVALID
    assert NEEDLE not in _message(info.value) and CRON_ENV in info.value.message


@pytest.mark.parametrize(
    "variable", ["TENANTATLAS_MAX_CONCURRENT_RUNS", "TENANTATLAS_RUNS_PER_TENANT"]
)
def test_run_queue_limits_do_not_quote_the_value(variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tenantatlas_pipelines.defs.instance import run_queue_settings

    monkeypatch.setenv(variable, NEEDLE)
    with pytest.raises(TenantAtlasError) as info:
        run_queue_settings()
    assert info.value.code == ErrorCode.CONFIG_INVALID
    assert NEEDLE not in _message(info.value) and variable in info.value.message


def test_gdap_partner_variable_is_not_quoted(monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster import build_sensor_context

    from tenantatlas_pipelines.defs.resources import GraphResource, InventoryDatabase
    from tenantatlas_pipelines.defs.sensors import GDAP_PARTNER_ENV, gdap_discovery_sensor

    monkeypatch.setenv(GDAP_PARTNER_ENV, NEEDLE)
    context = build_sensor_context(resources={"inventory_db": InventoryDatabase(), "graph": GraphResource()})
    with pytest.raises(TenantAtlasError) as info:
        gdap_discovery_sensor(context)
    assert info.value.code == ErrorCode.INVALID_TENANT_ID
    assert NEEDLE not in _message(info.value) and GDAP_PARTNER_ENV in info.value.message
