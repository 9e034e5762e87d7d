# ruff: noqa: F811  (pytest fixtures imported from test_dagster_assets are parameters here)
"""What a data engineer sees in the Dagster UI, read through the UI's own GraphQL against a real instance.

Partitions run in-process against the Graph emulator and real PostgreSQL (fixtures shared with
test_dagster_assets.py); the queries are the ones the UI's run, asset-check and partition views make.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster import DagsterInstance

from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.defs.partitions import PartitionRef
from tenantatlas_pipelines.emulator import Emulator, Fault
from tenantatlas_pipelines.error_docs import explain
from tests.test_dagster_assets import (  # noqa: F401  (fixtures)
    BY_KEY,
    SYNC,
    emulator,
    graph_env,
    instance,
    materialization,
    registered,
    run_partition,
)

SYNC_CHECKS = (
    "inventory_sync_complete",
    "inventory_sync_fresh",
    "inventory_identities_unique",
    "inventory_meta_within_whitelist",
)
MISSING_CHECKS = ("missing_items_unique", "missing_items_never_deleted")

RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    ... on Run { jobName status tags { key value } }
  }
  logsForRun(runId: $runId) {
    ... on EventConnection {
      events {
        __typename
        ... on ExecutionStepFailureEvent {
          stepKey
          error { className message stack }
          failureMetadata { description }
        }
      }
    }
  }
}
"""

CHECK_QUERY = """
query Checks($assetKey: AssetKeyInput!, $checkName: String!, $partition: String) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, partition: $partition, limit: 5) {
    runId status partition
    evaluation { severity description partition }
  }
}
"""


@contextmanager
def graphql(dagster_instance: DagsterInstance) -> Iterator[Any]:
    """A query function over the UI's GraphQL schema, with our definitions loaded in-process."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
    from dagster_graphql.test.utils import execute_dagster_graphql

    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name="tenantatlas_pipelines.definitions", attribute="defs"),
        location_name="tenantatlas",
    )
    target = InProcessWorkspaceLoadTarget(origin)
    with WorkspaceProcessContext(dagster_instance, target) as process_context:

        def query(text: str, **variables: Any) -> dict[str, Any]:
            result = execute_dagster_graphql(process_context.create_request_context(), text, variables)
            assert not result.errors, result.errors
            return result.data

        yield query


def check_executions(query: Any, asset: str, check: str, partition: str) -> list[dict[str, Any]]:
    data = query(CHECK_QUERY, assetKey={"path": [asset]}, checkName=check, partition=partition)
    return data["assetCheckExecutions"]


def test_failed_partition_explains_itself_and_its_checks_did_not_fail(
    registered: Database, instance: DagsterInstance
) -> None:
    # Tailspin has no Intune licence: every type of `apps` answers 400, the sync fails as a whole.
    ref = PartitionRef("tailspin", "apps")
    result = run_partition(instance, ref)
    assert not result.success
    with graphql(instance) as query:
        data = query(RUN_QUERY, runId=result.run_id)
        run = data["runOrError"]
        failures = [e for e in data["logsForRun"]["events"] if e["__typename"] == "ExecutionStepFailureEvent"]
        checks = {
            (asset, name): check_executions(query, asset, name, str(ref))
            for asset, names in (("inventory_sync", SYNC_CHECKS), ("missing_items", MISSING_CHECKS))
            for name in names
        }

    # The run is named and tagged in words (item 7/8).
    assert run["status"] == "FAILURE" and run["jobName"] == "inventory_sync_job"
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags["tenant"] == "tailspin" and tags["selection"] == "apps"

    # The failure: the code and the docs' sentence, per policy type, and no stack trace (item 6).
    [failure] = failures
    assert failure["stepKey"] == "inventory_sync"
    error = failure["error"]
    assert error["className"] == "TenantAtlasFailure" and error["stack"] == []
    assert explain("graph_tenant_not_licensed") in error["message"]
    assert "What to do:" in error["message"] and "3 of 3 types: appConfigurationPolicy" in error["message"]
    assert failure["failureMetadata"]["description"] == error["message"].rstrip("\n")

    # Every planned check has a result: none reads "execution failed" (item 4); each is per partition
    # (item 5); the sync_complete check carries the reason with ERROR severity (item 3).
    for (asset, name), executions in checks.items():
        assert [e["runId"] for e in executions] == [result.run_id], (asset, name)
        [execution] = executions
        assert execution["status"] != "EXECUTION_FAILED", (asset, name)
        assert execution["partition"] == str(ref) and execution["evaluation"]["partition"] == str(ref)
    complete = checks[("inventory_sync", "inventory_sync_complete")][0]
    assert complete["status"] == "FAILED" and complete["evaluation"]["severity"] == "ERROR"
    assert "graph_tenant_not_licensed" in complete["evaluation"]["description"]
    fresh = checks[("inventory_sync", "inventory_sync_fresh")][0]  # never synced: overdue, a warning
    assert fresh["status"] == "FAILED" and fresh["evaluation"]["severity"] == "WARN"
    assert "never synced successfully" in fresh["evaluation"]["description"]
    for key in [k for k in checks if k[1] not in ("inventory_sync_complete", "inventory_sync_fresh")]:
        assert checks[key][0]["status"] == "SUCCEEDED", key
    assert (
        "not refreshed" in checks[("missing_items", "missing_items_unique")][0]["evaluation"]["description"]
    )
    assert not result.asset_materializations_for_node("missing_items")


def test_partial_sync_shows_a_warning_not_a_clean_green(
    registered: Database, instance: DagsterInstance, graph_env: Emulator
) -> None:
    spec = BY_KEY["contoso"]
    ref = PartitionRef("contoso", "apps")
    graph_env.inject(Fault("forbidden", tenant_id=spec.tenant_id, policy_type="mobileApp"))
    try:
        partial = run_partition(instance, ref)
    finally:
        graph_env.clear_faults()
    clean = run_partition(instance, ref)
    assert partial.success and clean.success  # a partial sync still materializes (documented)
    assert materialization(partial, SYNC)["status"] == "partial"
    with graphql(instance) as query:
        executions = check_executions(query, "inventory_sync", "inventory_sync_complete", str(ref))
    by_run = {e["runId"]: e for e in executions}
    warned = by_run[partial.run_id]
    assert warned["status"] == "FAILED" and warned["evaluation"]["severity"] == "WARN"
    description = warned["evaluation"]["description"]
    assert "was partial: 1 of 3 policy types could not be read" in description
    assert explain("graph_forbidden") in description and "[1 of 3 types: mobileApp]" in description
    assert by_run[clean.run_id]["status"] == "SUCCEEDED"
