"""Fleet alignment to a golden tenant (issue 14): a resource, an asset partitioned by tenant, its job and
the sensor that runs it after snapshots. Thin: the work is compare/run.py's `align_tenant`.

Configuration: the `fleet_golden` resource (`golden_tenant`, `selection`), fed from
TENANTATLAS_GOLDEN_TENANT / TENANTATLAS_GOLDEN_SELECTION (default `all`). The sensor requests a
tenant's partition when a snapshot of it (of the golden selection) succeeded, and every tenant's when
the golden tenant's snapshot did (the standard moved, so every score may have).
"""

import os
import warnings

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetSelection,
    BetaWarning,
    ConfigurableResource,
    DagsterRunStatus,
    DefaultSensorStatus,
    Failure,
    MaterializeResult,
    MetadataValue,
    MultiToSingleDimensionPartitionMapping,
    RunRequest,
    RunStatusSensorContext,
    SkipReason,
    asset,
    define_asset_job,
    run_status_sensor,
)
from pydantic import Field

from ..compare.alignment import alignment_metadata
from ..compare.run import (
    GOLDEN_SELECTION_ENV,
    GOLDEN_TENANT_ENV,
    GoldenConfig,
    align_tenant,
    load_golden,
    require_golden,
)
from ..errors import TenantAtlasError
from .assets import _metadata
from .partitions import SELECTION_DIMENSION, TENANT_DIMENSION, TENANT_PARTITIONS_NAME, tenant_partitions
from .resources import InventoryDatabase
from .snapshots import policy_snapshots, snapshot_job

GROUP = "compare"
FLEET_JOB_NAME = "fleet_alignment_job"


class FleetGolden(ConfigurableResource):
    """Which tenant is the fleet's standard, for which named selection (unset fields: the env at run time)."""

    golden_tenant: str | None = Field(default=None, description=f"tenant key ({GOLDEN_TENANT_ENV})")
    selection: str | None = Field(default=None, description=f"named selection ({GOLDEN_SELECTION_ENV})")

    def config(self) -> GoldenConfig | None:
        env = GoldenConfig.from_env(dict(os.environ))
        tenant = self.golden_tenant or (env.tenant if env else None)
        if not tenant:
            return None
        default = env.selection if env else GoldenConfig(tenant).selection
        return GoldenConfig(tenant, self.selection or default)


with warnings.catch_warnings():  # the mapping is "beta" in Dagster 1.13; it is what says "this tenant's"
    warnings.simplefilter("ignore", BetaWarning)
    _TENANT_OF_SNAPSHOTS = MultiToSingleDimensionPartitionMapping(partition_dimension_name=TENANT_DIMENSION)


@asset(
    partitions_def=tenant_partitions,
    group_name=GROUP,
    kinds={"python", "postgres"},
    deps=[AssetDep(policy_snapshots, partition_mapping=_TENANT_OF_SNAPSHOTS)],
    description="Compares one tenant's latest succeeded snapshot with the golden tenant's (same selection) "
    "and publishes its alignment score, counts per match kind and deviations to fleet_alignment.",
)
def fleet_alignment(
    context: AssetExecutionContext, inventory_db: InventoryDatabase, fleet_golden: FleetGolden
) -> MaterializeResult:
    tenant = context.partition_key
    try:
        config = require_golden(fleet_golden.config())
        with inventory_db.get_database().connect() as conn:
            golden, selection = load_golden(conn, config)
            alignment = align_tenant(conn, golden, selection, tenant, dagster_run_id=context.run_id)
    except TenantAtlasError as exc:
        raise Failure(description=f"alignment of {tenant} failed: [{exc.code}] {exc.message}",
                      metadata={"error_codes": str(exc.code)}) from None
    meta = alignment_metadata(alignment, golden_tenant=golden.tenant_key, snapshot_id=None,
                              golden_snapshot_id=golden.snapshot_id)
    table = str(meta.pop("deviations"))
    out = _metadata(meta)
    out["deviations"] = MetadataValue.md(table)
    return MaterializeResult(metadata=out)


fleet_alignment_job = define_asset_job(
    FLEET_JOB_NAME, selection=AssetSelection.assets(fleet_alignment),
    description="One tenant's alignment with the golden tenant.",
)


def alignment_requests(tenant: str | None, selection: str | None, golden: GoldenConfig | None,
                       known_tenants: list[str]) -> list[str]:
    """Which tenants' alignment a succeeded snapshot of (tenant, selection) makes stale."""
    if golden is None or not tenant or selection != golden.selection:
        return []
    if tenant == golden.tenant:
        return sorted(known_tenants)
    return [tenant]


@run_status_sensor(
    run_status=DagsterRunStatus.SUCCESS,
    monitored_jobs=[snapshot_job],
    request_job=fleet_alignment_job,
    default_status=DefaultSensorStatus.RUNNING,
    description="After a tenant's snapshot of the golden selection succeeded: re-align that tenant "
    "(every tenant after the golden tenant's).",
)
def fleet_alignment_after_snapshots(
    context: RunStatusSensorContext, fleet_golden: FleetGolden
) -> list[RunRequest] | SkipReason:
    tags = context.dagster_run.tags
    tenants = alignment_requests(
        tags.get(f"dagster/partition/{TENANT_DIMENSION}"),
        tags.get(f"dagster/partition/{SELECTION_DIMENSION}"),
        fleet_golden.config(), context.instance.get_dynamic_partitions(TENANT_PARTITIONS_NAME),
    )
    if not tenants:
        return SkipReason("not a snapshot of the golden selection, or no golden tenant configured")
    return [RunRequest(run_key=f"{context.dagster_run.run_id}:{t}", partition_key=t) for t in tenants]
