"""The store-administration CLI end to end: tenants, selections, status, error codes on bad input."""

from __future__ import annotations

import json
import subprocess

from tenantatlas_pipelines.db import Database
from tests.support import run_cli


def tenantatlas(db: Database, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env={"TENANTATLAS_DATABASE_URL": db.url})


def test_tenants_and_selections_round_trip(db: Database) -> None:
    added = tenantatlas(
        db,
        "tenants",
        "add",
        "--tenant-id",
        "72F988BF-86F1-41AF-91AB-2D7CD011DB47",
        "--key",
        "contoso",
        "--name",
        "Contoso Ltd",
        "--json",
    )
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["tenant_id"] == "72f988bf-86f1-41af-91ab-2d7cd011db47"
    listed = json.loads(tenantatlas(db, "tenants", "list", "--json").stdout)
    assert [(t["key"], t["enabled"]) for t in listed] == [("contoso", True)]

    sel = tenantatlas(
        db, "selections", "add", "mine", "--policy-types", "mobileApp,deviceConfiguration,mobileApp", "--json"
    )
    assert sel.returncode == 0, sel.stderr
    assert json.loads(sel.stdout)["payload"] == {"policy_types": ["deviceConfiguration", "mobileApp"]}
    names = {s["name"] for s in json.loads(tenantatlas(db, "selections", "list", "--json").stdout)}
    assert {"all", "apps", "compliance", "configuration", "security", "mine"} <= names

    status = json.loads(tenantatlas(db, "status", "--json").stdout)
    assert status["items"] == 0 and [t["key"] for t in status["tenants"]] == ["contoso"]
    assert "001_core.sql" in status["migrations"]


def test_bad_input_gets_a_stable_code_and_changes_nothing(db: Database) -> None:
    bad_id = tenantatlas(db, "tenants", "add", "--tenant-id", "not-a-guid", "--key", "x", "--name", "X")
    assert bad_id.returncode == 2 and "error [invalid_tenant_id]" in bad_id.stderr
    bad_key = tenantatlas(
        db,
        "tenants",
        "add",
        "--tenant-id",
        "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "--key",
        "Bad Key",
        "--name",
        "X",
    )
    assert bad_key.returncode == 2 and "error [invalid_tenant_key]" in bad_key.stderr
    bad_type = tenantatlas(db, "selections", "add", "oops", "--policy-types", "deviceConfiguration,bogusType")
    assert bad_type.returncode == 2 and "error [unknown_policy_type]" in bad_type.stderr
    assert "bogusType" in bad_type.stderr
    assert json.loads(tenantatlas(db, "tenants", "list", "--json").stdout) == []
    assert "oops" not in {
        s["name"] for s in json.loads(tenantatlas(db, "selections", "list", "--json").stdout)
    }


def test_dead_database_is_reported_with_its_code(db: Database) -> None:
    dead = {"TENANTATLAS_DATABASE_URL": "postgresql://nobody:s3cret-pw@127.0.0.1:9/none"}
    out = run_cli("tenants", "list", env=dead, timeout=60)
    assert out.returncode == 2 and "error [database_unavailable]" in out.stderr
    assert "s3cret-pw" not in out.stderr + out.stdout
