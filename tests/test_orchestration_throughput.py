"""The orchestrated path at sweep speed (issue 17): warm run launcher, tuned daemon, tuned storage.

The slow tests run the real thing: `python -m tenantatlas_pipelines.launcher.daemon` (Dagster's daemon
with our storage tuning) against a Dagster instance in PostgreSQL configured by `instance_config()`
(QueuedRunCoordinator limits + WarmRunLauncher), the registry sensor requesting one run per
(tenant, selection), each run forked from the zygote and syncing from the emulator over TLS. They prove
the limits docs/orchestration.md promises still hold on that path, that one failing tenant fails only
its own partitions, and that a forked run can be cancelled and is seen dying.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy
import yaml
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from tenantatlas_pipelines.db import Database, ensure_database, with_database
from tenantatlas_pipelines.defs.instance import sqlalchemy_storage_url, write_instance_yaml
from tenantatlas_pipelines.emulator import Emulator, TenantSpec
from tenantatlas_pipelines.emulator.data import DEFAULT_SIZES
from tenantatlas_pipelines.emulator.faults import Fault
from tenantatlas_pipelines.errors import ErrorCode, TenantAtlasError
from tenantatlas_pipelines.launcher import daemon as tuned_daemon
from tenantatlas_pipelines.launcher import storage_tuning
from tenantatlas_pipelines.launcher.run_launcher import (
    WORKER_PID_TAG,
    WarmRunLauncher,
    ZygoteClient,
    default_socket_path,
)
from tests.fault_helpers import graph_env, register, wait_for

ROOT = Path(__file__).resolve().parents[1]
GUID = "5eed0000-0000-4000-8000-{:012d}"
JOB = "inventory_sync_job"


# --- a Dagster instance of our own, configured like production -----------------------------------------
@pytest.fixture
def dagster_home(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """DAGSTER_HOME with instance_config(max_concurrent_runs=2) and storage in a fresh database."""
    name = f"{conninfo_to_dict(db.url)['dbname']}_dagster"  # per xdist worker, like the test database
    server = with_database(db.url, "postgres")
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    ensure_database(server, name)
    home = tmp_path / "dagster"
    write_instance_yaml(home)
    config = yaml.safe_load((home / "dagster.yaml").read_text())
    config["concurrency"]["runs"]["max_concurrent_runs"] = 2  # small enough to bind with six runs
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("TENANTATLAS_DAGSTER_STORAGE_URL", sqlalchemy_storage_url(with_database(db.url, name)))
    from dagster import DagsterInstance

    with DagsterInstance.get():  # its tables, once, as `tenantatlas dev` does before starting processes
        pass
    yield home
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def tiny(i: int, key: str) -> TenantSpec:
    sizes = {k: 1 for k in DEFAULT_SIZES}
    return TenantSpec(GUID.format(i), key, f"Sweep tenant {i}", sizes=sizes)


@contextlib.contextmanager
def tuned_daemon_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tenantatlas_pipelines.launcher.daemon", "run", "-w", "workspace.yaml"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: the code server and zygote it starts stop with it
        )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def registered(db: Database, specs: list[TenantSpec], selections: list[str]) -> None:
    """Keep only `selections` as named selections (a partition per tenant and each), register `specs`."""
    with db.connect() as conn:
        conn.execute("DELETE FROM selections WHERE name <> ALL(%s)", (selections,))
        conn.commit()
        register(conn, *specs)
        conn.commit()


@contextlib.contextmanager
def running_daemon(
    db: Database, emulator: Emulator, home: Path, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], Any, Path]]:
    """Our daemon entry point as a process, and this test's handle on the same instance."""
    from dagster import DagsterInstance

    log = tmp_path / "daemon.log"
    with tuned_daemon_process(daemon_env(db, emulator, home), log) as proc, DagsterInstance.get() as instance:
        yield proc, instance, log


def daemon_env(db: Database, emulator: Emulator, home: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        **graph_env(emulator),
        "DAGSTER_HOME": str(home),
        "TENANTATLAS_DATABASE_URL": db.url,
        "PYTHONWARNINGS": "ignore",
        **extra,
    }


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = cur = 0
    for _, delta in events:
        cur += delta
        best = max(best, cur)
    return best


def finished_runs(
    instance: Any, expected: int, proc: subprocess.Popen[bytes], log: Path, timeout: float
) -> list[Any]:
    from dagster import RunsFilter

    def done() -> bool:
        assert proc.poll() is None, f"the daemon exited: {log.read_text()[-3000:]}"
        records = instance.get_run_records(RunsFilter(job_name=JOB))
        return len(records) >= expected and all(r.dagster_run.is_finished for r in records)

    wait_for(done, f"{expected} finished runs", timeout=timeout, every=1.0)
    return list(instance.get_run_records(RunsFilter(job_name=JOB)))


# --- the sweep: limits, forked runs, a failing tenant --------------------------------------------------
@pytest.mark.slow
def test_sweep_through_the_warm_launcher_holds_both_limits_and_fails_only_the_bad_tenant(
    db: Database, emulator: Emulator, dagster_home: Path, tmp_path: Path
) -> None:
    from dagster import AssetKey, DagsterRunStatus

    specs = [tiny(i, f"sweep-{i}") for i in range(3)]
    for spec in specs:
        emulator.add_tenant(spec)
    bad = specs[2]
    emulator.inject(Fault("token_down", tenant_id=bad.tenant_id))
    emulator.inject(Fault("latency", latency_ms=120))  # each sync lasts long enough to overlap
    registered(db, specs, ["all", "compliance"])  # six partitions, two per tenant
    with running_daemon(db, emulator, dagster_home, tmp_path) as (proc, instance, log):
        assert isinstance(instance.run_launcher, WarmRunLauncher)
        records = finished_runs(instance, 6, proc, log, timeout=300)
        materialized = instance.get_materialized_partitions(AssetKey("inventory_sync"))

    assert len(records) == 6
    daemon_group = {proc.pid}
    for r in records:  # every run was a process forked from the zygote, not the daemon itself
        pid = int(r.dagster_run.tags[WORKER_PID_TAG])
        assert pid not in daemon_group
    by_tenant: dict[str, list[Any]] = defaultdict(list)
    for r in records:
        by_tenant[r.dagster_run.tags["dagster/partition/tenant"]].append(r)
    assert {k: len(v) for k, v in by_tenant.items()} == {s.key: 2 for s in specs}

    # One failing tenant fails its own partitions only; the grid's materializations are the others'.
    for key, runs in by_tenant.items():
        statuses = {r.dagster_run.status for r in runs}
        assert statuses == ({DagsterRunStatus.FAILURE} if key == bad.key else {DagsterRunStatus.SUCCESS}), key
    assert set(materialized) == {f"{sel}|{s.key}" for s in specs[:2] for sel in ("all", "compliance")}

    # The limits, from Dagster's run records and from the ledger's own clock.
    intervals = [(r.start_time, r.end_time) for r in records if r.start_time and r.end_time]
    assert len(intervals) == 6
    assert max_overlap(intervals) <= 2
    for key, runs in by_tenant.items():
        assert max_overlap([(r.start_time, r.end_time) for r in runs]) == 1, key
    with db.connect() as conn:
        ledger = conn.execute(
            """SELECT t.key, extract(epoch FROM r.started_at), extract(epoch FROM r.finished_at), r.status
               FROM inventory_sync_runs r JOIN tenants t USING (tenant_id)"""
        ).fetchall()
    assert len(ledger) == 6
    assert max_overlap([(float(s), float(e)) for _, s, e, _ in ledger]) <= 2
    for key in by_tenant:
        assert max_overlap([(float(s), float(e)) for k, s, e, _ in ledger if k == key]) == 1
    assert sorted(str(st) for k, _, _, st in ledger if k == bad.key) == ["failed", "failed"]


# --- a forked run can be cancelled, and a killed one is seen dead --------------------------------------
@pytest.mark.slow
def test_a_forked_run_is_cancelled_through_the_launcher_and_a_killed_one_reads_failed(
    db: Database, emulator: Emulator, dagster_home: Path, tmp_path: Path
) -> None:
    from dagster import DagsterRunStatus, RunsFilter
    from dagster._core.launcher.base import WorkerStatus

    spec = tiny(7, "sweep-slow")
    emulator.add_tenant(spec)
    emulator.inject(Fault("latency", tenant_id=spec.tenant_id, latency_ms=1500))  # runs of ~a minute
    registered(db, [spec], ["all", "compliance"])
    with running_daemon(db, emulator, dagster_home, tmp_path) as (proc, instance, log):

        def started() -> list[Any]:
            assert proc.poll() is None, log.read_text()[-3000:]
            return [
                r.dagster_run
                for r in instance.get_run_records(RunsFilter(job_name=JOB))
                if r.dagster_run.status == DagsterRunStatus.STARTED and WORKER_PID_TAG in r.dagster_run.tags
            ]

        wait_for(lambda: bool(started()), "a started run", timeout=180, every=0.5)
        first = started()[0]
        with db.connect() as conn:  # the sync is under way (its ledger row exists) before we cancel
            wait_for(
                lambda: conn.execute("SELECT count(*) FROM inventory_sync_runs").fetchone()[0] >= 1,
                "the sync's ledger row",
                timeout=60,
            )
        assert instance.run_launcher.terminate(first.run_id)
        wait_for(
            lambda: instance.get_run_by_id(first.run_id).status == DagsterRunStatus.CANCELED,
            "the cancelled run",
            timeout=90,
            every=0.5,
        )
        with db.connect() as conn:
            row = conn.execute(
                "SELECT status, error_codes FROM inventory_sync_runs WHERE dagster_run_id = %s",
                (first.run_id,),
            ).fetchone()
        assert row[0] == "failed" and "run_cancelled" in row[1]

        # The tenant's other partition starts once the slot is free (one run per tenant).
        wait_for(lambda: any(r.run_id != first.run_id for r in started()), "the second run", timeout=120)
        second = next(r for r in started() if r.run_id != first.run_id)
        assert instance.run_launcher.check_run_worker_health(second).status == WorkerStatus.RUNNING
        os.kill(int(second.tags[WORKER_PID_TAG]), signal.SIGKILL)
        wait_for(
            lambda: instance.run_launcher.check_run_worker_health(second).status == WorkerStatus.FAILED,
            "the killed worker seen dead",
            timeout=30,
            every=0.2,
        )


@pytest.mark.slow
def test_a_run_still_launches_through_the_code_server_when_the_zygote_cannot_start(
    db: Database, emulator: Emulator, dagster_home: Path, tmp_path: Path
) -> None:
    from dagster import DagsterRunStatus, RunsFilter

    config = yaml.safe_load((dagster_home / "dagster.yaml").read_text())
    config["run_launcher"]["config"] = {"socket_path": str(tmp_path / "no-such-dir" / "zygote.sock")}
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    spec = tiny(9, "sweep-fallback")
    emulator.add_tenant(spec)
    registered(db, [spec], ["all"])
    with running_daemon(db, emulator, dagster_home, tmp_path) as (proc, instance, log):
        [record] = finished_runs(instance, 1, proc, log, timeout=240)
        messages = [
            f"{e.user_message} {e.dagster_event.message if e.dagster_event else ''}"
            for e in instance.all_logs(record.dagster_run.run_id)
        ]
    assert record.dagster_run.status == DagsterRunStatus.SUCCESS
    assert WORKER_PID_TAG not in record.dagster_run.tags  # not forked: launched by the code server
    assert any("Warm run launcher unavailable" in m for m in messages), messages
    assert instance.get_runs_count(RunsFilter(job_name=JOB)) == 1


# --- the zygote on its own -------------------------------------------------------------------------------
WARMED_ONCE = """
import os
from dagster._core.definitions import definitions_class
from dagster._core.definitions.reconstruct import ReconstructableRepository
import tenantatlas_pipelines.definitions as module
from tenantatlas_pipelines.launcher.zygote import warm_definitions

jobs = warm_definitions(module)

def built_again(*args, **kwargs):
    raise AssertionError("a forked run would build the repository again")

definitions_class._create_repository_using_definitions_args = built_again
pointer = ReconstructableRepository.for_module(module.__name__, "defs", os.getcwd())  # what a run resolves
repository = pointer.get_definition()
assert jobs == len(repository.job_names) >= 2, (jobs, repository.job_names)
print("warm", jobs)
"""


def test_the_zygote_builds_the_repository_and_its_jobs_once_before_it_forks() -> None:
    """A forked run resolves its code pointer to the module's `defs`; unless the zygote built the
    repository on that object, every run builds it again (it silently did not, once)."""
    env = {**os.environ, "TENANTATLAS_DAGSTER_READ_SELECTIONS": "0"}
    done = subprocess.run(
        [sys.executable, "-c", WARMED_ONCE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("warm ")


@pytest.mark.slow
def test_zygote_forks_runs_and_restarts_when_the_definitions_it_loaded_are_stale(
    db: Database, dagster_home: Path, tmp_path: Path
) -> None:
    from tenantatlas_pipelines.store.selections import add_selection

    client = ZygoteClient(str(tmp_path / "z.sock"), ["tenantatlas_pipelines.definitions"], 120)
    try:
        first = client.ensure_running()
        assert client.ping() == first
        assert (tmp_path / "z.sock").stat().st_mode & 0o777 == 0o600  # nobody else may ask it to run code
        worker = client.start_run("no-such-run", "{}")  # forked, then fails: no such run, bad reference
        assert worker not in (first, os.getpid())
        wait_for(lambda: not Path(f"/proc/{worker}").exists() or _zombie(worker), "the worker's exit", 30)
        assert client.ping() == first  # a failing run does not harm the zygote

        with db.connect() as conn:  # a new named selection: the loaded partitions are out of date
            add_selection(conn, "sweep-new", ["deviceCompliancePolicy"])
            conn.commit()
        client.start_run("no-such-run-2", "{}")
        second = client.ping()
        assert second is not None and second != first
    finally:
        client.stop()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


# --- storage tuning and the daemon entry point, on their own ---------------------------------------------
def test_schema_answers_are_kept_only_when_yes() -> None:
    class Storage:
        postgres_url = "postgresql://example/db"

        def __init__(self) -> None:
            self.asked: list[str] = []
            self.present = {"event_logs"}

        def has_table(self, name: str) -> bool:
            self.asked.append(name)
            return name in self.present

    storage = Storage()
    ask = storage_tuning.remember_yes(storage, "has_table", storage.has_table)
    assert ask("event_logs") and ask("event_logs")
    assert not ask("new_table") and not ask("new_table")
    storage.present.add("new_table")  # a migration while the process runs is seen
    assert ask("new_table") and ask("new_table")
    assert storage.asked == ["event_logs", "new_table", "new_table", "new_table"]


def test_run_workers_skip_table_creation_and_the_rest_of_the_reference_is_kept(dagster_home: Path) -> None:
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        ref = instance.get_ref()
    worker = storage_tuning.run_worker_ref(ref)
    for field in ("storage_data", "run_storage_data", "event_storage_data", "schedule_storage_data"):
        config = yaml.safe_load(getattr(worker, field).config_yaml)
        assert config["should_autocreate_tables"] is False
        assert config["postgres_url"] == yaml.safe_load(getattr(ref, field).config_yaml)["postgres_url"]
    assert worker.run_launcher_data == ref.run_launcher_data
    assert worker.run_coordinator_data == ref.run_coordinator_data


def test_tuned_storage_pools_connections_and_knows_the_schema(dagster_home: Path) -> None:
    from dagster import DagsterInstance
    from sqlalchemy.pool import QueuePool

    with DagsterInstance.get() as instance:
        wrapped = storage_tuning.tune_storage(instance, pool_size=2, max_overflow=3)
        assert wrapped >= len(storage_tuning.SCHEMA_QUESTIONS)  # every question exists on some storage
        for storage in storage_tuning.storages(instance):
            assert isinstance(storage._engine.pool, QueuePool)
            assert storage._engine.pool.size() == 2
        # One database, one pool: run, event log and schedule storage share the engine.
        assert len({id(s._engine) for s in storage_tuning.storages(instance)}) == 1
        assert instance.event_log_storage.has_table("event_logs")
        known = storage_tuning.learn_schema(instance)
        assert known >= 10
        event_storage = instance.event_log_storage  # a property question, answered from memory now
        assert isinstance(event_storage.has_concurrency_limits_table, bool)
        assert type(event_storage).__mro__[1].__name__ == "PostgresEventLogStorage"
        assert instance.get_runs_count() == 0  # the tuned storage still answers
    # A run worker's fresh instance (the zygote learned the answers before forking) asks the catalog
    # nothing, not even for the cached_property questions Dagster evaluates once per storage object.
    catalog_queries: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "pg_catalog" in statement or "information_schema" in statement:
            catalog_queries.append(statement)

    with DagsterInstance.get() as worker_instance:
        worker_storage = worker_instance.event_log_storage
        sqlalchemy.event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", count)
        try:
            storage_tuning.tune_storage(worker_instance, pool_size=1, max_overflow=0)
            assert worker_storage.has_default_pool_limit_col is event_storage.has_default_pool_limit_col
            assert worker_storage.has_concurrency_limits_table is True
            assert worker_storage.has_table("event_logs") is True
        finally:
            sqlalchemy.event.remove(sqlalchemy.engine.Engine, "before_cursor_execute", count)
    assert catalog_queries == []


def test_every_schema_question_is_a_method_of_dagster_postgres_storage() -> None:
    """Pinned: a Dagster upgrade that renames one of these fails here, not silently slower."""
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    classes = (PostgresRunStorage, PostgresEventLogStorage, PostgresScheduleStorage)
    for name in (*storage_tuning.SCHEMA_QUESTIONS, *storage_tuning.SCHEMA_QUESTIONS_ON_CONNECTION):
        assert any(hasattr(c, name) for c in classes), name


def test_the_dagster_internals_the_daemon_entry_point_relies_on_are_there() -> None:
    """Pinned: the constant the backfill loop reads on every iteration, the queue's interval attribute
    and the run worker's entry point. A Dagster upgrade that moves one fails here."""
    import dagster._daemon.backfill as backfill
    import dagster._daemon.cli as daemon_cli
    import dagster._daemon.controller as controller
    from dagster._cli.api import _execute_run_command_body
    from dagster._core.run_coordinator import QueuedRunCoordinator

    loop = inspect.getsource(backfill.execute_backfill_iteration_loop)
    assert (
        "import DEFAULT_DAEMON_INTERVAL_SECONDS" in loop and "DEFAULT_DAEMON_INTERVAL_SECONDS - loop" in loop
    )
    assert isinstance(controller.DEFAULT_DAEMON_INTERVAL_SECONDS, int)
    assert "get_instance_for_cli(" in inspect.getsource(daemon_cli.run_command.callback)
    assert "_dequeue_interval_seconds" in inspect.getsource(QueuedRunCoordinator.__init__)
    assert list(inspect.signature(_execute_run_command_body).parameters) == [
        "run_id",
        "instance",
        "write_stream_fn",
        "set_exit_code_on_failure",
    ]


def test_daemon_settings_refuse_nonsense_and_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tuned_daemon.BACKFILL_INTERVAL_ENV, raising=False)
    monkeypatch.delenv(tuned_daemon.DEQUEUE_INTERVAL_ENV, raising=False)
    assert tuned_daemon.backfill_interval_s() == 0.5 and tuned_daemon.dequeue_interval_s() == 0.2
    monkeypatch.setenv(tuned_daemon.DEQUEUE_INTERVAL_ENV, "0.25")
    assert tuned_daemon.dequeue_interval_s() == 0.25
    monkeypatch.setenv(tuned_daemon.BACKFILL_INTERVAL_ENV, "0.2")
    assert tuned_daemon.backfill_interval_s() == 0.2
    for bad in ("0", "0.1", "soon", "nan", "-3", "s3cr3t-pasted-here"):
        monkeypatch.setenv(tuned_daemon.BACKFILL_INTERVAL_ENV, bad)
        with pytest.raises(TenantAtlasError) as caught:
            tuned_daemon.backfill_interval_s()
        assert caught.value.code == ErrorCode.CONFIG_INVALID
        assert tuned_daemon.BACKFILL_INTERVAL_ENV in caught.value.message
        assert caught.value.message.endswith("at least 0.2")  # the value itself is never echoed
        assert "s3cr3t" not in str(caught.value)
    # The entry point refuses to start, in one line naming the variable.
    with pytest.raises(SystemExit, match=f"config_invalid: {tuned_daemon.BACKFILL_INTERVAL_ENV}"):
        tuned_daemon.main(["--help"])


def test_install_shortens_the_backfill_loop_and_tunes_the_daemon_instance(
    dagster_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagster._daemon.cli as daemon_cli
    import dagster._daemon.controller as controller
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
    from sqlalchemy.pool import QueuePool

    monkeypatch.setenv(tuned_daemon.BACKFILL_INTERVAL_ENV, "3")
    monkeypatch.setenv(tuned_daemon.DEQUEUE_INTERVAL_ENV, "0.7")
    monkeypatch.setattr(
        controller, "DEFAULT_DAEMON_INTERVAL_SECONDS", controller.DEFAULT_DAEMON_INTERVAL_SECONDS
    )
    monkeypatch.setattr(daemon_cli, "get_instance_for_cli", daemon_cli.get_instance_for_cli)
    monkeypatch.setattr(QueuedRunCoordinatorDaemon, "core_loop", QueuedRunCoordinatorDaemon.core_loop)
    tuned_daemon.install()
    assert controller.DEFAULT_DAEMON_INTERVAL_SECONDS == 3
    assert QueuedRunCoordinatorDaemon.core_loop is tuned_daemon.precise_interval_loop
    with daemon_cli.get_instance_for_cli() as instance:
        assert instance.run_coordinator.dequeue_interval_seconds == 0.7
        assert isinstance(instance.run_storage._engine.pool, QueuePool)
        # The zygote is started with the daemon, not at the first launch.
        zygote = ZygoteClient(default_socket_path(str(dagster_home)), [], 1)
        wait_for(
            lambda: zygote.ping() is not None, "the zygote started with the daemon", timeout=120, every=0.2
        )
    wait_for(
        lambda: zygote.ping() is None, "the zygote gone with the daemon's instance", timeout=30, every=0.2
    )
    wait_for(lambda: not Path(zygote.socket_path).exists(), "its socket removed", timeout=10)
    assert not Path(zygote.socket_path + ".lock").exists()  # nothing of it left in the temp directory
    assert (dagster_home / ".tenantatlas-zygote.lock").exists()  # its start-up lock lives with the instance


def test_the_run_queue_loop_waits_exactly_its_interval() -> None:
    import threading

    class Queue:
        interval_seconds = 0.15
        passes: list[float] = []

        def run_iteration(self, _context: object) -> Iterator[None]:
            self.passes.append(time.monotonic())
            yield None

    stop = threading.Event()
    loop = tuned_daemon.precise_interval_loop(Queue(), None, stop)
    while len(Queue.passes) < 6:
        next(loop)
    gaps = [b - a for a, b in zip(Queue.passes, Queue.passes[1:], strict=False)]
    assert all(0.14 <= g < 0.45 for g in gaps), gaps  # Dagster's own loop: at least 0.5 s per pass


def test_one_zygote_per_instance_in_a_short_socket_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 90) / "dagster"
    path = default_socket_path(str(deep))
    assert len(path) < 100 and path == default_socket_path(str(deep))
    assert path != default_socket_path(str(tmp_path / "other"))
