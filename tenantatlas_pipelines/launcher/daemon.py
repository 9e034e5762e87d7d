"""`dagster-daemon run`, tuned for many short runs: what `tenantatlas dev` and the benchmarks start.

    python -m tenantatlas_pipelines.launcher.daemon run -w workspace.yaml

Four changes to Dagster's own daemon, each measured alone in bench/fleet.py (docs/orchestration.md,
"Throughput"), everything else is `dagster-daemon run` unchanged:

1. Storage tuned like the run workers' (storage_tuning.py): pooled connections instead of a new one
   per query (the daemon's threads — run queue every second, sensors, monitoring, backfills — opened
   ~80 connections per run of a sweep, each a new PostgreSQL backend: together the largest CPU cost on
   the machine), and schema questions answered once.
2. Backfill pick-up. Dagster's backfill daemon sleeps a fixed 30 s between iterations
   (`DEFAULT_DAEMON_INTERVAL_SECONDS`, not configurable), so a backfill launched from the UI waited up
   to 30 s before its first run existed. `TENANTATLAS_BACKFILL_INTERVAL_S` (default 0.5) replaces it for
   the backfill loop; the asset daemon keeps its own interval (dagster.yaml sets it explicitly). An idle
   iteration is one indexed query for requested backfills; 0.5 s instead of 2 s took a 25-partition
   backfill's first run from ~1.9 s to ~0.6 s with no measurable daemon CPU (bench/backfill.py).
3. The run zygote (WarmRunLauncher) is started with the daemon, not at the first launch: its imports take
   seconds, which the first run of a backfill would otherwise wait for.
4. Dequeue period. dagster.yaml's `dequeue_interval_seconds` is a whole number, and Dagster's interval
   loop sleeps in steps of 0.5 s, so a freed run slot waited 1.0-1.5 s for the next launch: every run of
   a sweep paid it. `TENANTATLAS_DEQUEUE_INTERVAL_S` (default 0.2) sets the period and the run queue's
   loop waits exactly the rest of it; an idle dequeue pass is a few indexed queries.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..config import env_float
from ..errors import TenantAtlasError

BACKFILL_INTERVAL_ENV = "TENANTATLAS_BACKFILL_INTERVAL_S"
DEFAULT_BACKFILL_INTERVAL_S = 0.5
DEQUEUE_INTERVAL_ENV = "TENANTATLAS_DEQUEUE_INTERVAL_S"
DEFAULT_DEQUEUE_INTERVAL_S = 0.2
# The daemon's threads: run queue workers, sensors, backfills, monitoring, the scheduler.
POOL_SIZE = 6
POOL_MAX_OVERFLOW = 20


def backfill_interval_s() -> float:
    return env_float(BACKFILL_INTERVAL_ENV, DEFAULT_BACKFILL_INTERVAL_S, 0.2)


def dequeue_interval_s() -> float:
    return env_float(DEQUEUE_INTERVAL_ENV, DEFAULT_DEQUEUE_INTERVAL_S, 0.1)


def precise_interval_loop(self: Any, workspace_process_context: Any, shutdown_event: Any) -> Iterator[Any]:
    """Dagster's IntervalDaemon.core_loop, waiting the rest of the interval instead of 0.5 s steps."""
    import time

    from dagster._daemon.daemon import SpanMarker
    from dagster._utils.error import serializable_error_info_from_exc_info

    while True:
        start = time.monotonic()
        yield SpanMarker.START_SPAN
        try:
            yield from self.run_iteration(workspace_process_context)
        except Exception:
            error_info = serializable_error_info_from_exc_info(sys.exc_info())
            self._logger.error("Caught error:\n%s", error_info)
            yield error_info
        yield SpanMarker.END_SPAN
        while (left := self.interval_seconds - (time.monotonic() - start)) > 0:
            shutdown_event.wait(min(left, 0.5))
            yield None
        yield None


def install() -> None:
    """Apply both changes to Dagster's daemon modules (before its CLI creates the instance)."""
    import dagster._daemon.cli as daemon_cli
    import dagster._daemon.controller as controller
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    from .run_launcher import WarmRunLauncher
    from .storage_tuning import tune_storage

    # Read by the backfill loop on every iteration (`from ... import DEFAULT_DAEMON_INTERVAL_SECONDS`
    # inside the function), and at start-up by the asset daemon only when dagster.yaml leaves its
    # minimum interval unset, which ours does not.
    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = backfill_interval_s()
    dequeue_interval = dequeue_interval_s()
    QueuedRunCoordinatorDaemon.core_loop = precise_interval_loop  # type: ignore[method-assign]
    original = daemon_cli.get_instance_for_cli

    @contextmanager
    def get_instance_for_cli(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with original(*args, **kwargs) as instance:
            tune_storage(instance, pool_size=POOL_SIZE, max_overflow=POOL_MAX_OVERFLOW)
            launcher = instance.run_launcher
            if isinstance(launcher, WarmRunLauncher):  # its zygote warms while the daemon starts up
                threading.Thread(target=launcher.prestart, name="zygote-prestart", daemon=True).start()
            coordinator = instance.run_coordinator
            if hasattr(coordinator, "_dequeue_interval_seconds"):  # QueuedRunCoordinator (pinned by a test)
                coordinator._dequeue_interval_seconds = dequeue_interval
            yield instance

    daemon_cli.get_instance_for_cli = get_instance_for_cli


def main(argv: list[str] | None = None) -> None:
    try:
        install()
    except TenantAtlasError as exc:  # a bad setting: say which, in one line, and do not start
        raise SystemExit(f"tenantatlas daemon: {exc.code}: {exc.message}") from None
    from dagster._daemon.cli import create_dagster_daemon_cli

    create_dagster_daemon_cli()(args=argv if argv is not None else sys.argv[1:], prog_name="dagster-daemon")


if __name__ == "__main__":
    main()
