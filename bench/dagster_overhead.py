"""Per-run overhead of the Dagster layer: one empty-tenant partition vs a trivial one-asset project.

Both go through `dagster asset materialize` in a fresh process against the same instance, so the
difference is what TenantAtlas adds per run: importing its definitions, resources, the engine's ledger
writes, one token and one empty page per policy type from the emulator, and the asset checks. Prints both
wall times (median of --repeat runs) and their ratio; the target is a ratio <= 1.3.

    python bench/dagster_overhead.py [--repeat 3] [--selection all]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRIVIAL_PROJECT = """
from dagster import Definitions, MaterializeResult, asset, in_process_executor


@asset
def trivial() -> MaterializeResult:
    return MaterializeResult(metadata={"rows": 0})


defs = Definitions(assets=[trivial], executor=in_process_executor)
"""
EMPTY_TENANT_ID = "00000000-0000-4000-8000-0000000000e0"
EMPTY_TENANT_KEY = "empty"
TARGET_RATIO = 1.3


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per side; the median is reported")
    parser.add_argument("--selection", default="all", help="named selection of the empty-tenant partition")
    args = parser.parse_args()

    from dagster import DagsterInstance

    from tenantatlas_pipelines.db import Database
    from tenantatlas_pipelines.defs.instance import (
        STORAGE_URL_ENV,
        sqlalchemy_storage_url,
        write_instance_yaml,
    )
    from tenantatlas_pipelines.emulator import Emulator, TenantSpec
    from tenantatlas_pipelines.policy_types import REGISTRY
    from tenantatlas_pipelines.store.selections import seed_default_selections
    from tenantatlas_pipelines.store.tenants import add_tenant

    db = Database.from_env()
    with db.connect() as conn:
        seed_default_selections(conn)
        add_tenant(conn, EMPTY_TENANT_ID, EMPTY_TENANT_KEY, "Empty tenant (benchmark)")
    empty = TenantSpec(EMPTY_TENANT_ID, EMPTY_TENANT_KEY, "Empty", sizes=dict.fromkeys(REGISTRY, 0))

    with tempfile.TemporaryDirectory(prefix="ta-bench-") as tmp, Emulator(tenants=[empty]) as emu:
        home = Path(tmp) / "dagster"
        env = dict(os.environ)
        env.update(
            {
                "DAGSTER_HOME": str(home),
                STORAGE_URL_ENV: sqlalchemy_storage_url(db.dagster_storage_url()),
                "TENANTATLAS_DATABASE_URL": db.url,
                **emu.client_env(),
                "PYTHONWARNINGS": "ignore",
            }
        )
        os.environ.update(env)
        write_instance_yaml(home)
        with DagsterInstance.from_config(str(home)) as instance:
            instance.add_dynamic_partitions("tenant", [EMPTY_TENANT_KEY])
        trivial = Path(tmp) / "trivial_defs.py"
        trivial.write_text(TRIVIAL_PROJECT)

        dagster = [sys.executable, "-m", "dagster", "asset", "materialize"]
        ours_cmd = [
            *dagster,
            "-m",
            "tenantatlas_pipelines.definitions",
            "--select",
            "inventory_sync",
            "--partition",
            f"{args.selection}|{EMPTY_TENANT_KEY}",
        ]
        trivial_cmd = [*dagster, "-f", str(trivial), "--select", "trivial"]
        # One warm-up each (bytecode caches, storage schema), then alternate so drift hits both sides.
        _timed(trivial_cmd, env)
        _timed(ours_cmd, env)
        ours, base = [], []
        for _ in range(args.repeat):
            base.append(_timed(trivial_cmd, env))
            ours.append(_timed(ours_cmd, env))

    t_ours, t_base = statistics.median(ours), statistics.median(base)
    ratio = t_ours / t_base
    print(f"trivial one-asset project : {t_base:6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in base)})")
    print(f"empty-tenant partition    : {t_ours:6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in ours)})")
    print(f"ratio                     : {ratio:6.2f}  (target <= {TARGET_RATIO})")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
