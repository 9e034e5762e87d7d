"""`tenantatlas dev` as real processes: the code server outlives a starved machine, and SIGTERM/SIGINT
stop the whole tree within a bound."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.dev_stack import (
    DevStack,
    ProcessGroup,
    code_server_command,
    daemon_command,
    webserver_command,
    workspace_config,
)

PORT = 3002  # the range this project's tests may use for a webserver
LOCATION_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name
    locationOrLoadError {
      __typename
      ... on RepositoryLocation { repositories { assetNodes { assetKey { path } } } }
    }
} } } }
"""


def _alive(pids: list[int]) -> list[int]:
    return [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def test_process_group_stops_every_descendant_within_the_bound(tmp_path: Path) -> None:
    group = ProcessGroup(env=dict(os.environ), cwd=tmp_path)
    group.start("plain", [sys.executable, "-c", "import time; time.sleep(300)"])
    # Ignores SIGINT and SIGTERM, and has a child that left the group (its own session).
    group.start("stubborn", ["sh", "-c", "trap '' INT TERM; setsid sleep 301 & sleep 302 & wait"])
    deadline = time.monotonic() + 30

    def settled() -> bool:  # all four started, and setsid has really moved its sleep out of the group
        procs = group.descendants()
        return len(procs) == 4 and any(_pgid(p.pid) not in (None, group.pgid) for p in procs)

    while not settled() and time.monotonic() < deadline:
        time.sleep(0.1)
    pids = [p.pid for p in group.descendants()]  # python, sh and its two sleeps
    assert len(pids) == 4, pids
    assert any(os.getpgid(p) != group.pgid for p in pids)  # one left the group
    took = group.stop(timeout=2)
    assert took < 15
    assert _alive(pids) == []


def test_the_stack_runs_no_dagster_dev_and_its_code_server_has_no_heartbeat(tmp_path: Path) -> None:
    # `dagster dev` is superseded (it warns so) and starts its code server with a heartbeat timeout;
    # the stack starts the three processes itself, the code server without --heartbeat.
    workspace = tmp_path / "workspace.yaml"
    cmds = [
        code_server_command("127.0.0.1", 4000),
        webserver_command(workspace, "h", 1),
        daemon_command(workspace),
    ]
    assert not any("dev" in cmd[1:5] for cmd in cmds)
    assert "--heartbeat" not in cmds[0] and "code-server" in cmds[0]
    assert workspace_config("127.0.0.1", 4000) == {
        "load_from": [{"grpc_server": {"host": "127.0.0.1", "port": 4000, "location_name": "tenantatlas"}}]
    }
    # Started in DAGSTER_HOME, so the repo's dagster.yaml is not the one Dagster warns it ignores.
    stack = DevStack(dagster_home=tmp_path, env={})
    assert stack.dagster_home == tmp_path


def _locations(port: int) -> dict[str, Any] | None:
    try:
        answer = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": LOCATION_QUERY}, timeout=30)
        return answer.json()["data"]["workspaceOrError"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def _asset_keys(port: int) -> set[str]:
    workspace = _locations(port) or {}
    keys: set[str] = set()
    for entry in workspace.get("locationEntries", []):
        location = entry.get("locationOrLoadError") or {}
        for repo in location.get("repositories", []):
            keys |= {"/".join(n["assetKey"]["path"]) for n in repo["assetNodes"]}
    return keys


def _wait_for_assets(port: int, timeout: float, proc: subprocess.Popen[bytes]) -> set[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "tenantatlas dev exited"
        keys = _asset_keys(port)
        if "inventory_sync" in keys:
            return keys
        time.sleep(2)
    return set()


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_dev_stack_survives_a_starved_machine_and_sigterm_stops_the_whole_tree(
    db: Database, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "TENANTATLAS_HOME": str(tmp_path),
        "TENANTATLAS_DATABASE_URL": db.url,
        "TENANTATLAS_SYNC_NEW_TENANTS": "0",  # no sync runs: this test is about the processes
    }
    for var in ("DAGSTER_HOME", "TENANTATLAS_GRAPH_URL", "TENANTATLAS_CLIENT_ID"):
        env.pop(var, None)
    log_path = tmp_path / "dev.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tenantatlas_pipelines", "dev", "--port", str(PORT), "--scale", "0.02"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    burners: list[subprocess.Popen[bytes]] = []
    try:
        assert "missing_items" in _wait_for_assets(PORT, 300, proc), log_path.read_text()[-3000:]
        tree = psutil.Process(proc.pid).children(recursive=True)
        by_role = {
            role: [p for p in tree if any(role in part for part in p.cmdline())]
            for role in ("code-server", "dagster_webserver", "launcher.daemon")
        }
        assert all(by_role.values()), by_role
        code_server = by_role["code-server"][0]

        # Starve everything that could heartbeat the code server for longer than Dagster's 30 s
        # heartbeat timeout (SIGSTOP is a load of infinity for those processes), while two busy
        # loops keep both cores loaded. Under `dagster dev` its code server shut itself down here.
        stopped = [psutil.Process(proc.pid), *by_role["dagster_webserver"], *by_role["launcher.daemon"]]
        burn = "import time\nend = time.time() + 40\nwhile time.time() < end: pass"
        burners = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(2)]
        for p in stopped:
            p.suspend()
        time.sleep(40)
        for p in stopped:
            p.resume()
        assert code_server.is_running() and code_server.status() != psutil.STATUS_ZOMBIE
        assert "missing_items" in _wait_for_assets(PORT, 120, proc)
        assert psutil.Process(proc.pid).children(recursive=True)  # nothing was restarted away
        pids = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
        took = time.monotonic() - started
        assert took < 90, took  # 20 s stop bound + emulator + interpreter exit, with slack for load
        assert _alive(pids) == [], [psutil.Process(p).cmdline() for p in _alive(pids)]
        assert not _port_open(PORT)
    finally:
        for b in burners:
            b.kill()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log_path.read_text()
    assert "No heartbeat received" not in output
    assert "will not be used to configure Dagster" not in output  # the repo's dagster.yaml warning
    assert "dg dev" not in output  # the `dagster dev` supersession warning
    assert "code server exited" not in output  # never needed a restart
