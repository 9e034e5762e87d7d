"""Secret hygiene: a full sync through Dagster with a distinctive client secret and distinctive
secret-looking payload fields; neither appears in logs, Dagster's event log, metadata, exception texts,
or any database table or file the pipeline writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tenantatlas_pipelines.config import PROJECT_ROOT
from tenantatlas_pipelines.db import DAGSTER_DATABASE_NAME, Database, with_database
from tenantatlas_pipelines.emulator import SECRET_PREFIX, Emulator, TenantSpec
from tenantatlas_pipelines.store.tenants import add_tenant

TENANT = TenantSpec(
    "5ec1e700-0000-4000-8000-000000000001",
    "hygiene",
    "Hygiene Ltd",
    sizes={"deviceConfiguration": 3, "mobileApp": 3, "deviceManagementScript": 2},
)
CLIENT_SECRET = f"hygiene-client-secret-{uuid.uuid4().hex}"
WRONG_SECRET = f"hygiene-wrong-secret-{uuid.uuid4().hex}"
PAYLOAD_SECRET = f"{SECRET_PREFIX}PAYLOAD-{uuid.uuid4().hex}"
NEEDLES = (CLIENT_SECRET, WRONG_SECRET, PAYLOAD_SECRET, SECRET_PREFIX)


def _dump_database(url: str) -> str:
    """Every row of every table in the public schema, as JSON text."""
    out: list[str] = []
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            for (row,) in conn.execute(
                sql.SQL("SELECT to_jsonb(t)::text FROM {} t").format(sql.Identifier(table))
            ):
                out.append(row)
    return "\n".join(out)


def _dump_files(root: Path) -> str:
    return "\n".join(
        p.read_text(errors="replace")
        for p in root.rglob("*")
        if p.is_file() and p.stat().st_size < 20_000_000 and "pgdata" not in p.parts
    )


@pytest.fixture
def hostile_emulator(tmp_path: Path):
    with Emulator(state_dir=tmp_path / "emulator", tenants=[TENANT], client_secret=CLIENT_SECRET) as emu:
        emu.add_object(
            TENANT.tenant_id,
            "deviceConfiguration",
            {
                "@odata.type": "#microsoft.graph.windows10CustomConfiguration",
                "displayName": "Wi-Fi with a key",
                "omaSettings": [{"omaUri": "./Vendor/MSFT/WiFi", "value": PAYLOAD_SECRET}],
                "preSharedKey": PAYLOAD_SECRET,
                "password": PAYLOAD_SECRET,
                "version": 4,
                "wifiSettings": {"passphrase": PAYLOAD_SECRET},
                "clientSecret": PAYLOAD_SECRET,
            },
        )
        yield emu


def _sync(db: Database, emu: Emulator, home: Path, secret: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TENANTATLAS_DATABASE_URL": db.url,
        "TENANTATLAS_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        **emu.client_env(),
        "TENANTATLAS_CLIENT_SECRET": secret,
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tenantatlas_pipelines",
            "sync",
            "--tenant",
            TENANT.key,
            "--selection",
            "all",
            "--json",
            "--verbose",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_no_secret_reaches_logs_events_metadata_errors_or_tables(
    db: Database, conn, hostile_emulator, tmp_path: Path
) -> None:
    add_tenant(conn, TENANT.tenant_id, TENANT.key, TENANT.name)
    home = tmp_path / "home"
    (home / "dagster").mkdir(parents=True)

    ok = _sync(db, hostile_emulator, home, CLIENT_SECRET)
    assert ok.returncode == 0, ok.stderr[-3000:]
    result = json.loads(ok.stdout)
    assert result["status"] == "succeeded" and result["counts"]["meta_keys_dropped"] > 0
    assert "sync run" in ok.stderr, "the verbose run log was captured (so the check below means something)"

    refused = _sync(db, hostile_emulator, home, WRONG_SECRET)
    assert refused.returncode == 1
    failed = json.loads(refused.stdout)
    assert failed["status"] == "failed" and failed["error_codes"] == ["auth_invalid_client"]

    # The secret-looking payload really was served: the emulator holds it, the store does not.
    served = [
        o
        for o in hostile_emulator.objects(TENANT.tenant_id, "deviceConfiguration")
        if o.get("password") == PAYLOAD_SECRET
    ]
    assert served
    with psycopg.connect(db.url) as check:
        stored = check.execute(
            "SELECT display_name, meta_jsonb FROM inventory_items WHERE display_name = 'Wi-Fi with a key'"
        ).fetchone()
    assert (
        stored is not None and stored[1].get("odata_type") == "#microsoft.graph.windows10CustomConfiguration"
    )

    haystacks = {
        "sync stdout/stderr": ok.stdout + ok.stderr,
        "failed sync stdout/stderr": refused.stdout + refused.stderr,
        "inventory database": _dump_database(db.url),
        "dagster database (event log, runs, metadata)": _dump_database(
            with_database(db.url, DAGSTER_DATABASE_NAME)
        ),
        "files under TENANTATLAS_HOME and DAGSTER_HOME": _dump_files(home),
    }
    assert "Wi-Fi with a key" in haystacks["inventory database"]
    assert failed["dagster_run_id"] in haystacks["dagster database (event log, runs, metadata)"]
    for where, text in haystacks.items():
        for needle in NEEDLES:
            assert needle not in text, f"{needle[:24]}… found in {where}"
