"""The instance configuration: the project's dagster.yaml loads with the run-queue limits, and runs of
one tenant's partitions block each other in the queue while other tenants' runs do not."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import get_multidimensional_partition_tag
from dagster._utils.tags import TagConcurrencyLimitsCounter

from tenantatlas_pipelines.db import ensure_database, with_database
from tenantatlas_pipelines.defs.instance import (
    PROJECT_INSTANCE_YAML,
    STORAGE_URL_ENV,
    TENANT_PARTITION_TAG,
    instance_config,
    load_project_instance_yaml,
    sqlalchemy_storage_url,
    write_instance_yaml,
)
from tenantatlas_pipelines.defs.partitions import PartitionRef, sync_partitions

EXPECTED_LIMITS = [
    {"key": "dagster/partition/tenant", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
]


@pytest.fixture(scope="module")
def storage_url(database_server_url: str) -> str:
    name = f"dagster_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    ensure_database(database_server_url, name)
    return sqlalchemy_storage_url(with_database(database_server_url, name))


def test_tenant_tag_is_dagsters_own_partition_tag() -> None:
    assert get_multidimensional_partition_tag("tenant") == TENANT_PARTITION_TAG


def test_project_dagster_yaml_loads_with_queue_limits_and_postgres(
    storage_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(PROJECT_INSTANCE_YAML, tmp_path / "dagster.yaml")
    monkeypatch.setenv(STORAGE_URL_ENV, storage_url)
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None
        assert queue.max_concurrent_runs == 8
        assert list(queue.tag_concurrency_limits) == EXPECTED_LIMITS
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"


def test_generated_instance_yaml_matches_the_project_file(tmp_path: Path) -> None:
    project = load_project_instance_yaml()
    generated = yaml.safe_load(write_instance_yaml(tmp_path).read_text())
    assert generated == project == instance_config()
    assert write_instance_yaml(tmp_path).read_text() == (tmp_path / "dagster.yaml").read_text()  # idempotent


def test_limits_are_configurable_when_generating() -> None:
    runs = instance_config(max_concurrent_runs=3, runs_per_tenant=2)["concurrency"]["runs"]
    assert runs["max_concurrent_runs"] == 3 and runs["tag_concurrency_limits"][0]["limit"] == 2


def test_storage_url_uses_the_psycopg2_dialect() -> None:
    assert sqlalchemy_storage_url("postgresql://u@h:1/dagster") == "postgresql+psycopg2://u@h:1/dagster"
    assert sqlalchemy_storage_url("postgres://u@h/d") == "postgresql+psycopg2://u@h/d"
    assert sqlalchemy_storage_url("postgresql+psycopg2://u@h/d") == "postgresql+psycopg2://u@h/d"


def _queued_run(ref: PartitionRef) -> DagsterRun:
    # The tags Dagster gives a run of this partition (the same call the run creation path uses).
    return DagsterRun(
        job_name="inventory_sync_job", tags=dict(sync_partitions.get_tags_for_partition_key(ref.key))
    )


def test_one_run_per_tenant_in_the_queue() -> None:
    limits = instance_config()["concurrency"]["runs"]["tag_concurrency_limits"]
    running = _queued_run(PartitionRef("contoso", "apps"))
    assert running.tags[TENANT_PARTITION_TAG] == "contoso"
    counter = TagConcurrencyLimitsCounter(limits, [running])
    assert counter.is_blocked(_queued_run(PartitionRef("contoso", "all")))
    assert not counter.is_blocked(_queued_run(PartitionRef("fabrikam", "apps")))
