"""The Dagster instance TenantAtlas uses: where it lives and what its dagster.yaml says.

Plain Python (no Dagster import) so the CLI can decide and write the instance configuration before it
imports Dagster. The project's own `dagster.yaml` and the one `tenantatlas dev`/`demo` write under
TENANTATLAS_HOME/dagster carry the same run-queue policy; a test keeps the two in step.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ..config import PROJECT_ROOT, env_int, home_dir

# The env var dagster.yaml reads Dagster's storage URL from (kept out of the file: it may hold a password).
STORAGE_URL_ENV = "TENANTATLAS_DAGSTER_STORAGE_URL"
MAX_CONCURRENT_RUNS_ENV = "TENANTATLAS_MAX_CONCURRENT_RUNS"
RUNS_PER_TENANT_ENV = "TENANTATLAS_RUNS_PER_TENANT"
DEFAULT_MAX_CONCURRENT_RUNS = 8
DEFAULT_RUNS_PER_TENANT = 1
PROJECT_INSTANCE_YAML = PROJECT_ROOT / "dagster.yaml"
# The tag Dagster puts on each run of a multi-partition for its `tenant` dimension (tests pin it to
# dagster's own helper); the per-tenant queue limit is keyed on it.
TENANT_PARTITION_TAG = "dagster/partition/tenant"


def dagster_home() -> Path:
    """DAGSTER_HOME when set (an operator's own instance), else TENANTATLAS_HOME/dagster."""
    explicit = os.environ.get("DAGSTER_HOME", "").strip()
    return Path(explicit).expanduser().resolve() if explicit else home_dir() / "dagster"


def sqlalchemy_storage_url(url: str) -> str:
    """The storage URL with the psycopg2 dialect dagster-postgres needs.

    SQLAlchemy 2.1 maps plain `postgresql://` to psycopg 3, whose server-side parameters break
    dagster-postgres (`NOTIFY run_events, $1` is a syntax error); psycopg2 interpolates client-side.
    """
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgres", "postgresql"):
        return f"postgresql+psycopg2://{rest}"
    return url


# Each launched run is forked from a warm zygote, not a new interpreter (tenantatlas_pipelines/launcher).
RUN_LAUNCHER: dict[str, Any] = {
    "module": "tenantatlas_pipelines.launcher.run_launcher",
    "class": "WarmRunLauncher",
}

# Dagster's default, written down: our daemon (launcher/daemon.py) shortens the backfill loop's interval
# through the constant the asset daemon would otherwise fall back to.
AUTO_MATERIALIZE: dict[str, Any] = {"minimum_interval_seconds": 30}

# No capture of steps' raw stdout/stderr: every message of ours is a Dagster log event (the run's event
# log), and the capture cost each run two `tail` processes per step and its events (docs/orchestration.md,
# "Throughput"). An operator who wants raw output back sets Dagster's LocalComputeLogManager here.
COMPUTE_LOGS: dict[str, Any] = {
    "module": "dagster._core.storage.noop_compute_log_manager",
    "class": "NoOpComputeLogManager",
}

# How the daemon works the queue (dagster.yaml says why); the limits live in `concurrency.runs`.
DEQUEUE_SETTINGS: dict[str, Any] = {
    "dequeue_use_threads": True,
    "dequeue_num_workers": 4,
    "dequeue_interval_seconds": 1,
}


def run_queue_settings(
    max_concurrent_runs: int | None = None, runs_per_tenant: int | None = None
) -> dict[str, Any]:
    """The `concurrency.runs` block: a global limit and a per-tenant limit on the partition tag."""
    global_limit = max_concurrent_runs or env_int(MAX_CONCURRENT_RUNS_ENV, DEFAULT_MAX_CONCURRENT_RUNS)
    per_tenant = runs_per_tenant or env_int(RUNS_PER_TENANT_ENV, DEFAULT_RUNS_PER_TENANT)
    return {
        "max_concurrent_runs": global_limit,
        "tag_concurrency_limits": [
            {"key": TENANT_PARTITION_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": per_tenant}
        ],
    }


def instance_config(*, postgres: bool = True, **limits: int | None) -> dict[str, Any]:
    """The instance configuration as a dict: PostgreSQL storage (URL from env), queued runs, limits."""
    config: dict[str, Any] = {
        "run_launcher": dict(RUN_LAUNCHER),
        "run_coordinator": {
            "module": "dagster._core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": dict(DEQUEUE_SETTINGS),
        },
        "concurrency": {"runs": run_queue_settings(**limits)},
        "auto_materialize": dict(AUTO_MATERIALIZE),
        "compute_logs": dict(COMPUTE_LOGS),
        "run_monitoring": {"enabled": True, "start_timeout_seconds": 180, "cancel_timeout_seconds": 180},
        "telemetry": {"enabled": False},
        "nux": {"enabled": False},
    }
    if postgres:
        config = {"storage": {"postgres": {"postgres_url": {"env": STORAGE_URL_ENV}}}, **config}
    return config


def write_instance_yaml(home: Path, *, postgres: bool = True) -> Path:
    """Write `home/dagster.yaml` (creating `home`); rewriting it is safe and keeps it current."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    text = (
        "# Written by tenantatlas (see docs/orchestration.md); rewritten on every `tenantatlas dev`/`demo`.\n"
        + yaml.safe_dump(instance_config(postgres=postgres), sort_keys=False)
    )
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return path


def load_project_instance_yaml(path: Path = PROJECT_INSTANCE_YAML) -> dict[str, Any]:
    """The project's dagster.yaml as a dict (for tests and for `dev` to check it is the one in use)."""
    return yaml.safe_load(path.read_text())
