"""`tenantatlas demo | dev | sync | missing` end to end (click CliRunner, real PostgreSQL, the emulator,
Dagster runs in a persistent instance under a temporary TENANTATLAS_HOME)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from click.testing import CliRunner
from dagster import DagsterEventType, DagsterInstance, EventRecordsFilter

from tenantatlas_pipelines.cli import cli
from tenantatlas_pipelines.compare.demo import COMPARE_DEMO_TENANTS
from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.defs.instance import STORAGE_URL_ENV, sqlalchemy_storage_url
from tenantatlas_pipelines.emulator import Emulator, small_tenants
from tenantatlas_pipelines.store.tenants import add_tenant, list_tenants

TENANTS = {t.key: t for t in small_tenants(0.02)}
GRAPH_VARS = (
    "TENANTATLAS_AUTHORITY_HOST",
    "TENANTATLAS_GRAPH_URL",
    "TENANTATLAS_CA_BUNDLE",
    "TENANTATLAS_CLIENT_ID",
    "TENANTATLAS_CLIENT_SECRET",
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh TENANTATLAS_HOME; the commands set env vars themselves, so restore the env afterwards."""
    saved = dict(os.environ)
    monkeypatch.setenv("TENANTATLAS_HOME", str(tmp_path))
    for var in ("DAGSTER_HOME", *GRAPH_VARS):
        monkeypatch.delenv(var, raising=False)
    yield tmp_path
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(tenants=TENANTS.values()) as emu:
        yield emu


@pytest.fixture
def configured(db: Database, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """A registered tenant set and a Graph configuration, as an operator would have them."""
    for var, value in zip(
        GRAPH_VARS,
        (
            emulator.authority_host,
            emulator.graph_url,
            str(emulator.ca_path),
            emulator.client_id,
            emulator.client_secret,
        ),
        strict=True,
    ):
        monkeypatch.setenv(var, value)
    with db.connect() as conn:
        for t in TENANTS.values():
            add_tenant(conn, t.tenant_id, t.key, t.name)
    return emulator


def open_cli_instance(db: Database, home: Path) -> DagsterInstance:
    """The instance the commands used (its storage URL comes from the env, as in dagster.yaml)."""
    os.environ[STORAGE_URL_ENV] = sqlalchemy_storage_url(db.dagster_storage_url())
    return DagsterInstance.from_config(str(home))


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_sync_json_succeeded_then_missing_json(configured: Emulator, db: Database) -> None:
    first = invoke("sync", "--tenant", "contoso", "--selection", "apps", "--json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert data["status"] == "succeeded" and isinstance(data["sync_run_id"], int)
    assert data["counts"]["observed"] > 0 and data["error_codes"] == []
    assert data["dagster_run_id"]
    assert invoke("missing", "--tenant", "contoso", "--selection", "apps", "--json").stdout.strip() == "[]"

    spec = TENANTS["contoso"]
    gone = configured.state.objects(spec.tenant_id, "appProtectionPolicy")[0]
    configured.remove_object(spec.tenant_id, "appProtectionPolicy", gone["id"])
    assert invoke("sync", "--tenant", "contoso", "--selection", "apps", "--json").exit_code == 0
    items = json.loads(invoke("missing", "--tenant", "contoso", "--selection", "apps", "--json").stdout)
    assert [(i["policy_type"], i["external_id"], i["confidence"]) for i in items] == [
        ("appProtectionPolicy", gone["id"], "high")
    ]
    assert {"display_name", "last_seen_at"} <= set(items[0])

    # The runs are in the persistent instance under TENANTATLAS_HOME/dagster.
    home = Path(os.environ["TENANTATLAS_HOME"]) / "dagster"
    assert (home / "dagster.yaml").exists()
    with open_cli_instance(db, home) as instance:
        assert instance.get_run_by_id(data["dagster_run_id"]) is not None


def test_sync_exit_status_follows_the_ledger(configured: Emulator) -> None:
    failed = invoke("sync", "--tenant", "tailspin", "--selection", "apps", "--json")
    assert failed.exit_code == 1
    data = json.loads(failed.stdout)
    assert data["status"] == "failed" and "graph_tenant_not_licensed" in data["error_codes"]
    partial = invoke("sync", "--tenant", "tailspin", "--selection", "compliance")
    assert partial.exit_code == 3 and "partial" in partial.stdout


def test_pem_in_the_certificate_variable_never_reaches_output_or_event_log(
    configured: Emulator, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue #10 item 2: PEM text where a path belongs fails the run as config_invalid, unquoted."""
    needle = "Zq8PEMBODYNEEDLE"
    pem = (
        f"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq{needle}hkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
    )
    # The definitions bind the variables set when they are first imported (resources_from_env): import
    # them with the usual set-up, so this test's variables never leak into later tests of the process.
    import tenantatlas_pipelines.definitions  # noqa: F401

    monkeypatch.setenv("TENANTATLAS_CLIENT_SECRET", "")  # set (for a bound EnvVar) but empty: no secret
    monkeypatch.setenv("TENANTATLAS_CLIENT_CERTIFICATE", pem)
    result = CliRunner().invoke(cli, ["sync", "--tenant", "contoso", "--selection", "apps", "--json"])
    text = result.stdout + result.stderr
    assert result.exit_code != 0 and "config_invalid" in text, text
    assert needle not in text and "BEGIN PRIVATE" not in text
    home = Path(os.environ["TENANTATLAS_HOME"]) / "dagster"
    with open_cli_instance(db, home) as instance:
        records = instance.get_event_records(EventRecordsFilter(event_type=DagsterEventType.RUN_FAILURE))
        runs = {r.event_log_entry.run_id for r in records}
        assert runs, "the sync should have failed its Dagster run"
        logs = "\n".join(
            json.dumps(e.to_json() if hasattr(e, "to_json") else str(e), default=str)
            for run_id in runs
            for e in instance.all_logs(run_id)
        )
    assert "config_invalid" in logs and needle not in logs and "BEGIN PRIVATE" not in logs


def test_sync_refuses_unknown_tenant_before_any_run(db: Database) -> None:
    result = CliRunner().invoke(cli, ["sync", "--tenant", "nobody", "--selection", "apps"])
    assert result.exit_code == 2 and "unknown_tenant" in result.stderr


def test_demo_syncs_every_partition_and_prints_a_summary(db: Database, tmp_path: Path) -> None:
    result = invoke("demo", "--scale", "0.02", "--selection", "compliance", "--no-compare", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    first = [r for r in rows if r["round"] == 1]
    assert sorted(r["tenant"] for r in first) == sorted(TENANTS)
    by_tenant = {r["tenant"]: r for r in first}
    assert by_tenant["contoso"]["status"] == "succeeded" and by_tenant["contoso"]["missing_high"] == 0
    assert by_tenant["tailspin"]["status"] == "partial"  # no Intune licence; conditional access still reads
    assert "[4/4] tailspin/compliance" in result.stderr
    # Round 2 (drift): two objects deleted in contoso -> missing with high confidence; a permission
    # revoked in fabrikam -> partial run, its items missing with low confidence, none high.
    drift = {r["tenant"]: r for r in rows if r["round"] == 2}
    assert set(drift) == {"contoso", "fabrikam"}
    deleted = re.search(r"Simulating drift: (\d+) \w+ deleted in contoso", result.stderr)
    assert deleted and int(deleted.group(1)) >= 1
    assert drift["contoso"]["status"] == "succeeded"
    assert drift["contoso"]["missing_high"] == int(deleted.group(1))
    assert drift["contoso"]["missing_low"] == 0
    assert drift["fabrikam"]["status"] == "partial" and drift["fabrikam"]["error_codes"] == [
        "graph_forbidden"
    ]
    assert drift["fabrikam"]["missing_high"] == 0 and drift["fabrikam"]["missing_low"] > 0
    # The dependency step: every snapshotted partition's graph; one assigned group removed in contoso
    # dangles after contoso's second snapshot, nowhere else.
    deps = {r["tenant"]: r for r in rows if r["round"] == "dependencies"}
    assert set(deps) == set(TENANTS) and deps["contoso"]["edges"] > 0
    assert re.search(r"Dependencies: group .* removed in contoso", result.stderr)
    assert deps["contoso"]["dangling"] >= 1 and deps["fabrikam"]["dangling"] == 0
    with open_cli_instance(db, tmp_path / "dagster") as instance:
        run_ids = {r["dagster_run_id"] for r in rows}
        assert all(instance.get_run_by_id(i) is not None for i in run_ids)

    table = invoke(
        "demo", "--scale", "0.02", "--selection", "compliance", "--tenant", "contoso", "--no-drift"
    )
    assert table.exit_code == 0
    assert "missing_high" in table.stdout and re.search(r"contoso\s+compliance\s+succeeded", table.stdout)


def test_dev_writes_instance_config_and_starts_the_dev_stack(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenantatlas_pipelines.dev_stack import DevStack

    launched: dict[str, Any] = {}

    def start(self: DevStack, code_server_timeout: float = 300.0) -> None:
        launched.update(env=dict(self.env), home=self.dagster_home, port=self.port, extra=dict(self.extra))

    def run_until_stopped(self: DevStack, interval: float = 1.0) -> int:
        # While the stack would run, the emulator answers at the configured URL.
        import httpx

        answer = httpx.get(
            launched["env"]["TENANTATLAS_GRAPH_URL"] + "/v1.0/$metadata",
            verify=launched["env"]["TENANTATLAS_CA_BUNDLE"],
        )
        launched["emulator_status"] = answer.status_code
        return 0

    monkeypatch.setattr(DevStack, "start", start)
    monkeypatch.setattr(DevStack, "run_until_stopped", run_until_stopped)
    result = invoke("dev", "--port", "3999", "--scale", "0.02")
    assert result.exit_code == 0, result.output
    env = launched["env"]
    assert launched["port"] == 3999 and launched["home"] == tmp_path / "dagster"
    # The inventory UI runs in the same process group, and both addresses are printed.
    ui_cmd = launched["extra"]["inventory-ui"]
    assert ui_cmd[1:4] == ["-m", "tenantatlas_pipelines", "ui"] and ui_cmd[-2:] == ["--port", "8080"]
    assert "Dagster UI:   http://127.0.0.1:3999" in result.output
    assert "Inventory UI: http://127.0.0.1:8080" in result.output
    assert env["DAGSTER_HOME"] == str(tmp_path / "dagster")
    assert env[STORAGE_URL_ENV].startswith("postgresql+psycopg2://")
    assert urlsplit(env[STORAGE_URL_ENV]).path == "/dagster"
    config = yaml.safe_load((tmp_path / "dagster" / "dagster.yaml").read_text())
    assert config["storage"]["postgres"]["postgres_url"] == {"env": STORAGE_URL_ENV}
    assert config["concurrency"]["runs"]["tag_concurrency_limits"][0]["key"] == "dagster/partition/tenant"
    assert launched["emulator_status"] < 500
    with db.connect() as conn:  # the demo tenants are registered for the sensor to pick up
        keys = {t.key for t in list_tenants(conn)}
    # the demo tenants and the compare pair (golden tenant litware and its branch, docs/compare.md)
    assert keys == {t.key for t in small_tenants(0.02)} | {t.key for t in COMPARE_DEMO_TENANTS}
