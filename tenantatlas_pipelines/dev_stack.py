"""The local Dagster stack `tenantatlas dev` runs: one code server, the webserver and the daemon.

Why not `dagster dev`: it starts its code server with a heartbeat, so a code server that hears nothing
from `dagster dev` for 30 s shuts itself down. On a busy machine (load ~8 on 2 cores) that happened and
the UI lost the code location until a manual Reload. Here the code server is a long-lived
`dagster code-server start` without `--heartbeat` (what the Helm chart's user-code deployment runs), the
webserver and daemon reach it through a workspace file with a `grpc_server` entry, and this supervisor
restarts it on the same port if it ever exits; the webserver reconnects by itself.

Why a process group: every process here (and what they start: the code server's API child, run workers)
shares one new process group, so stopping is one signal to the group, then a bounded wait, then
SIGKILL of the group and of any descendant that left it. Nothing outlives `tenantatlas dev`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ErrorCode, TenantAtlasError

log = logging.getLogger(__name__)

LOCATION_NAME = "tenantatlas"
DEFINITIONS_MODULE = "tenantatlas_pipelines.definitions"
# How long the stack may take to stop gracefully before the group is killed (bounded shutdown).
STOP_TIMEOUT_ENV = "TENANTATLAS_DEV_STOP_TIMEOUT_S"
DEFAULT_STOP_TIMEOUT_S = 20.0
# The code server's API child waits this long for a heartbeat from the code server itself (both are
# ours and die with the group; Dagster's 30 s default is what a starved machine exceeds).
API_HEARTBEAT_TTL_S = 86_400
# gRPC calls from webserver/daemon to the code server; Dagster's default (60 s) is tight under load.
GRPC_TIMEOUT_S = "180"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the code server's; it keeps it across restarts)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def workspace_config(host: str, port: int, location_name: str = LOCATION_NAME) -> dict[str, Any]:
    """A workspace whose one location is the long-lived code server (no server spawned per caller)."""
    return {"load_from": [{"grpc_server": {"host": host, "port": port, "location_name": location_name}}]}


def write_workspace(path: Path, host: str, port: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Written by `tenantatlas dev`: the webserver and daemon reach its code server here.\n"
        + yaml.safe_dump(workspace_config(host, port), sort_keys=False)
    )
    return path


def code_server_command(host: str, port: int, module: str = DEFINITIONS_MODULE) -> list[str]:
    return [
        sys.executable, "-m", "dagster", "code-server", "start",
        "-m", module, "--location-name", LOCATION_NAME,
        "--host", host, "--port", str(port),
        "--heartbeat-ttl", str(API_HEARTBEAT_TTL_S),
        "--log-level", "warning",
    ]  # fmt: skip


def webserver_command(workspace: Path, host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dagster_webserver",
        "-w",
        str(workspace),
        "--host",
        host,
        "--port",
        str(port),
    ]


def daemon_command(workspace: Path) -> list[str]:
    """Dagster's daemon through our entry point (pooled storage, quick backfill pick-up, quick dequeue:
    tenantatlas_pipelines/launcher/daemon.py)."""
    return [sys.executable, "-m", "tenantatlas_pipelines.launcher.daemon", "run", "-w", str(workspace)]


def stop_timeout() -> float:
    return float(os.environ.get(STOP_TIMEOUT_ENV, DEFAULT_STOP_TIMEOUT_S))


@dataclass
class ProcessGroup:
    """Child processes in one new process group, stopped together within a bounded time."""

    env: Mapping[str, str]
    cwd: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    pgid: int | None = None

    def start(self, name: str, cmd: Sequence[str]) -> subprocess.Popen[bytes]:
        """Start (or restart) `name`; the first process founds the group, the others join it."""
        kwargs: dict[str, Any] = {"process_group": 0} if self.pgid is None else {"process_group": self.pgid}
        proc = subprocess.Popen(
            list(cmd), env=dict(self.env), cwd=self.cwd, stdin=subprocess.DEVNULL, **kwargs
        )
        if self.pgid is None:
            self.pgid = proc.pid
        self.procs[name] = proc
        return proc

    def exited(self) -> dict[str, int]:
        """Children that have exited, with their return codes."""
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def descendants(self) -> list[Any]:
        """Every live process below our children (psutil), including any that left the group."""
        import psutil

        found: list[Any] = []
        for proc in self.procs.values():
            try:
                parent = psutil.Process(proc.pid)
                found += [parent, *parent.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        return found

    def stop(self, timeout: float | None = None) -> float:
        """Interrupt the group, wait up to `timeout`, then kill what is left; returns the seconds taken.

        SIGINT first: every Dagster process here shuts down cleanly on it (the webserver ignores SIGTERM
        for as long as it has connections); SIGTERM at half time for anything that only honours that;
        SIGKILL for the group and for descendants that left it once the time is up.
        """
        import psutil

        timeout = stop_timeout() if timeout is None else timeout
        started = time.monotonic()
        tree = self.descendants()  # before signalling: children re-parent as their parents exit
        alive = tree
        for sig in (signal.SIGINT, signal.SIGTERM):
            if self.pgid is not None:
                _signal_group(self.pgid, sig)
            for p in alive:  # also those that left the group
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.send_signal(sig)
            _, alive = psutil.wait_procs(alive, timeout=timeout / 2)
            if not alive:
                break
        if alive or (self.pgid is not None and _group_alive(self.pgid)):
            log.warning(
                "dev stack did not stop within %.0f s; killing %s",
                timeout,
                ", ".join(f"{p.pid} ({' '.join(_cmdline(p)[1:4])})" for p in alive) or "the group",
            )
            if self.pgid is not None:
                _signal_group(self.pgid, signal.SIGKILL)
            for p in alive:
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.kill()
            psutil.wait_procs(alive, timeout=10)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        return time.monotonic() - started


def _cmdline(proc: Any) -> list[str]:
    try:
        return list(proc.cmdline())
    except Exception:  # gone or a zombie already
        return []


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_for_port(host: str, port: int, timeout: float, alive: Callable[[], bool]) -> bool:
    """True once something accepts connections on (host, port); False on timeout or if `alive()` fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.5)
    return False


@dataclass
class DevStack:
    """Code server + webserver + daemon for one DAGSTER_HOME, supervised until stopped."""

    dagster_home: Path
    env: Mapping[str, str]
    host: str = "127.0.0.1"
    port: int = 3000
    code_host: str = "127.0.0.1"
    code_port: int = 0
    restarts: int = 0
    group: ProcessGroup | None = None
    #: More processes of the same stack (e.g. the inventory UI): started last, stopped with the group.
    extra: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def start(self, code_server_timeout: float = 300.0) -> None:
        """Start the code server, wait until it listens, then the webserver and the daemon."""
        self.code_port = self.code_port or free_port(self.code_host)
        workspace = write_workspace(self.dagster_home / "workspace.yaml", self.code_host, self.code_port)
        env = {**self.env, "DAGSTER_HOME": str(self.dagster_home)}
        env.setdefault("DAGSTER_GRPC_TIMEOUT_SECONDS", GRPC_TIMEOUT_S)
        # cwd = DAGSTER_HOME: its dagster.yaml is the instance's; started from the repo root, Dagster would
        # warn that the repo's own dagster.yaml is ignored (it is: DAGSTER_HOME's is the one in use).
        self.group = ProcessGroup(env=env, cwd=self.dagster_home)
        try:
            code = self.group.start("code-server", code_server_command(self.code_host, self.code_port))
            if not wait_for_port(
                self.code_host, self.code_port, code_server_timeout, lambda: code.poll() is None
            ):
                raise TenantAtlasError(
                    ErrorCode.CONFIG_INVALID,
                    f"the Dagster code server did not start listening on port {self.code_port} "
                    f"(exit status {code.poll()}); its output above says why",
                )
            self.group.start("webserver", webserver_command(workspace, self.host, self.port))
            self.group.start("daemon", daemon_command(workspace))
            for name, cmd in self.extra.items():
                self.group.start(name, cmd)
        except BaseException:  # a signal or a failed start: nothing we started may stay behind
            self.stop()
            raise

    def supervise_once(self) -> str | None:
        """Restart an exited code server; returns the name of another exited process (a fatal event)."""
        assert self.group is not None
        for name, code in self.group.exited().items():
            if name == "code-server":
                self.restarts += 1
                log.warning("code server exited (%s); restarting it on port %s", code, self.code_port)
                self.group.start(name, code_server_command(self.code_host, self.code_port))
            else:
                return f"{name} exited with status {code}"
        return None

    def run_until_stopped(self, interval: float = 1.0) -> int:
        """Supervise until a signal (KeyboardInterrupt) or a fatal exit; always stops the whole group."""
        try:
            while True:
                fatal = self.supervise_once()
                if fatal:
                    log.error("%s; stopping the dev stack", fatal)
                    return 1
                time.sleep(interval)
        except KeyboardInterrupt:
            return 0
        finally:
            self.stop()

    def stop(self) -> None:
        if self.group is not None:
            took = self.group.stop()
            log.info("dev stack stopped in %.1f s", took)
