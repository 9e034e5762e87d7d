"""Drift speed: one large tenant against the bare join, and a fleet through the asset's code path.

    python bench/drift.py [--objects 5000] [--changed 0.01] [--repeat 15]
                          [--fleet-tenants 1000] [--fleet-objects 500]

1. One tenant with `--objects` device configurations in two succeeded snapshots, `--changed` of them
   different in the second (half a setting, half an assignment). Measures `compute_drift` (what the CLI
   and the asset call) and, on the same connection and role, the PostgreSQL join of the two snapshots'
   version lists alone (the objects whose version differs, no content). Medians of `--repeat`
   interleaved runs. Target: drift / join <= 2 — drift costs little more than finding what changed.
2. A fleet of `--fleet-tenants` x `--fleet-objects` stored (two snapshots each, 1 % changed); drift
   computed and published for every tenant through `publish_drift` (the `policy_drift` asset's code
   path): total seconds and the per-tenant median (and p95).

Snapshots are captured and stored through the capture and store functions of a real snapshot run
(each object captured once, stored per tenant). Runs against TENANTATLAS_DATABASE_URL's server when
set, else a throw-away embedded server under a temporary TENANTATLAS_HOME (stopped and removed at the
end); never ./.tenantatlas.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL = 2.0
SELECTION = "drift-bench"
TYPES = ["deviceConfiguration"]

JOIN_ONLY = """
WITH b AS (SELECT v.policy_type, v.external_id, o.version_id
           FROM snapshot_objects o JOIN object_versions v ON v.id = o.version_id
           WHERE o.tenant_id = %(t)s AND o.snapshot_run_id = %(b)s),
     c AS (SELECT v.policy_type, v.external_id, o.version_id
           FROM snapshot_objects o JOIN object_versions v ON v.id = o.version_id
           WHERE o.tenant_id = %(t)s AND o.snapshot_run_id = %(c)s)
SELECT coalesce(b.policy_type, c.policy_type), coalesce(b.external_id, c.external_id),
       b.version_id, c.version_id
FROM b FULL JOIN c ON b.policy_type = c.policy_type AND b.external_id = c.external_id
WHERE b.version_id IS DISTINCT FROM c.version_id"""


def _objects(n: int, changed: dict[int, int]):
    from tenantatlas_pipelines.snapshots.synthetic import SyntheticObject, group_assignment

    out = []
    for i in range(n):
        kind = changed.get(i)  # 0: a setting changed, 1: an assignment added
        body = {
            "@odata.type": "#microsoft.graph.windows10GeneralConfiguration",
            "displayName": f"Policy {i:05d}",
            "description": f"Baseline setting set {i % 17}",
            "passwordMinimumLength": 8 + i % 5,
            "passwordRequired": True,
            "defenderScanType": "full" if i % 2 else "quick",
            "defenderScheduledScanTime": "23:30:00" if kind == 0 else f"{i % 24:02d}:00:00",
            "edgeBlockPopups": bool(i % 3),
            "roleScopeTagIds": ["0", str(1 + i % 4)],
            "lastModifiedDateTime": "2026-11-30T00:00:00Z",
            "omaSettings": [
                {"omaUri": f"./Vendor/MSFT/Policy/Config/Area{k}/Setting{i % 13}", "value": k}
                for k in range(3)
            ],
        }
        groups = [f"g-{i % 40}"] + ([f"g-{(i + 7) % 40}"] if kind == 1 else [])
        out.append(
            SyntheticObject("deviceConfiguration", f"dc-{i:05d}", body, [group_assignment(g) for g in groups])
        )
    return out


def _references():
    from tenantatlas_pipelines.snapshots import GroupType, Reference, RefKind

    return [Reference(RefKind.GROUP, f"g-{k}", f"Group {k}", GroupType.SECURITY) for k in range(40)]


def _tenant(conn, key: str) -> str:
    from tenantatlas_pipelines.store.scope import release
    from tenantatlas_pipelines.store.tenants import add_tenant

    release(conn)  # registering tenants is not tenant-scoped work
    tenant_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{key}.bench.tenantatlas"))
    add_tenant(conn, tenant_id, key, key)
    return tenant_id


def _store(scope, selection, captured, refs) -> int:
    """One finalised snapshot of pre-captured objects through the store functions a snapshot run (and
    the synthetic helper) uses; capturing once and storing many times keeps a 1,000-tenant set-up short."""
    from tenantatlas_pipelines.store.snapshot_objects import record_objects
    from tenantatlas_pipelines.store.snapshot_references import record_references
    from tenantatlas_pipelines.store.snapshot_runs import LEDGER

    run_id = LEDGER.start_run(scope, selection, dagster_run_id=None, worker="bench")
    record_objects(scope, run_id, TYPES[0], captured, pages=1)
    record_references(scope, run_id, TYPES[0], refs)
    LEDGER.finish_type(
        scope,
        run_id,
        TYPES[0],
        status="succeeded",
        error_code=None,
        error_message=None,
        requests=0,
        throttled=0,
        retries=0,
    )
    LEDGER.finalize_run(scope, run_id, status="succeeded", error_codes=[], error_message=None)
    return run_id


class Fixture:
    """The captured objects of a tenant's two snapshots: `fraction` of them differ in the second
    (alternately a setting changed and an assignment added)."""

    def __init__(self, n: int, fraction: float) -> None:
        from tenantatlas_pipelines.snapshots.capture import capture_object

        step = max(1, round(1 / fraction)) if fraction > 0 else n + 1
        changed = {i: k % 2 for k, i in enumerate(range(0, n, step))}
        capture = [
            capture_object(o.policy_type, {**o.content, "id": o.external_id}, assignments=o.assignments)
            for o in _objects(n, {})
        ]
        moved = {o.external_id: o for o in _objects(n, changed)}
        self.before = capture
        self.after = [
            capture_object(
                c.policy_type,
                {**moved[c.external_id].content, "id": c.external_id},
                assignments=moved[c.external_id].assignments,
            )
            if int(c.external_id[3:]) in changed
            else c
            for c in capture
        ]
        self.changed = len(changed)
        self.refs = _references()

    def store(self, scope, selection) -> None:
        _store(scope, selection, self.before, self.refs)
        _store(scope, selection, self.after, self.refs)


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def one_tenant(db, objects: int, fraction: float, repeat: int) -> float:
    from tenantatlas_pipelines.drift import compute_drift
    from tenantatlas_pipelines.store.scope import tenant_scope
    from tenantatlas_pipelines.store.selections import get_selection
    from tenantatlas_pipelines.store.snapshot_runs import latest_snapshot

    with db.connect() as conn:
        selection = get_selection(conn, SELECTION)
        scope = tenant_scope(conn, _tenant(conn, "bench-large"))
        t0 = time.perf_counter()
        Fixture(objects, fraction).store(scope, selection)
        print(f"stored 2 snapshots x {objects:,} objects in {time.perf_counter() - t0:.1f} s", flush=True)
        current = latest_snapshot(scope, selection.selection_hash)
        assert current is not None
        previous = latest_snapshot(scope, selection.selection_hash, before_id=current.id)
        assert previous is not None
        params = {"t": scope.tenant_id, "b": previous.id, "c": current.id}
        scope.conn.execute("ANALYZE snapshot_objects")
        scope.conn.execute("ANALYZE object_versions")
        scope.conn.commit()
        drift_s: list[float] = []
        join_s: list[float] = []
        report = compute_drift(scope, selection)  # warm-up (plans, caches) for both
        joined = scope.conn.execute(JOIN_ONLY, params).fetchall()
        for _ in range(repeat):
            t = time.perf_counter()
            scope.conn.execute(JOIN_ONLY, params).fetchall()
            scope.conn.commit()
            join_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            report = compute_drift(scope, selection)
            drift_s.append(time.perf_counter() - t)
    changes = sum(len(i.changes) for i in report.items)
    print(
        f"one tenant, {objects:,} objects, {len(joined)} changed: drift {len(report.items)} items "
        f"({changes} changes) in {_median_ms(drift_s):.1f} ms median; join alone "
        f"{_median_ms(join_s):.1f} ms median ({repeat} runs each)"
    )
    assert len(report.items) == len(joined), "drift must report every changed object"
    return statistics.median(drift_s) / statistics.median(join_s)


def fleet(db, tenants: int, objects: int) -> None:
    from tenantatlas_pipelines.drift.publish import publish_drift
    from tenantatlas_pipelines.store.scope import tenant_scope
    from tenantatlas_pipelines.store.selections import get_selection

    keys = [f"fleet-{k:04d}" for k in range(tenants)]
    t0 = time.perf_counter()
    fixture = Fixture(objects, 0.01)
    with db.connect() as conn:
        selection = get_selection(conn, SELECTION)
        for n, key in enumerate(keys, 1):
            fixture.store(tenant_scope(conn, _tenant(conn, key)), selection)
            if n % 100 == 0:
                print(f"  stored {n}/{tenants} tenants ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(
        f"stored {tenants:,} tenants x {objects} objects x 2 snapshots in {time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    per: list[float] = []
    items = 0
    t0 = time.perf_counter()
    for key in keys:
        t = time.perf_counter()
        items += publish_drift(db, key, SELECTION).counts.items
        per.append(time.perf_counter() - t)
    total = time.perf_counter() - t0
    p95 = sorted(per)[max(0, int(len(per) * 0.95) - 1)] * 1000
    print(
        f"fleet drift (publish_drift per tenant, the asset's path): {tenants:,} tenants x {objects} "
        f"objects, {items:,} items, total {total:.1f} s, per tenant median {_median_ms(per):.1f} ms, "
        f"p95 {p95:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--fleet-tenants", type=int, default=1000)
    parser.add_argument("--fleet-objects", type=int, default=500)
    args = parser.parse_args()

    temp_home = None
    if not os.environ.get("TENANTATLAS_DATABASE_URL", "").strip():
        temp_home = Path(tempfile.mkdtemp(prefix="ta-bench-drift-"))
        os.environ["TENANTATLAS_HOME"] = str(temp_home)
    from bench._common import bench_database
    from tenantatlas_pipelines.store.selections import add_selection

    try:
        db = bench_database("tenantatlas_bench_drift")
        with db.connect() as conn:
            add_selection(conn, SELECTION, TYPES)
        ratio = one_tenant(db, args.objects, args.changed, args.repeat)
        if args.fleet_tenants > 0:
            fleet(db, args.fleet_tenants, args.fleet_objects)
        db.close_idle()
        from bench._common import target

        target(f"drift_vs_join_{args.objects}", ratio, "<=", GOAL, ".2f")
    finally:
        if temp_home is not None:
            from tenantatlas_pipelines.db.embedded import stop_server

            stop_server(temp_home)
            shutil.rmtree(temp_home, ignore_errors=True)


if __name__ == "__main__":
    main()
