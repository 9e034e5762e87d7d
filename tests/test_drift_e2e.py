"""Drift end to end: real snapshot runs (production GraphClient, MSAL, TLS) against the emulator, the
real PostgreSQL, and the `tenantatlas drift` command.

The emulator re-encrypts secrets on every read, moves volatile fields and shuffles arrays on content
reads (and on listings with volatile lists on), so an unchanged tenant read twice touches every
false-positive source for real; the demo's drift round (drift/demo.py) then makes each change kind once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from click.testing import CliRunner

from tenantatlas_pipelines.cli import cli
from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.drift import compute_drift
from tenantatlas_pipelines.drift.demo import apply_demo_drift
from tenantatlas_pipelines.emulator import Emulator, Fault
from tenantatlas_pipelines.graph.client import GraphClient
from tenantatlas_pipelines.snapshots.run import run_snapshot
from tenantatlas_pipelines.store.scope import tenant_scope
from tenantatlas_pipelines.store.selections import add_selection, get_selection
from tenantatlas_pipelines.store.tenants import add_tenant
from tests.test_sync_e2e import settings_for

TYPES = ["deviceConfiguration", "settingsCatalogPolicy"]
ITEM_FIELDS = {
    "policy_type",
    "external_id",
    "display_name",
    "kind",
    "confidence",
    "reason",
    "accepted",
    "changes",
}


@pytest.fixture
def graph(emulator: Emulator) -> Iterator[GraphClient]:
    with GraphClient(settings_for(emulator)) as client:
        yield client


@pytest.fixture
def contoso(conn: psycopg.Connection, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TENANTATLAS_SNAPSHOT_KEY", "e2e-drift-key")  # secrets compared via HMAC
    spec = emulator.tenant("contoso")
    # Enough device configurations for the demo round (Wi-Fi ones with a pre-shared key, custom ones
    # with encrypted OMA-URI settings).
    emulator.set_size(spec.tenant_id, "deviceConfiguration", 12)
    add_tenant(conn, spec.tenant_id, spec.key, spec.name)
    add_selection(conn, "cfg", TYPES)
    return spec.tenant_id


def _snapshot(db: Database, graph: GraphClient, expect: str = "succeeded") -> int:
    result = run_snapshot(db, graph, "contoso", "cfg")
    assert result.status == expect, result
    return int(result.snapshot_id)


def _drift_json(*args: str) -> tuple[int, dict]:
    out = CliRunner().invoke(cli, ["drift", "--tenant", "contoso", "--selection", "cfg", "--json", *args])
    return out.exit_code, json.loads(out.output) if out.exit_code in (0, 3) else out.output


@pytest.mark.slow
def test_drift_through_real_snapshot_runs(
    db: Database, conn: psycopg.Connection, emulator: Emulator, graph: GraphClient, contoso: str
) -> None:
    scope = tenant_scope(conn, contoso)
    selection = get_selection(conn, "cfg")

    runner = CliRunner()
    first = _snapshot(db, graph)
    out = runner.invoke(cli, ["drift", "--tenant", "contoso", "--selection", "cfg"])
    assert out.exit_code == 2 and "error [no_baseline_snapshot]" in out.output

    # No change, read again: re-encrypted secrets (and a rotated key), volatile fields, shuffled lists.
    emulator.reencrypt()
    emulator.set_volatile_lists(True)
    second = _snapshot(db, graph)
    code, quiet = _drift_json("--fail-on-drift")
    assert code == 0, quiet
    assert quiet == {
        "baseline_snapshot_id": first,
        "current_snapshot_id": second,
        "baseline_kind": "previous",
        "items": [],
    }

    # The demo's drift round: each change kind once, the re-encrypted secret not at all.
    pinned = runner.invoke(cli, ["baseline", "set", "--tenant", "contoso", "--selection", "cfg"])
    assert pinned.exit_code == 0 and f"snapshot {second}" in pinned.output
    demo = apply_demo_drift(emulator, "contoso")
    third = _snapshot(db, graph)
    code, report = _drift_json()
    assert code == 0 and set(report) == {
        "baseline_snapshot_id",
        "current_snapshot_id",
        "baseline_kind",
        "items",
    }
    assert (report["baseline_snapshot_id"], report["current_snapshot_id"], report["baseline_kind"]) == (
        second,
        third,
        "pinned",
    )
    items = {i["external_id"]: i for i in report["items"]}
    assert all(set(i) == ITEM_FIELDS for i in report["items"])
    assert all(set(c) == {"path", "baseline", "current"} for i in report["items"] for c in i["changes"])
    assert sorted(items) == sorted(e.external_id for e in demo.expected), report
    assert not set(demo.quiet) & set(items)
    for e in demo.expected:
        item = items[e.external_id]
        assert (item["kind"], item["confidence"], item["accepted"]) == (e.kind, "high", False)
        if e.path_prefix is not None:
            assert [c["path"] for c in item["changes"] if c["path"].startswith(e.path_prefix)], item
            assert len(item["changes"]) == 1, item  # exactly the one change made, nothing else
    renamed = next(e for e in demo.expected if e.path_prefix == "displayName")
    change = items[renamed.external_id]["changes"][0]
    assert change["current"] == change["baseline"] + " (renamed)"
    assigned = next(e for e in demo.expected if e.path_prefix and e.path_prefix.startswith("assignments"))
    added = items[assigned.external_id]["changes"][0]
    assert added["baseline"] is None and added["current"]["group_name"] in assigned.path_prefix
    assert _drift_json("--fail-on-drift")[0] == 3

    # Accept them all: still listed, accepted, and --fail-on-drift passes.
    for e in demo.expected:
        acc = runner.invoke(
            cli,
            [
                "drift",
                "accept",
                "--tenant",
                "contoso",
                "--selection",
                "cfg",
                "--policy-type",
                e.policy_type,
                "--external-id",
                e.external_id,
                "--note",
                "demo change",
            ],
            env={"TENANTATLAS_OPERATOR": "ops@msp"},
        )
        assert acc.exit_code == 0, acc.output
    code, report = _drift_json("--fail-on-drift")
    assert code == 0 and len(report["items"]) == 4 and all(i["accepted"] for i in report["items"])
    listed = json.loads(runner.invoke(cli, ["drift", "accepted", "--json"]).output)
    assert {a["accepted_by"] for a in listed} == {"ops@msp"} and len(listed) == 4

    # A partial current snapshot: deviceConfiguration forbidden now; nothing of it is high confidence.
    emulator.inject(Fault("forbidden", tenant_id=contoso, policy_type="deviceConfiguration"))
    fourth = _snapshot(db, graph, expect="partial")
    partial = compute_drift(scope, selection)
    assert partial.current_snapshot_id == fourth
    dc = [i for i in partial.items if i.policy_type == "deviceConfiguration"]
    assert dc and all(i.confidence == "low" and "graph_forbidden" in (i.reason or "") for i in dc)
    assert not [i for i in partial.items if i.kind == "missing" and i.confidence == "high"]


@pytest.mark.slow
def test_demo_drift_round_through_dagster(
    db: Database, conn: psycopg.Connection, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tenantatlas demo`'s drift round: snapshot through Dagster, change the tenant, snapshot and
    materialize `policy_drift` again; exactly the demo's changes come out, the re-encrypted one not."""
    from dagster import instance_for_test

    from tenantatlas_pipelines.cli_drift import demo_drift_round
    from tenantatlas_pipelines.cli_snapshots import materialize_snapshot
    from tenantatlas_pipelines.defs.partitions import PartitionRef

    for var, value in emulator.client_env().items():
        monkeypatch.setenv(var, value)
    spec = emulator.tenant("contoso")
    emulator.set_size(spec.tenant_id, "deviceConfiguration", 12)
    add_tenant(conn, spec.tenant_id, spec.key, spec.name)
    add_selection(conn, "configuration", TYPES)
    ref = PartitionRef("contoso", "configuration")
    with instance_for_test() as instance:
        first = materialize_snapshot(instance, db, ref)
        assert first["status"] == "succeeded", first
        rows = demo_drift_round(instance, db, emulator, [first])
    assert rows and all(r["made_by_demo"] for r in rows)
    assert sorted(r["kind"] for r in rows) == ["changed", "changed", "changed", "missing"]
    assert {r["confidence"] for r in rows} == {"high"}
