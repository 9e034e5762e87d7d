"""The embedded PostgreSQL asks every client for a password (issue #10, item 6).

With `--auth=trust` on 127.0.0.1 any local account was superuser (`psql -U postgres`, then
`COPY ... FROM PROGRAM`). Now the server demands scram-sha-256 with a generated password kept in
TENANTATLAS_HOME/pgpass (0600), the URL only names that file, and a data directory made with trust by an
older version is converted the first time it is used. The other-user test runs psql as a real second OS
account (CI runs as root, so it can create one).
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.db.embedded import (
    SUPERUSER,
    _bin,
    _prepare_root,
    _run_as,
    ensure_server,
    passfile_path,
    stop_server,
)

OTHER_USER = "tenantatlas_probe"


def _home_of(db: Database) -> Path:
    query = parse_qs(urlsplit(db.url).query)
    if "passfile" not in query:
        pytest.skip("the tests run against an external server (TENANTATLAS_TEST_DATABASE_URL)")
    return Path(query["passfile"][0]).parent


def _other_user() -> pwd.struct_passwd:
    if os.geteuid() != 0:
        pytest.skip("needs root to act as a second OS user")
    try:
        return pwd.getpwnam(OTHER_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", OTHER_USER],
            check=True, capture_output=True,
        )
        return pwd.getpwnam(OTHER_USER)


def _psql(host: str, port: int, passfile: Path, **run_as: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_bin("psql"), "-h", host, "-p", str(port), "-U", SUPERUSER, "-w", "-Atc", "SELECT 1", "postgres"],
        env={"PATH": os.environ.get("PATH", ""), "PGPASSFILE": str(passfile), "HOME": "/nonexistent"},
        capture_output=True, text=True, timeout=60, cwd="/", **run_as,  # type: ignore[arg-type]
    )


def test_another_os_user_cannot_connect(db: Database) -> None:
    home = _home_of(db)
    other = _other_user()
    port = urlsplit(db.url).port
    assert port is not None
    passfile = passfile_path(home)
    as_other = {"user": other.pw_uid, "group": other.pw_gid, "extra_groups": []}
    # Control: the owner of TENANTATLAS_HOME, with the password file, gets in.
    assert _psql("127.0.0.1", port, passfile).stdout.strip() == "1"
    # The other account: over loopback TCP (no password it can read) and over the unix socket.
    for host in ("127.0.0.1", str(home / "pgdata")):
        proc = _psql(host, port, passfile, **as_other)
        assert proc.returncode != 0, f"{OTHER_USER} connected via {host}: {proc.stdout}"
        assert proc.stdout.strip() != "1"
    tcp = _psql("127.0.0.1", port, passfile, **as_other)
    assert "password" in tcp.stderr  # refused for want of the password, not for some other reason


def test_password_file_is_private_and_urls_hold_no_password(db: Database) -> None:
    home = _home_of(db)
    passfile = passfile_path(home)
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
    assert passfile.stat().st_uid == os.geteuid()
    parts = urlsplit(db.url)
    assert parts.password is None and "password" not in parts.query
    password = passfile.read_text().strip().rsplit(":", 1)[1]
    assert len(password) >= 32 and password not in db.url
    hba = (home / "pgdata" / "pg_hba.conf").read_text()
    rules = [line.split() for line in hba.splitlines() if line.strip() and not line.startswith("#")]
    assert rules and all(rule[-1] == "scram-sha-256" for rule in rules), rules
    nowhere = f"postgresql://{SUPERUSER}@127.0.0.1:{parts.port}/postgres?passfile={home}/absent"
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(nowhere, connect_timeout=10).close()


@pytest.fixture
def server_tmp() -> Iterator[Path]:
    """A temporary directory outside pytest's tmp_path: any pytest session on the machine resets
    pytest-of-<user> to 0700, which would lock the server user (when root) out of a data directory there."""
    path = Path(tempfile.mkdtemp(prefix="tenantatlas-auth-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _old_trust_data_directory(home: Path) -> Path:
    """What the previous version's ensure_server made: initdb --auth=trust and no password file."""
    pgdata = home / "pgdata"
    pgdata.mkdir(parents=True)
    if os.geteuid() == 0:
        _prepare_root(pgdata)
    proc = subprocess.run(
        [_bin("initdb"), "-D", str(pgdata), "--auth=trust", "-U", SUPERUSER, "-E", "UTF8", "--no-sync",
         "--locale=C"],
        capture_output=True, text=True, cwd="/", **_run_as(),
    )
    assert proc.returncode == 0, proc.stderr
    return pgdata


@pytest.mark.slow
def test_a_trust_data_directory_is_converted_in_place(server_tmp: Path) -> None:
    """A home made by an older version (initdb --auth=trust, no pgpass) keeps its data and now needs
    the password."""
    home = server_tmp / "home"
    pgdata = _old_trust_data_directory(home)
    assert not passfile_path(home).exists()
    try:
        server = ensure_server(home)
        assert stat.S_IMODE(passfile_path(home).stat().st_mode) == 0o600
        hba = (pgdata / "pg_hba.conf").read_text()
        assert "trust" not in "".join(line for line in hba.splitlines() if not line.startswith("#"))
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE kept")
        nowhere = f"postgresql://{SUPERUSER}@127.0.0.1:{server.port}/postgres?passfile={home}/absent"
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(nowhere, connect_timeout=10).close()
        # A second start (server found running) leaves the converted setup as it is.
        again = ensure_server(home)
        with psycopg.connect(again.url("kept")) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        stop_server(home, mode="immediate")
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.slow
def test_a_running_trust_server_is_converted(server_tmp: Path) -> None:
    """The demo's server may be running, started with trust by the old code: converted without a restart."""
    home = server_tmp / "home"
    pgdata = _old_trust_data_directory(home)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(
        [_bin("pg_ctl"), "-D", str(pgdata), "-w", "-l", str(pgdata / "server.log"), "-o",
         f"-p {port} -h 127.0.0.1 -k {pgdata}", "start"],
        check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL, start_new_session=True,
        **_run_as(),
    )
    try:
        trusting = f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres?passfile={home}/absent"
        psycopg.connect(trusting).close()  # the old setup: no password needed
        server = ensure_server(home)
        assert server.port == port  # the running server was kept
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(trusting, connect_timeout=10).close()
        psycopg.connect(server.url()).close()
    finally:
        stop_server(home, mode="immediate")
        shutil.rmtree(home, ignore_errors=True)
