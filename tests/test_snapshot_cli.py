"""`tenantatlas snapshot | snapshots list | show` end to end (CliRunner, real PostgreSQL, the emulator,
Dagster runs of `policy_snapshot_job` in a persistent instance), and the Dagster wiring of snapshots."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from tenantatlas_pipelines.cli import cli
from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.defs.snapshot_reporting import snapshot_metadata
from tenantatlas_pipelines.emulator import SECRET_PREFIX, Emulator, Fault
from tests.test_dagster_cli import TENANTS, configured, emulator, isolated_env  # noqa: F401


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.slow
def test_snapshot_list_and_show(configured: Emulator, db: Database) -> None:  # noqa: F811
    first = invoke("snapshot", "--tenant", "contoso", "--selection", "apps", "--json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert {"snapshot_id", "status", "tenant_key", "selection_name", "selection_hash", "objects",
            "new_versions", "error_codes"} <= set(data)
    assert data["status"] == "succeeded" and data["tenant_key"] == "contoso"
    assert data["selection_name"] == "apps" and len(data["selection_hash"]) == 64
    assert data["objects"] > 0 and data["new_versions"] == data["objects"] and data["error_codes"] == []
    second_out = invoke("snapshot", "--tenant", "contoso", "--selection", "apps", "--json").stdout
    second = json.loads(second_out)
    assert second["new_versions"] == 0 and second["objects"] == data["objects"]

    listed = json.loads(invoke("snapshots", "list", "--tenant", "contoso", "--json").stdout)
    assert [s["snapshot_id"] for s in listed] == [second["snapshot_id"], data["snapshot_id"]]
    table = invoke("snapshots", "list", "--tenant", "contoso", "--selection", "apps")
    assert table.exit_code == 0 and "succeeded" in table.stdout

    spec = TENANTS["contoso"]
    app = next(o for o in configured.objects(spec.tenant_id, "mobileApp") if o.get("isAssigned"))
    shown = invoke("show", "--tenant", "contoso", "--policy-type", "mobileApp", "--external-id", app["id"],
                   "--json")
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.stdout)
    assert doc["snapshot_id"] == second["snapshot_id"] and doc["content"]["displayName"] == app["displayName"]
    assert "assignments" in doc["content"]
    assert [v["snapshot_ids"] for v in doc["versions"]] == [[data["snapshot_id"], second["snapshot_id"]]]
    older = json.loads(invoke("show", "--tenant", "contoso", "--policy-type", "mobileApp", "--external-id",
                              app["id"], "--snapshot", str(data["snapshot_id"]), "--json").stdout)
    assert older["content_hash"] == doc["content_hash"]
    missing = invoke("show", "--tenant", "contoso", "--policy-type", "mobileApp", "--external-id", "nope")
    assert missing.exit_code == 2 and "object_not_in_snapshot" in missing.stderr

    # Secrets: not in the CLI's output, and not in Dagster's event log of these runs (every log line and
    # the metadata of the materializations), which lives in its own database on the same server.
    assert SECRET_PREFIX not in first.stdout + second_out + shown.stdout
    with psycopg.connect(db.dagster_storage_url()) as dconn:
        events = [r[0] for r in dconn.execute(
            "SELECT event FROM event_logs WHERE run_id = ANY(%s)",
            ([data["dagster_run_id"], json.loads(second_out)["dagster_run_id"]],))]
    assert any("policy_snapshots" in e for e in events)
    assert not [e for e in events if SECRET_PREFIX in e]


@pytest.mark.slow
def test_snapshot_exit_status_follows_the_ledger(configured: Emulator) -> None:  # noqa: F811
    spec = TENANTS["fabrikam"]
    configured.inject(Fault("forbidden", tenant_id=spec.tenant_id, policy_type="mobileApp"))
    try:
        partial = invoke("snapshot", "--tenant", "fabrikam", "--selection", "apps", "--json")
    finally:
        configured.clear_faults()
    assert partial.exit_code == 3
    assert json.loads(partial.stdout)["error_codes"] == ["graph_forbidden"]
    refused = invoke("snapshot", "--tenant", "nobody", "--selection", "apps")
    assert refused.exit_code == 2 and "unknown_tenant" in refused.stderr


def test_definitions_carry_the_snapshot_asset_job_and_schedule() -> None:
    from tenantatlas_pipelines import definitions
    from tenantatlas_pipelines.defs.partitions import sync_partitions
    from tenantatlas_pipelines.defs.snapshots import policy_snapshots, snapshot_cron

    job = definitions.defs.resolve_job_def("policy_snapshot_job")
    assert job.partitions_def == sync_partitions
    assert policy_snapshots.partitions_def == sync_partitions
    assert "policy_snapshots_schedule" in {s.name for s in definitions.defs.schedules}
    assert snapshot_cron() == "0 4 * * *"


def test_snapshot_cron_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    from tenantatlas_pipelines.defs.snapshots import snapshot_cron
    from tenantatlas_pipelines.errors import TenantAtlasError

    monkeypatch.setenv("TENANTATLAS_SNAPSHOT_CRON", "every day")
    with pytest.raises(TenantAtlasError) as err:
        snapshot_cron()
    assert err.value.code == "config_invalid"


def test_snapshot_metadata_is_numeric() -> None:
    from tenantatlas_pipelines.snapshots.run import SnapshotResult

    result = SnapshotResult(7, "partial", "contoso", "t", "apps", "h" * 64, 10, 2, 0, 5, 1, 30, 3, 2, 1.5,
                            True, ("graph_forbidden",), None)
    meta = snapshot_metadata(result)
    assert {k: meta[k] for k in ("objects", "new_versions", "requests", "throttled", "duration_s")} == {
        "objects": 10, "new_versions": 2, "requests": 30, "throttled": 3, "duration_s": 1.5}
    assert meta["error_codes"] == "graph_forbidden" and meta["snapshot_id"] == 7
