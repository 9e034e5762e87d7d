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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import target  # noqa: E402

TENANT_ID = "dddddddd-0000-4000-8000-000000000001"
SELECTION = "bench-deps"
CHUNK = 50_000


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


def what_uses(scope, groups: int, i: int) -> tuple[float, int]:  # scope: TenantScope
    """Seconds of one "what uses group X" by name (the CLI's path), and the edges it found."""
    from tenantatlas_pipelines.dependencies.lookup import pick_target
    from tenantatlas_pipelines.store import dependency_edges as store

    name = f"Group {(i * 7919) % groups:06d}"
    started = time.perf_counter()
    chosen = pick_target("group", name, store.target_candidates(scope, "group", name))
    assert chosen is not None
    edges = store.edges_using(scope, "group", chosen)
    return time.perf_counter() - started, len(edges)


def time_queries(stores: dict[int, tuple], queries: int) -> dict[int, tuple[float, int]]:
    """Median seconds and edges per answer of "what uses group X" per store. The stores alternate query
    by query, so the machine's load drifting (it is shared) hits both sides alike."""
    from tenantatlas_pipelines.store.scope import tenant_scope

    conns = {n: db.connect() for n, (db, _) in stores.items()}
    try:
        scopes = {n: tenant_scope(c, TENANT_ID) for n, c in conns.items()}
        times: dict[int, list[float]] = {n: [] for n in stores}
        found: dict[int, int] = dict.fromkeys(stores, 0)
        for rnd in range(2):  # the first round warms caches and plans
            for i in range(queries):
                for n, (_, groups) in stores.items():
                    elapsed, edges = what_uses(scopes[n], groups, i)
                    if rnd:
                        times[n].append(elapsed)
                        found[n] += edges
                    conns[n].rollback()
    finally:
        for c in conns.values():
            c.close()
    return {n: (statistics.median(times[n]), found[n] // queries) for n in stores}


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

    from bench._common import temporary_home

    with temporary_home("ta-bench-deps-"):
        run(args)


def run(args: argparse.Namespace) -> None:
    stores: dict[int, tuple] = {}
    for n in (args.small, args.large):
        started = time.monotonic()
        stores[n] = build_store(f"tenantatlas_bench_deps_{n}", n, args.per_group)
        print(f"{n:>9,} edges ({stores[n][1]:,} groups) built in {time.monotonic() - started:.0f}s")
    timed = time_queries(stores, args.queries)
    for n, (median, per_answer) in timed.items():
        print(f"{n:>9,} edges: what uses group X (by name) median {median * 1000:.2f} ms over "
              f"{args.queries} groups, {per_answer} edges per answer")
    for db, _ in stores.values():
        db.close_idle()
    target("what_uses_group_large_vs_small", timed[args.large][0] / timed[args.small][0], "<=", 1.5)

    calls, retries, resolved = group_resolution(args.groups)
    print(f"group resolution: {args.groups:,} distinct groups, {resolved:,} resolved, "
          f"{calls} getByIds requests ({retries} retries)")
    if resolved != args.groups:
        raise SystemExit(f"only {resolved} of {args.groups} groups resolved")
    target("group_resolution_calls", calls - retries, "<=", math.ceil(args.groups / 1000), "d")


if __name__ == "__main__":
    main()
