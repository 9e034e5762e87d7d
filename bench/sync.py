"""One-tenant sync throughput and memory: 50,000 objects and 500 objects from the emulator.

    python bench/sync.py [--large 50000] [--small 500]

The emulator runs in this process with no injected latency; each sync runs in its own child process
(the production engine, MSAL, httpx, PostgreSQL) so its peak RSS is its own. Prints items/s and peak
RSS of each, and the RSS ratio. Target: peak RSS at 50,000 <= 1.3 x at 500 (memory must not grow with
the collection: pages stream into the store).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import bench_database, target  # noqa: E402
from tenantatlas_pipelines.emulator import DEFAULT_SIZES, Emulator, TenantSpec  # noqa: E402

# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child would report its parent's
# (the emulator's) high-water mark; VmHWM belongs to the child's own address space.
CHILD = """
import json, sys, time
from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.graph.client import GraphClient
from tenantatlas_pipelines.graph.settings import GraphSettings
from tenantatlas_pipelines.sync import run_sync
db = Database(sys.argv[1])
with GraphClient(GraphSettings.from_env()) as graph:
    t0 = time.perf_counter()
    result = run_sync(db, graph, sys.argv[2], "all")
    elapsed = time.perf_counter() - t0
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"status": result.status, "observed": result.observed, "requests": result.requests,
                  "seconds": elapsed, "peak_rss_mb": hwm / 1024}))
"""


def sizes_for(total: int) -> dict[str, int]:
    """DEFAULT_SIZES scaled so the tenant holds `total` objects in all (at least one per type)."""
    base = sum(DEFAULT_SIZES.values())
    sizes = {k: max(1, v * total // base) for k, v in DEFAULT_SIZES.items()}
    sizes["deviceConfiguration"] += total - sum(sizes.values())
    return sizes


def tenant(n: int, total: int) -> TenantSpec:
    return TenantSpec(
        tenant_id=f"bbbbbbbb-0000-4000-8000-{n:012d}",
        key=f"bench-{total}",
        name=f"bench {total}",
        sizes=sizes_for(total),
    )


def run_child(db_url: str, emu: Emulator, key: str) -> dict:
    env = {**os.environ, **emu.client_env()}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, db_url, key],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=50_000)
    parser.add_argument("--small", type=int, default=500)
    args = parser.parse_args()
    db = bench_database("tenantatlas_bench_sync")
    specs = [tenant(1, args.small), tenant(2, args.large)]
    from tenantatlas_pipelines.store.tenants import add_tenant

    with db.connect() as conn:
        for spec in specs:
            add_tenant(conn, spec.tenant_id, spec.key, spec.name)
    results = {}
    with tempfile.TemporaryDirectory() as tmp, Emulator(state_dir=Path(tmp), tenants=specs) as emu:
        for spec, total in zip(specs, (args.small, args.large), strict=True):
            r = run_child(db.url, emu, spec.key)
            assert r["status"] == "succeeded", r
            results[total] = r
            print(
                f"{total:>7,} objects: {r['observed']:,} stored in {r['seconds']:.2f} s "
                f"({r['observed'] / r['seconds']:,.0f} items/s), {r['requests']} requests, "
                f"peak RSS {r['peak_rss_mb']:.1f} MB"
            )
    ratio = results[args.large]["peak_rss_mb"] / results[args.small]["peak_rss_mb"]
    print(f"peak RSS ratio {args.large:,} / {args.small:,}: {ratio:.3f}")
    target("sync_peak_rss_ratio", ratio, "<=", 1.3)


if __name__ == "__main__":
    main()
