"""Dependency graph: "what uses group X" at fleet scale, and group resolution requests (issue 15's targets).

    python bench/deps.py [--large 1000000] [--small 10000] [--per-group 50] [--groups 5000]
                         [--queries 300]

- what_uses_group_large_vs_small: the median time of "what uses group X" (the CLI's path: the name
  looked up among the tenant's targets, then the group's edges through `dependency_edges_current`) on
  a store of `--large` edges ÷ the same on a store of `--small` edges (each in its own database, one
  tenant with a second, newer selection's snapshot so the "newest snapshot that saw the object"
  anti-join runs for every edge, ANALYZEd). Every group is used by `--per-group` edges in both stores
  (a bigger store has more groups, not busier ones), so both answer the same amount: the ratio shows
  index lookups (≈ 1), where a scan would grow with the store (≈ 100);
- group_resolution_calls: `directoryObjects/getByIds` requests the snapshot's reference resolver sends
  to resolve `--groups` distinct group ids against the emulator (over TLS, the production GraphClient),
  counted in the emulator's request log, minus the client's retries; goal ≤ ⌈groups / 1,000⌉ = 5.

Uses a temporary TENANTATLAS_HOME (embedded PostgreSQL stopped at the end) unless
TENANTATLAS_DATABASE_URL points at a server.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TENANT_ID = "dddddddd-0000-4000-8000-000000000001"
SELECTION = "bench-deps"
CHUNK = 50_000


def target(name: str, value: float, op: str, limit: float, fmt: str = ".3f") -> None:
    met = {"<=": value <= limit, "==": value == limit}[op]
    print(f"target {name}: {value:{fmt}} (goal {op} {limit:g}) {'met' if met else 'missed'}")


def group_id(i: int) -> str:
    return f"{i:08x}-0000-4000-8000-000000000000"


def build_store(name: str, edges: int, per_group: int):  # -> (Database, number of groups)
    """A database with one tenant whose published graph has `edges` edges, `per_group` per group."""
    from bench._common import bench_database
    from tenantatlas_pipelines.dependencies.derive import derive_partition
    from tenantatlas_pipelines.dependencies.edges import Edge, Relation, SnapshotEdges, TargetType
    from tenantatlas_pipelines.snapshots.references import GroupType, Reference, RefKind
    from tenantatlas_pipelines.snapshots.synthetic import SyntheticObject, group_assignment, insert_snapshot
    from tenantatlas_pipelines.store.dependency_edges import insert_edges, replace_partition
    from tenantatlas_pipelines.store.scope import release, tenant_scope
    from tenantatlas_pipelines.store.selections import add_selection
    from tenantatlas_pipelines.store.tenants import add_tenant

    db = bench_database(name)
    groups = max(1, edges // per_group)
    with db.connect() as conn:
        add_tenant(conn, TENANT_ID, "bench-deps", "bench deps")
        selection = add_selection(conn, SELECTION, ["deviceConfiguration"])
        scope = tenant_scope(conn, TENANT_ID)
        sid = insert_snapshot(scope, selection, [])
        replace_partition(scope, selection_hash=selection.selection_hash, selection_name=SELECTION,
                          snapshot_id=sid, snapshot_status="succeeded", derived=SnapshotEdges((), 0, 0))
        for start in range(0, edges, CHUNK):
            chunk = [
                # Object n uses groups n % groups, (n + 1) % groups, ... : each group gets per_group edges.
                Edge("deviceConfiguration", f"obj-{n // 5:07d}", f"Policy {n // 5}",
                     Relation.EXCLUDE if n % 7 == 0 else Relation.INCLUDE, TargetType.GROUP,
                     group_id(n % groups), f"Group {n % groups:06d}", "security")
                for n in range(start, min(edges, start + CHUNK))
            ]
            insert_edges(scope, selection.selection_hash, sid, chunk)
        scope.conn.commit()
        # A newer snapshot of a second selection, as a tenant with several selections has: every answer
        # then goes through the "newest snapshot that saw the object" anti-join, not around it.
        release(conn)
        newer = add_selection(conn, f"{SELECTION}-newer", ["deviceConfiguration", "deviceCompliancePolicy"])
        scope = tenant_scope(conn, TENANT_ID)
        insert_snapshot(scope, newer, [
            SyntheticObject("deviceConfiguration", f"newer-{i}", {"displayName": f"Newer {i}"},
                            [group_assignment(group_id(groups + 1))]) for i in range(100)],
            references=[Reference(RefKind.GROUP, group_id(groups + 1), "Newer", GroupType.SECURITY)])
    derive_partition(db, "bench-deps", f"{SELECTION}-newer")
    with db.connect(autocommit=True) as conn:
        conn.execute("ANALYZE")
    return db, groups


def time_queries(db, groups: int, queries: int) -> tuple[float, int]:
    """Median seconds of "what uses group X" by name over `queries` groups, and the edges it found."""
    from tenantatlas_pipelines.dependencies.lookup import pick_target
    from tenantatlas_pipelines.store import dependency_edges as store
    from tenantatlas_pipelines.store.scope import tenant_scope

    picks = [(i * 7919) % groups for i in range(queries)]
    found = 0
    times: list[float] = []
    with db.connect() as conn:
        scope = tenant_scope(conn, TENANT_ID)
        for rnd in range(2):  # the first round warms caches and plans
            for g in picks:
                started = time.perf_counter()
                name = f"Group {g:06d}"
                chosen = pick_target("group", name, store.target_candidates(scope, "group", name))
                assert chosen is not None
                edges = store.edges_using(scope, "group", chosen)
                elapsed = time.perf_counter() - started
                if rnd:
                    times.append(elapsed)
                    found += len(edges)
            conn.rollback()
    return statistics.median(times), found // len(picks)


def group_resolution(n_groups: int) -> tuple[int, int, int]:
    """(getByIds requests, client retries, ids resolved) for `n_groups` distinct groups."""
    from tenantatlas_pipelines.emulator import Emulator, TenantSpec
    from tenantatlas_pipelines.graph.client import GraphClient, RequestStats
    from tenantatlas_pipelines.graph.settings import GraphSettings
    from tenantatlas_pipelines.policy_types import REGISTRY
    from tenantatlas_pipelines.snapshots.references import RefKind
    from tenantatlas_pipelines.snapshots.resolve import ReferenceResolver

    spec = TenantSpec(tenant_id="dddddddd-0000-4000-8000-000000000002", key="bench-groups",
                      name="bench groups", sizes=dict.fromkeys(REGISTRY, 0), groups=n_groups,
                      rate_limit=(1000, 20.0))
    with Emulator(tenants=[spec]) as emu:
        ids = [g["id"] for g in emu.groups(spec.tenant_id)]
        assert len(set(ids)) == n_groups, len(ids)
        for var, value in emu.client_env().items():
            os.environ[var] = value
        stats = RequestStats()
        with GraphClient(GraphSettings.from_env()) as graph:
            emu.clear_log()
            refs = ReferenceResolver(graph, spec.tenant_id).resolve(
                [(RefKind.GROUP, i) for i in ids], stats)
        calls = sum("getByIds" in r.path for r in emu.request_log)
    return calls, stats.retries, sum(r.resolved for r in refs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--per-group", type=int, default=50)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--groups", type=int, default=5000)
    args = parser.parse_args()

    home = None
    if not os.environ.get("TENANTATLAS_DATABASE_URL") and not os.environ.get("TENANTATLAS_HOME"):
        home = tempfile.mkdtemp(prefix="ta-bench-deps-")
        os.environ["TENANTATLAS_HOME"] = home
    try:
        run(args)
    finally:
        if home:
            from tenantatlas_pipelines.db.embedded import stop_server

            stop_server(Path(home))


def run(args: argparse.Namespace) -> None:
    medians: dict[int, float] = {}
    for n in (args.small, args.large):
        started = time.monotonic()
        db, groups = build_store(f"tenantatlas_bench_deps_{n}", n, args.per_group)
        built = time.monotonic() - started
        medians[n], per_query = time_queries(db, groups, args.queries)
        print(f"{n:>9,} edges ({groups:,} groups, built in {built:.0f}s): what uses group X "
              f"median {medians[n] * 1000:.2f} ms, {per_query} edges per answer")
        db.close_idle()
    target("what_uses_group_large_vs_small", medians[args.large] / medians[args.small], "<=", 1.5)

    calls, retries, resolved = group_resolution(args.groups)
    print(f"group resolution: {args.groups:,} distinct groups, {resolved:,} resolved, "
          f"{calls} getByIds requests ({retries} retries)")
    if resolved != args.groups:
        raise SystemExit(f"only {resolved} of {args.groups} groups resolved")
    target("group_resolution_calls", calls - retries, "<=", math.ceil(args.groups / 1000), "d")


if __name__ == "__main__":
    main()
