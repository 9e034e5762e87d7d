"""All Dagster definitions of TenantAtlas in one place (workspace.yaml, `dagster dev -m`, the CLI).

Imports stay light: pandas, the emulator and the Graph client are imported only inside the functions
that need them, so a run worker that loads this module pays for Dagster and psycopg, little more.
"""

from __future__ import annotations

from .startup import freeze_import_heap

# Before our imports: the heap Dagster built stays out of the full collections they trigger.
freeze_import_heap()

from dagster import Definitions, in_process_executor

from .defs.assets import inventory_sync, missing_items
from .defs.checks import ALL_CHECKS
from .defs.dependencies import DEPENDENCY_ASSETS, DEPENDENCY_CHECKS, DEPENDENCY_JOBS, DEPENDENCY_SENSORS
from .defs.drift import drift_job, policy_drift, policy_drift_sensor
from .defs.fleet import FleetGolden, fleet_alignment, fleet_alignment_after_snapshots, fleet_alignment_job
from .defs.jobs import sync_job
from .defs.resources import resources_from_env
from .defs.schedules import inventory_sync_schedule
from .defs.sensors import (
    gdap_discovery_sensor,
    inventory_freshness_sensor,
    missing_items_sensor,
    tenant_registry_sensor,
)
from .defs.snapshots import policy_snapshots, policy_snapshots_schedule, snapshot_job

defs = Definitions(
    assets=[
        inventory_sync, missing_items, policy_snapshots, policy_drift, fleet_alignment, *DEPENDENCY_ASSETS,
    ],
    asset_checks=[*ALL_CHECKS, *DEPENDENCY_CHECKS],
    jobs=[sync_job, snapshot_job, drift_job, *DEPENDENCY_JOBS, fleet_alignment_job],
    schedules=[inventory_sync_schedule, policy_snapshots_schedule],
    sensors=[
        tenant_registry_sensor,
        missing_items_sensor,
        gdap_discovery_sensor,
        inventory_freshness_sensor,
        policy_drift_sensor,
        *DEPENDENCY_SENSORS,
        fleet_alignment_after_snapshots,
    ],
    resources={**resources_from_env(), "fleet_golden": FleetGolden()},
    # One process per run, steps in it: a sync run is I/O bound and subprocess-per-step would double
    # the per-run overhead (see bench/dagster_overhead.py).
    executor=in_process_executor,
)
