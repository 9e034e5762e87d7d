"""Helpers for the fault-injection and hostile-input tests: real processes, real PostgreSQL, the emulator.

Also a child-process entry point: ``python -m tests.fault_helpers DATABASE_URL TENANT SELECTION
[--ready FILE --gate FILE]`` runs one production sync (GraphClient from the ``TENANTATLAS_*`` environment,
``run_sync``) and prints one JSON line: the ledger result, or ``{"error_code": ...}`` when the engine
raised a TenantAtlasError. With ``--ready``/``--gate`` it imports everything, writes the ready file and
waits for the gate file before it starts, so many processes can be released at the same instant.

Kept free of pytest so the child starts as fast as the engine allows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from tenantatlas_pipelines.config import PROJECT_ROOT
from tenantatlas_pipelines.emulator import Emulator, TenantSpec
from tenantatlas_pipelines.graph.settings import GraphSettings
from tenantatlas_pipelines.normalize import InventoryRecord, normalize_item
from tenantatlas_pipelines.policy_types import get_policy_type

# Small retry limits: every fault test ends in seconds, never in a production-sized budget.
FAST_RETRIES: dict[str, float | int] = {
    "max_attempts": 4,
    "retry_budget_s": 3.0,
    "backoff_base_s": 0.02,
    "backoff_cap_s": 0.2,
    "connect_timeout": 5.0,
    "read_timeout": 15.0,
}
_ENV_NAMES = {
    "max_attempts": "TENANTATLAS_GRAPH_MAX_ATTEMPTS",
    "retry_budget_s": "TENANTATLAS_GRAPH_RETRY_BUDGET_S",
    "backoff_base_s": "TENANTATLAS_GRAPH_BACKOFF_BASE_S",
    "backoff_cap_s": "TENANTATLAS_GRAPH_BACKOFF_CAP_S",
    "connect_timeout": "TENANTATLAS_GRAPH_CONNECT_TIMEOUT",
    "read_timeout": "TENANTATLAS_GRAPH_READ_TIMEOUT",
    "per_tenant_concurrency": "TENANTATLAS_GRAPH_PER_TENANT_CONCURRENCY",
}


def graph_settings(emu: Emulator, **overrides: Any) -> GraphSettings:
    """Production GraphSettings pointed at the emulator (real TLS, real MSAL) with fast retries."""
    values: dict[str, Any] = {
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
        "authority_host": emu.authority_host,
        "graph_url": emu.graph_url,
        "ca_bundle": emu.ca_path,
        **FAST_RETRIES,
    }
    values.update(overrides)
    return GraphSettings(**values)


def graph_env(emu: Emulator, **overrides: float | int) -> dict[str, str]:
    """The environment a child process needs for GraphSettings.from_env() to reach the emulator."""
    env = {
        "TENANTATLAS_AUTHORITY_HOST": emu.authority_host,
        "TENANTATLAS_GRAPH_URL": emu.graph_url,
        "TENANTATLAS_CA_BUNDLE": str(emu.ca_path),
        "TENANTATLAS_CLIENT_ID": emu.client_id,
        "TENANTATLAS_CLIENT_SECRET": emu.client_secret,
    }
    for name, value in {**FAST_RETRIES, **overrides}.items():
        env[_ENV_NAMES[name]] = str(value)
    return env


def register(conn: psycopg.Connection, *specs: TenantSpec) -> None:
    from tenantatlas_pipelines.store.tenants import add_tenant

    for spec in specs:
        add_tenant(conn, spec.tenant_id, spec.key, spec.name)


# --- what Graph holds vs what the store holds ------------------------------------------------------------
def expected_ids(emu: Emulator, tenant_id: str, policy_types: Iterable[str]) -> set[tuple[str, str]]:
    """(policy_type, external_id) of every object the emulator lists that the pipeline keeps."""
    out: set[tuple[str, str]] = set()
    for key in policy_types:
        ptype = get_policy_type(key)
        for obj in emu.objects(tenant_id, key):
            record = normalize_item(ptype, obj)
            if isinstance(record, InventoryRecord):
                out.add((key, record.external_id))
    return out


@dataclass(frozen=True)
class Row:
    display_name: str | None
    meta: dict[str, Any]
    first_seen_at: datetime
    last_seen_at: datetime
    last_seen_sync_run_id: int


def inventory(conn: psycopg.Connection, tenant_id: str) -> dict[tuple[str, str], Row]:
    """The tenant's inventory rows by identity (read in a fresh snapshot)."""
    conn.commit()
    rows = conn.execute(
        """SELECT policy_type, external_id, display_name, meta_jsonb, first_seen_at, last_seen_at,
                  last_seen_sync_run_id FROM inventory_items WHERE tenant_id = %s""",
        (tenant_id,),
    ).fetchall()
    conn.commit()
    return {(r[0], r[1]): Row(*r[2:]) for r in rows}


def runs(conn: psycopg.Connection, tenant_id: str) -> list[dict[str, Any]]:
    """Every ledger row of the tenant, oldest first."""
    conn.commit()
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT * FROM inventory_sync_runs WHERE tenant_id = %s ORDER BY id", (tenant_id,)
        ).fetchall()
    conn.commit()
    return rows


def run_types(conn: psycopg.Connection, run_id: int) -> dict[str, dict[str, Any]]:
    """The per-policy-type rows of one run, by policy type."""
    conn.commit()
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT * FROM inventory_sync_run_types WHERE sync_run_id = %s", (run_id,)
        ).fetchall()
    conn.commit()
    return {r["policy_type"]: r for r in rows}


def assert_counts_match_inventory(conn: psycopg.Connection, tenant_id: str, run_id: int) -> None:
    """Every page a run committed is whole: per type, the items the ledger counts as observed by the
    run are exactly the inventory rows whose last observation is that run (first run of a tenant)."""
    conn.commit()
    stored = dict(
        conn.execute(
            """SELECT policy_type, count(*) FROM inventory_items
               WHERE tenant_id = %s AND last_seen_sync_run_id = %s GROUP BY 1""",
            (tenant_id, run_id),
        ).fetchall()
    )
    conn.commit()
    counted = {k: v["items_observed"] for k, v in run_types(conn, run_id).items() if v["items_observed"]}
    assert stored == counted, f"ledger counts {counted} disagree with inventory {stored}"


def graph_log(emu: Emulator, tenant_id: str, endpoint: str = "graph") -> list[Any]:
    return [r for r in emu.request_log if r.tenant_id == tenant_id and r.endpoint == endpoint]


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60.0, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


# --- a wire that lies: rewrite bytes of real emulator answers (for what the emulator cannot send) -------
class RewritingTransport(httpx.BaseTransport):
    """Wraps a real TLS transport and replaces byte strings in response bodies, e.g. a marker in a
    display name by a JSON escape of a lone surrogate, which no UTF-8 encoder can produce."""

    def __init__(self, ca_path: Path, replacements: Mapping[bytes, bytes]) -> None:
        from tenantatlas_pipelines.graph.tls import build_ssl_context

        self._inner = httpx.HTTPTransport(verify=build_ssl_context(ca_path))
        self._replacements = dict(replacements)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        body = response.read()
        response.close()
        for old, new in self._replacements.items():
            body = body.replace(old, new)
        headers = [(k, v) for k, v in response.headers.raw if k.lower() != b"content-length"]
        return httpx.Response(response.status_code, headers=headers, content=body)

    def close(self) -> None:
        self._inner.close()


# --- run locks -------------------------------------------------------------------------------------------
def kill_lock_session(
    conn: psycopg.Connection,
    tenant_id: str,
    selection_hash: str,
    namespace: str = "sync",
    timeout: float = 30.0,
) -> int:
    """pg_terminate_backend on the session holding the pair's run lock (what an idle-session reaper or a
    failover does to a run); waits until the server has ended it. Returns the session's pid."""
    from tenantatlas_pipelines.store.locks import lock_key_sql

    row = conn.execute(
        f"""SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND ((classid::bigint << 32) | objid::bigint) = ({lock_key_sql(namespace)})""",
        (tenant_id, selection_hash),
    ).fetchone()
    conn.commit()
    assert row is not None, "nobody holds the run lock"
    pid = int(row[0])
    conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    conn.commit()

    def gone() -> bool:
        alive = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
        conn.commit()
        return alive == (0,)

    wait_for(gone, "the lock session to end", timeout=timeout)
    return pid


# --- child processes -----------------------------------------------------------------------------------
def spawn_sync(
    db_url: str,
    env: Mapping[str, str],
    tenant: str,
    selection: str,
    *,
    ready: Path | None = None,
    gate: Path | None = None,
    dagster_interrupts: bool = False,
) -> subprocess.Popen[str]:
    """Start `python -m tests.fault_helpers` (one production sync) as a real process; with
    `dagster_interrupts` SIGTERM reaches the run as Dagster's run worker delivers a cancel."""
    args = [sys.executable, "-m", "tests.fault_helpers", db_url, tenant, selection]
    if ready is not None and gate is not None:
        args += ["--ready", str(ready), "--gate", str(gate)]
    if dagster_interrupts:
        args.append("--dagster-interrupts")
    child_env = {**os.environ, **env, "TENANTATLAS_DATABASE_URL": db_url, "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen(
        args, cwd=PROJECT_ROOT, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def child_result(proc: subprocess.Popen[str], timeout: float = 60.0) -> dict[str, Any]:
    """The JSON line a sync child printed (waits for it to exit)."""
    out, err = proc.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, f"child printed no result (exit {proc.returncode}): {err[-2000:]}"
    return json.loads(lines[-1])


def _child_main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("db_url")
    parser.add_argument("tenant")
    parser.add_argument("selection")
    parser.add_argument("--ready")
    parser.add_argument("--gate")
    parser.add_argument("--dagster-interrupts", action="store_true")
    args = parser.parse_args(argv)

    from tenantatlas_pipelines.db import Database
    from tenantatlas_pipelines.errors import TenantAtlasError
    from tenantatlas_pipelines.graph.client import GraphClient
    from tenantatlas_pipelines.sync import run_sync

    db = Database(args.db_url)
    with GraphClient(GraphSettings.from_env()) as graph:
        if args.ready and args.gate:
            Path(args.ready).write_text(str(os.getpid()))
            gate = Path(args.gate)
            while not gate.exists():
                time.sleep(0.005)
        try:
            if args.dagster_interrupts:
                # What Dagster's run worker does: SIGTERM becomes a BaseException in the main thread.
                from dagster._core.errors import DagsterExecutionInterruptedError
                from dagster._utils.interrupts import raise_interrupts_as, setup_interrupt_handlers

                setup_interrupt_handlers()
                with raise_interrupts_as(DagsterExecutionInterruptedError):
                    result = run_sync(db, graph, args.tenant, args.selection)
            else:
                result = run_sync(db, graph, args.tenant, args.selection)
        except TenantAtlasError as exc:
            print(json.dumps({"error_code": str(exc.code), "message": exc.message}), flush=True)
            return 3
    print(json.dumps(result.as_dict(), default=str), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(_child_main(sys.argv[1:]))
