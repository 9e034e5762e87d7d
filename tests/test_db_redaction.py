"""Database credentials are redacted in every form libpq accepts (issue #10, item 3).

`status`, `db url`, connection errors and Dagster failures print the database URL; none of them may
show a password, whether it sits in the userinfo, in a `password=` / `sslpassword=` query parameter
(name percent-encoded or not) or in a key=value conninfo string. A passfile may be named.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tenantatlas_pipelines.db import Database, redact_url
from tenantatlas_pipelines.errors import ErrorCode, TenantAtlasError
from tests.support import run_cli

SECRET = "Pw9NEEDLEq"
FORMS = [
    f"postgresql://app:{SECRET}@db.example:5432/tenantatlas",
    f"postgres://app:{SECRET}%40x@db.example/tenantatlas",
    f"postgresql://app@db.example/tenantatlas?password={SECRET}",
    f"postgresql://app@db.example/tenantatlas?sslmode=require&password={SECRET}&connect_timeout=3",
    f"postgresql://app@db.example/tenantatlas?PASSWORD={SECRET}",
    f"postgresql://app@db.example/tenantatlas?pass%77ord={SECRET}",
    f"postgresql://app@db.example/tenantatlas?sslpassword={SECRET}&sslkey=/k.pem",
    f"postgresql://app:{SECRET}@h1:5432,h2:5433/tenantatlas?sslpassword={SECRET}",
    f"host=db.example user=app password={SECRET} dbname=tenantatlas",
    f"host=db.example password = '{SECRET} x' dbname=tenantatlas",
    f"host=db.example sslpassword={SECRET}",
    f"postgresql://app:{SECRET}@[::1/broken",
]


@pytest.mark.parametrize("url", FORMS)
def test_redact_url_hides_every_credential_form(url: str) -> None:
    shown = redact_url(url)
    assert SECRET not in shown and "***" in shown


def test_redact_url_keeps_what_is_not_secret() -> None:
    url = "postgresql://app@db.example:5432/tenantatlas?sslmode=require&passfile=/home/app/.pgpass"
    assert redact_url(url) == url
    assert redact_url(f"postgresql://app:{SECRET}@db.example/x?sslmode=require") == (
        "postgresql://app:***@db.example/x?sslmode=require"
    )


def _server_port(url: str) -> int:
    return urlsplit(url).port or 5432


@pytest.mark.parametrize(
    "template",
    [
        "postgresql://postgres:{s}@127.0.0.1:{port}/{db}",
        "postgresql://postgres@127.0.0.1:{port}/{db}?password={s}",
        "postgresql://postgres@127.0.0.1:{port}/{db}?sslpassword={s}&password={s}",
        "host=127.0.0.1 port={port} dbname={db} user=postgres password={s}",
        # A malformed value: libpq's own error quotes the token, which must not come back either.
        "postgresql://postgres@127.0.0.1:{port}/{db}?password={s}%zz",
    ],
)
def test_connection_errors_never_show_the_password(db: Database, template: str) -> None:
    parts = urlsplit(db.url)
    url = template.format(s=SECRET, port=parts.port, db=parts.path.lstrip("/"))
    with pytest.raises(TenantAtlasError) as info:
        Database(url).connect().close()
    assert info.value.code == ErrorCode.DATABASE_UNAVAILABLE
    assert SECRET not in str(info.value) and SECRET not in repr(Database(url))


def _real_password(db: Database) -> str:
    passfile = dict(p.split("=", 1) for p in urlsplit(db.url).query.split("&"))["passfile"]
    return Path(passfile).read_text().strip().rsplit(":", 1)[1]


def _cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env={"TENANTATLAS_DATABASE_URL": url})


def test_status_and_db_url_redact_a_query_password(db: Database) -> None:
    """A working URL with the password as a query parameter: the commands succeed and never print it."""
    password = _real_password(db)
    parts = urlsplit(db.url)
    url = f"postgresql://postgres@127.0.0.1:{parts.port}{parts.path}?sslmode=disable&password={password}"
    for args in (("db", "url"), ("status",), ("status", "--json")):
        proc = _cli(*args, url=url)
        assert proc.returncode == 0, proc.stderr
        assert password not in proc.stdout + proc.stderr
        assert "password=***" in proc.stdout
    assert json.loads(_cli("status", "--json", url=url).stdout)["database"].endswith("password=***")
    down = f"postgresql://postgres:{password}@127.0.0.1:1/x?password={password}"
    proc = _cli("status", url=down)
    assert proc.returncode == 2 and "database_unavailable" in proc.stderr
    assert password not in proc.stdout + proc.stderr


def test_dagster_failure_does_not_show_the_password(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import instance_for_test
    from dagster._serdes import serialize_value

    from tenantatlas_pipelines.definitions import defs  # imported (env bound) before the URL changes

    monkeypatch.setenv("TENANTATLAS_DATABASE_URL", f"postgresql://app:{SECRET}@127.0.0.1:1/x?password={SECRET}")
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("tenant", ["contoso"])
        result = defs.resolve_job_def("inventory_sync_job").execute_in_process(
            partition_key="all|contoso", instance=instance, raise_on_error=False
        )
        assert not result.success
        events = [serialize_value(e) for e in result.all_events]
        logs = [serialize_value(e) for e in instance.all_logs(result.run_id)]
    text = "\n".join(events + logs)
    assert "database_unavailable" in text
    assert SECRET not in text
