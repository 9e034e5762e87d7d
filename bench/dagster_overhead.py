"""Per-run overhead of the Dagster layer: one empty-tenant partition vs a trivial one-asset project.

Both go through `dagster asset materialize` in a fresh process against the same instance, so the
difference is what TenantAtlas adds per run: importing its definitions, resources, the engine's ledger
writes, one token and one empty page per policy type from the emulator, and the asset checks. Prints both
wall times (median of --repeat runs) and their ratio; the target is a ratio <= 1.3.

Our definitions freeze the import heap against the garbage collector (tenantatlas_pipelines/startup.py),
which a trivial project does not do, and which saves a Dagster run worker more than our own work costs.
So that the figure does not hide our work behind that saving, a third line times the trivial project
with the same freeze and prints the ratio against it too ("like for like"): that one is what our code
adds to a run, all of it.

    python bench/dagster_overhead.py [--repeat 5] [--selection all]
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
# The same project, freezing the import heap the way tenantatlas_pipelines.definitions does.
TRIVIAL_FROZEN_PROJECT = (
    "from tenantatlas_pipelines.startup import freeze_import_heap\n\nfreeze_import_heap()\n" + TRIVIAL_PROJECT
)
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
    parser.add_argument("--repeat", type=int, default=5, help="runs per side; the median is reported")
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

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench._common import isolate, target

    isolate()  # its own temporary instance: the `empty` tenant and `trivial` runs never reach the user's
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
        frozen = Path(tmp) / "trivial_frozen_defs.py"
        frozen.write_text(TRIVIAL_FROZEN_PROJECT)

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
        frozen_cmd = [*dagster, "-f", str(frozen), "--select", "trivial"]
        # One warm-up each (bytecode caches, storage schema), then alternate so drift hits every side.
        for cmd in (trivial_cmd, frozen_cmd, ours_cmd):
            _timed(cmd, env)
        ours, base, like = [], [], []
        for _ in range(args.repeat):
            base.append(_timed(trivial_cmd, env))
            like.append(_timed(frozen_cmd, env))
            ours.append(_timed(ours_cmd, env))

    t_ours, t_base, t_like = statistics.median(ours), statistics.median(base), statistics.median(like)
    ratio = t_ours / t_base

    def runs(times: list[float]) -> str:
        return ", ".join(f"{t:.2f}" for t in times)

    print(f"trivial one-asset project : {t_base:6.2f} s  (runs: {runs(base)})")
    print(f"  ... freezing its heap   : {t_like:6.2f} s  (runs: {runs(like)})")
    print(f"empty-tenant partition    : {t_ours:6.2f} s  (runs: {runs(ours)})")
    target("dagster_overhead_ratio", ratio, "<=", TARGET_RATIO, ".2f")
    print(f"ratio like for like       : {t_ours / t_like:6.2f}  (our work per run: {t_ours - t_like:.2f} s)")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
