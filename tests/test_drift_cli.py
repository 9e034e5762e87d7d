"""`tenantatlas baseline` and `tenantatlas drift` on the real PostgreSQL: output contract, exit codes,
error codes, who is recorded."""

from __future__ import annotations

import copy
import json

import psycopg
import pytest
from click.testing import CliRunner

from tenantatlas_pipelines.cli import cli
from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.store.scope import tenant_scope
from tenantatlas_pipelines.store.selections import add_selection
from tenantatlas_pipelines.store.tenants import add_tenant
from tests import drift_support as ds
from tests.support import TENANT_A

BASE = ["--tenant", "contoso", "--selection", "drift"]
# `drift accept` of the one object the scenes change.
ACCEPT_WIFI = ["drift", "accept", *BASE, "--policy-type", "deviceConfiguration", "--external-id", "wifi"]


@pytest.fixture
def scene(db: Database, conn: psycopg.Connection):
    add_tenant(conn, TENANT_A, "contoso", "Contoso")
    selection = add_selection(conn, "drift", ds.TYPES)
    return tenant_scope(conn, TENANT_A), selection


def run(*args: str, operator: str = "alice"):
    return CliRunner().invoke(cli, list(args), env={"TENANTATLAS_OPERATOR": operator})


def test_errors_have_codes_and_exit_2(scene) -> None:
    scope, selection = scene
    cases = [
        (["drift", *BASE], "no_snapshot"),
        (["baseline", "set", *BASE], "no_snapshot"),
        (["drift", "--tenant", "nobody", "--selection", "drift"], "unknown_tenant"),
        (["drift", "--tenant", "contoso", "--selection", "nope"], "unknown_selection"),
        (["drift", "revoke", "42"], "acceptance_not_found"),
    ]
    for args, code in cases:
        out = run(*args)
        assert out.exit_code == 2 and f"error [{code}]" in out.output, (args, out.output)
    ds.snapshot(scope, selection, ds.baseline_content(), ds.baseline_assignments())
    for args, code in [
        (["drift", *BASE], "no_baseline_snapshot"),
        (["drift", *BASE, "--against", "baseline"], "no_baseline_snapshot"),
        (["drift", *BASE, "--against", "yesterday"], "baseline_not_usable"),
        (["drift", *BASE, "--against", "777"], "snapshot_not_found"),
        ([*ACCEPT_WIFI, "--note", "x"], "no_baseline_snapshot"),
    ]:
        out = run(*args)
        assert out.exit_code == 2 and f"error [{code}]" in out.output, (args, out.output)
    assert run("drift").exit_code == 2  # --tenant/--selection are required without a subcommand


def test_drift_table_json_fail_on_drift_and_acceptance_cycle(scene) -> None:
    scope, selection = scene
    content, assignments = ds.baseline_content(), ds.baseline_assignments()
    first = ds.snapshot(scope, selection, content, assignments)
    out = run("baseline", "show", *BASE)
    assert out.exit_code == 0 and "no baseline pinned" in out.output
    out = run("baseline", "set", *BASE, "--snapshot", str(first), "--json")
    assert out.exit_code == 0 and json.loads(out.output)["pinned_by"] == "alice"
    changed = copy.deepcopy(content)
    changed["wifi"]["ssid"] = "guest"
    ds.snapshot(scope, selection, changed, assignments)

    table = run("drift", *BASE)
    assert table.exit_code == 0
    assert "1 changed, 0 added, 0 missing (0 accepted, 1 alerting)" in table.output
    assert "ssid" in table.output and "guest" in table.output
    assert run("drift", *BASE, "--fail-on-drift").exit_code == 3
    report = json.loads(run("drift", *BASE, "--json").output)
    assert report["baseline_kind"] == "pinned" and report["items"][0]["changes"] == [
        {"path": "ssid", "baseline": "corp", "current": "guest"}
    ]

    missing_note = run(*ACCEPT_WIFI, "--note", "  ")
    assert missing_note.exit_code == 2
    note = "guest SSID approved by CAB-12"
    acc = run(*ACCEPT_WIFI, "--path", "ssid", "--note", note, "--json", operator="bob")
    assert acc.exit_code == 0, acc.output
    acceptance = json.loads(acc.output)
    assert (acceptance["accepted_by"], acceptance["path"]) == ("bob", "ssid")
    assert run("drift", *BASE, "--fail-on-drift").exit_code == 0
    assert json.loads(run("drift", *BASE, "--json").output)["items"][0]["accepted"] is True

    listed = run("drift", "accepted")
    assert listed.exit_code == 0 and "guest SSID approved" in listed.output and "bob" in listed.output
    assert run("drift", "revoke", str(acceptance["id"]), operator="carol").output.strip() == (
        f"acceptance {acceptance['id']} revoked by carol"
    )
    assert json.loads(run("drift", "accepted", "--json").output) == []
    history = json.loads(run("drift", "accepted", "--all", "--json").output)
    assert [(a["accepted_by"], a["revoked_by"]) for a in history] == [("bob", "carol")]
    assert run("drift", *BASE, "--fail-on-drift").exit_code == 3

    assert "cleared" in run("baseline", "clear", *BASE).output
    assert "no baseline was pinned" in run("baseline", "clear", *BASE).output
