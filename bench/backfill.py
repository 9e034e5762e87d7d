"""A backfill launched the way a data engineer launches it from the UI: time to first run and total time.

    python bench/backfill.py [--fleet demo|synthetic] [--tenants 5] [--latency-ms 0] [--rate-limit 10/1]
                             [--size-factor 0.5]

Issue 17's second figure. `--tenants` emulated tenants x every named selection (5 x 5 = 25 partitions)
are registered: by default the first five demo tenants `tenantatlas dev` serves (contoso, fabrikam,
northwind, tailspin without an Intune licence, litware; emulator latency 0, as in `tenantatlas dev`),
which is the backfill issue 17 measured; `--fleet synthetic` uses bench/fleet.py's tenants instead
(`--size-factor` x the default sizes, `--rate-limit` per tenant, `--latency-ms` per request).
`dagster-webserver` and our daemon (`python -m tenantatlas_pipelines.launcher.daemon`,
the one `tenantatlas dev` starts) run against a temporary DAGSTER_HOME holding the project's dagster.yaml
(run queue limits, WarmRunLauncher), storage in PostgreSQL. The registry sensor adds the tenants'
partitions (without requesting runs: TENANTATLAS_SYNC_NEW_TENANTS=0); then the benchmark sends the
webserver the GraphQL mutation the UI sends for **Jobs -> inventory_sync_job -> Partitions -> Launch
backfill** with every partition selected (`launchPartitionBackfill`), and watches the runs.

Figures, each computed from the run:
- time_to_first_run: mutation sent -> the backfill's first run has started (target < 5 s; the time until
  it exists is printed too);
- backfill_vs_sync_bound: mutation sent -> last run finished, divided by (sum of the syncs' own
  durations from the ledger) / (usable concurrency = min(global limit, tenants x runs per tenant)):
  what the runs would take if the queue kept every usable slot busy with nothing but syncs (target <= 2);
- the limits, checked from Dagster's run records and the ledger: never more than the global limit
  running, never two runs of one tenant at once.

Information (not targets), to read the ratio against what this machine can do at all:
- engine alone: the same partitions synced by `run_sync` directly (a separate database, the same
  usable concurrency, each tenant's selections one after another) -- the wall time with no orchestrator;
- CPU: machine CPU busy during the backfill and per run, the engine's CPU per sync, and the CPU floor
  (busy CPU-s / cores): on a CPU-bound machine no schedule of these runs can finish sooner; and the CPU a
  run could cost (sync included) for the backfill to fit 2 x the bound here: 2 x bound x cores / runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import bench_database, isolate, target  # noqa: E402
from bench.fleet import (  # noqa: E402
    _rate,
    _stop_group,
    cpu_by_role,
    dagster_env,
    emulator_process,
    fleet_specs,
    machine_cpu_s,
    max_overlap,
    postmaster_pid,
    print_timeline,
    proc_cpu_s,
    register,
    run_queue_limits,
    run_timeline,
)

TIME_TO_FIRST_RUN_S = 5.0
BOUND_RATIO = 2.0
JOB = "inventory_sync_job"
LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}
"""
PARTITION_SETS = """
query Sets($repo: RepositorySelector!, $job: String!) {
  partitionSetsOrError(repositorySelector: $repo, pipelineName: $job) {
    __typename
    ... on PartitionSets { results { name } }
  }
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def graphql(url: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(f"{url}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        data = json.loads(response.read())
    if data.get("errors"):
        raise SystemExit(f"GraphQL error: {data['errors']}")
    return data["data"]


def wait(predicate: Any, what: str, timeout: float, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(every)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fleet", choices=("demo", "synthetic"), default="demo")
    parser.add_argument("--tenants", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=_rate, default=(10, 1.0))
    parser.add_argument("--size-factor", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    isolate()
    print(f"bench/backfill.py  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  cpus={os.cpu_count()}")

    from dagster import DagsterInstance, RunsFilter

    from tenantatlas_pipelines.db import ensure_database, with_database
    from tenantatlas_pipelines.defs.instance import PROJECT_INSTANCE_YAML
    from tenantatlas_pipelines.launcher.storage_tuning import tune_storage
    from tenantatlas_pipelines.store.selections import list_selections

    global_limit, per_tenant = run_queue_limits()
    db = bench_database("tenantatlas_bench_backfill")
    storage_db = "tenantatlas_bench_backfill_dagster"
    ensure_database(with_database(db.url, "postgres"), storage_db)
    specs = (
        demo_specs(args.tenants)
        if args.fleet == "demo"
        else fleet_specs(args.tenants, args.size_factor, args.rate_limit, "fill")
    )
    register(db, specs)
    with db.connect() as conn:
        selections = [s.name for s in list_selections(conn)]
    keys = [f"{sel}|{s.key}" for s in specs for sel in selections]
    home = Path(tempfile.mkdtemp(prefix="ta-backfill-dagster-"))
    shutil.copy(PROJECT_INSTANCE_YAML, home / "dagster.yaml")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with emulator_process(args.latency_ms) as emu:
        for s in specs:
            emu.client.add_tenant(s)
        engine = engine_alone(emu, specs, selections, usable=min(global_limit, len(specs) * per_tenant))
        # Partitions only (no runs for new tenants): the backfill is what runs them.
        env = dagster_env(emu, home, db, storage_db, TENANTATLAS_SYNC_NEW_TENANTS="0")
        os.environ.update({k: env[k] for k in ("DAGSTER_HOME", "TENANTATLAS_DAGSTER_STORAGE_URL")})
        workspace = str(ROOT / "workspace.yaml")
        logs = {name: open(home / f"{name}.log", "w") for name in ("daemon", "webserver")}  # noqa: SIM115
        procs = {
            "daemon": [sys.executable, "-m", "tenantatlas_pipelines.launcher.daemon", "run", "-w", workspace],
            "webserver": [sys.executable, "-m", "dagster_webserver", "-w", workspace, "-p", str(port)],
        }
        started = {
            name: subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=logs[name], stderr=subprocess.STDOUT, start_new_session=True
            )
            for name, cmd in procs.items()
        }
        try:
            with DagsterInstance.get() as instance:
                # The benchmark's own polling must not open a PostgreSQL session per query (Dagster's
                # default outside the webserver): that cost is the watcher's, not the backfill's.
                tune_storage(instance, pool_size=2, max_overflow=2)
                wait(lambda: len(instance.get_dynamic_partitions("tenant")) == len(specs), "partitions", 180)
                wait(lambda: _up(url), "the webserver", 180, every=0.5)
                repo = {"repositoryLocationName": "tenantatlas", "repositoryName": "__repository__"}
                sets = graphql(url, PARTITION_SETS, {"repo": repo, "job": JOB})["partitionSetsOrError"]
                set_name = sets["results"][0]["name"]
                params = {
                    "selector": {"partitionSetName": set_name, "repositorySelector": repo},
                    "partitionNames": keys,
                }
                t_sent = time.time()
                cpu_sent = machine_cpu_s()
                roles_sent = cpu_by_role(started["daemon"].pid, postmaster_pid(db), emu.pid)
                roles_sent["webserver"] = proc_cpu_s(started["webserver"].pid, True)
                launched = graphql(url, LAUNCH, {"params": params})["launchPartitionBackfill"]
                if launched["__typename"] != "LaunchBackfillSuccess":
                    raise SystemExit(f"backfill not launched: {launched}")
                backfill = RunsFilter(tags={"dagster/backfill": launched["backfillId"]})
                t_first = None
                deadline = time.monotonic() + args.timeout
                while time.monotonic() < deadline:
                    records = instance.get_run_records(backfill)
                    if records and t_first is None:
                        t_first = min(r.create_timestamp.timestamp() for r in records)
                    if len(records) == len(keys) and all(r.dagster_run.is_finished for r in records):
                        cpu_busy = machine_cpu_s() - cpu_sent
                        roles = cpu_by_role(started["daemon"].pid, postmaster_pid(db), emu.pid)
                        roles["webserver"] = proc_cpu_s(started["webserver"].pid, True)
                        roles.subtract(roles_sent)
                        break
                    time.sleep(0.2)
                records = instance.get_run_records(backfill)
                timeline = run_timeline(instance, records)
        finally:
            for proc in started.values():
                _stop_group(proc)
            for f in logs.values():
                f.close()

    finished = [r for r in records if r.dagster_run.is_finished]
    if len(finished) < len(keys) or t_first is None:
        print(f"NOT COMPLETED: {len(finished)}/{len(keys)} runs finished; logs in {home}")
        return 1
    t_end = max(r.end_time for r in finished)
    with db.connect() as conn:
        ledger = conn.execute(
            """SELECT r.dagster_run_id, t.key, r.status, extract(epoch FROM r.started_at),
                      extract(epoch FROM r.finished_at)
               FROM inventory_sync_runs r JOIN tenants t USING (tenant_id)"""
        ).fetchall()
    syncs = [float(e) - float(s) for _, _, _, s, e in ledger]
    usable = min(global_limit, len(specs) * per_tenant)
    bound = sum(syncs) / usable
    total = t_end - t_sent
    by_tenant: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in finished:
        by_tenant[r.dagster_run.tags["dagster/partition/tenant"]].append((r.start_time, r.end_time))
    ledger_by_tenant: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for _, key, _, s, e in ledger:
        ledger_by_tenant[key].append((float(s), float(e)))
    peak = max_overlap([(r.start_time, r.end_time) for r in finished])
    tenant_peak = max(max_overlap(v) for v in by_tenant.values())
    ledger_tenant_peak = max(max_overlap(v) for v in ledger_by_tenant.values())
    statuses = defaultdict(int)
    for r in finished:
        statuses[r.dagster_run.status.value] += 1
    print(
        f"    backfill       : {len(keys)} partitions ({len(specs)} tenants x {len(selections)} selections) "
        f"of {JOB}, launched through the webserver's GraphQL; runs {dict(statuses)}"
    )
    # The stricter reading of "time to first run": until a run has *started* (its process is running it).
    t_started = min(r.start_time for r in finished if r.start_time)
    print(
        f"    first run      : created {t_first - t_sent:.2f} s, started {t_started - t_sent:.2f} s "
        "after the mutation"
    )
    target("time_to_first_run", t_started - t_sent, "<", TIME_TO_FIRST_RUN_S, ".2f", " s")
    print(
        f"    total          : {total:.1f} s (mutation -> last run finished), "
        f"{len(finished) / total * 60:.1f} runs/min"
    )
    print(
        f"    sync times     : sum {sum(syncs):.1f} s, median {statistics.median(syncs):.2f} s (ledger); "
        f"usable concurrency {usable} = min(global {global_limit}, {len(specs)} tenants x {per_tenant})"
    )
    print(f"    bound          : {bound:.1f} s = sum / usable")
    target("backfill_vs_sync_bound", total / bound, "<=", BOUND_RATIO, ".2f")
    print(
        f"    concurrency    : peak {peak} runs at once (limit {global_limit}); per tenant {tenant_peak} "
        f"(ledger {ledger_tenant_peak}, limit {per_tenant})"
    )
    gaps = [
        later[0] - earlier[1]
        for runs in by_tenant.values()
        for earlier, later in zip(sorted(runs), sorted(runs)[1:], strict=False)
    ]
    if gaps:
        print(
            f"    queue gap      : a tenant's next run started {statistics.median(gaps):.2f} s (median, max "
            f"{max(gaps):.2f} s) after its previous run ended"
        )
    cores = os.cpu_count() or 1
    print(
        f"    engine alone   : the same {len(keys)} syncs, {usable} at a time, no orchestrator: "
        f"{engine.wall:.1f} s = {engine.wall / bound:.2f} x the bound; "
        f"{engine.cpu / len(keys):.2f} CPU-s a sync (machine); outcomes {dict(engine.outcomes)}"
    )
    print(
        f"    machine CPU    : {cpu_busy:.1f} CPU-s busy during the backfill, "
        f"{cpu_busy / len(finished):.2f} a run; CPU floor {cpu_busy / cores:.1f} s on {cores} cores; "
        "to fit 2 x bound a run may cost "
        f"{BOUND_RATIO * bound * cores / len(keys):.2f} CPU-s, sync included"
    )
    print(
        "    CPU by role    : "
        + ", ".join(f"{k} {v / len(finished):.2f}" for k, v in roles.most_common())
        + " CPU-s a run"
    )
    print_timeline(timeline, finished)
    shutil.rmtree(home, ignore_errors=True)
    ok = t_started - t_sent < TIME_TO_FIRST_RUN_S and total / bound <= BOUND_RATIO
    ok = ok and peak <= global_limit and tenant_peak <= per_tenant and ledger_tenant_peak <= per_tenant
    return 0 if ok else 1


class EngineAlone(NamedTuple):
    wall: float
    cpu: float  # machine CPU busy meanwhile (client, emulator, PostgreSQL)
    outcomes: Counter[str]


def engine_alone(emu: Any, specs: list[Any], selections: list[str], usable: int) -> EngineAlone:
    """The backfill's syncs without Dagster, in their own database: the same tenants and selections,
    `usable` tenants at a time, one tenant's selections after each other (its one-run-at-a-time limit)."""
    from tenantatlas_pipelines.graph.client import GraphClient
    from tenantatlas_pipelines.graph.settings import GraphSettings
    from tenantatlas_pipelines.sync import run_sync

    db = bench_database("tenantatlas_bench_backfill_engine")
    register(db, specs)
    settings = GraphSettings.from_env({**os.environ, **emu.graph_env()})
    quiet = logging.getLogger("bench.backfill.engine")  # a tenant without a licence fails, as in Dagster
    quiet.setLevel(logging.CRITICAL)
    with GraphClient(settings) as graph, ThreadPoolExecutor(max_workers=usable) as pool:
        cpu0, t0 = machine_cpu_s(), time.perf_counter()

        def tenant(spec: Any) -> list[str]:
            return [run_sync(db, graph, spec.key, sel, log=quiet).status for sel in selections]

        results = list(pool.map(tenant, specs))
        wall, cpu = time.perf_counter() - t0, machine_cpu_s() - cpu0
    db.close_idle()
    return EngineAlone(wall, cpu, Counter(status for statuses in results for status in statuses))


def demo_specs(n: int) -> list[Any]:
    from tenantatlas_pipelines.compare.demo import COMPARE_DEMO_TENANTS
    from tenantatlas_pipelines.emulator import DEMO_TENANTS

    return [*DEMO_TENANTS, *COMPARE_DEMO_TENANTS][:n]


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/server_info", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


if __name__ == "__main__":
    raise SystemExit(main())
