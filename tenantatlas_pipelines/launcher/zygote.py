"""The zygote: one process that imported Dagster and the code location once, forking a child per run.

    python -m tenantatlas_pipelines.launcher.zygote --socket PATH --parent-pid PID [--warm-module M]

Why a fork server: a run's own work (a sync) takes about a second, and starting a fresh interpreter
that imports Dagster and our definitions costs as much again in CPU, which on a small machine is what
caps runs per minute. A forked child shares the warmed imports copy-on-write and starts in milliseconds,
then executes the run exactly as `dagster api execute_run` does (same run worker code path, same event
log, its own process and exit status).

Protocol (one JSON line each way over a unix socket, from `WarmRunLauncher`):
    {"op": "ping"}  ->  {"pid": <zygote pid>}
    {"op": "start", "run_id": ..., "instance_ref": <serialized InstanceRef>}
        ->  {"pid": <run worker pid>} | {"stale": true} | {"error": ...}

Fork safety: the zygote stays single-threaded and holds no database connection or gRPC channel when it
forks (definitions loading reads the selection names over a connection it closes). It answers
`stale` and exits when what it loaded no longer matches the code on disk or the store's named selections
(a code change or a new selection), so the launcher starts a fresh one and no run executes old code.
It exits when its parent (the daemon or webserver that started it) is gone; runs it forked keep running.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from .protocol import receive, send

PACKAGE_DIR = Path(__file__).resolve().parents[1]
ACCEPT_TIMEOUT_S = 1.0
PROFILE_DIR_ENV = "TENANTATLAS_RUN_PROFILE_DIR"
# A run's threads that store events at once (the engine's per-type workers log through Dagster).
RUN_POOL_SIZE = 4
RUN_POOL_MAX_OVERFLOW = 8


def definitions_stamp() -> tuple[Any, ...]:
    """What the loaded definitions depend on besides Dagster: our code on disk and the named selections
    (the partitions' selection dimension is read at load). Cheap: a stat per module, one query."""
    from ..defs.partitions import load_selection_names

    newest = max((p.stat().st_mtime_ns for p in PACKAGE_DIR.rglob("*.py")), default=0)
    return newest, load_selection_names()


def warm(modules: list[str]) -> None:
    """Import what every run worker needs, and build each code location's repository once.

    Measured (cProfile of forked run workers): without this, each run still spent ~1 s importing what
    Dagster and our steps import lazily (storage, SQLAlchemy/alembic, pandas, MSAL, httpx, our modules).
    Creating the instance once imports its storage classes; it is disposed before any fork, so no
    connection is shared with a child.
    """
    import pkgutil

    from dagster import DagsterInstance
    from dagster._cli import api  # noqa: F401  (the run worker's entry point)
    from dagster._core.execution import api as execution_api  # noqa: F401
    from dagster._core.executor import in_process  # noqa: F401

    from .storage_tuning import learn_schema

    with DagsterInstance.get() as instance:  # imports its storage classes; learns the schema's answers
        learn_schema(instance)
    package = importlib.import_module(__package__.rpartition(".")[0])
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if info.name.endswith("__main__") or info.name == __name__:
            continue
        with contextlib.suppress(Exception):  # optional extras (e.g. the UI) need not import
            importlib.import_module(info.name)
    with contextlib.suppress(Exception):  # the TLS trust store every run's Graph client loads
        from ..graph.settings import GraphSettings
        from ..graph.tls import build_ssl_context

        build_ssl_context(GraphSettings.from_env().ca_bundle)
    for module in modules:
        warm_definitions(importlib.import_module(module))


def warm_definitions(module: Any) -> int:
    """Build the repository (and its jobs) of every `Definitions` in `module`, cached on the very objects
    a forked run resolves its code pointer to, so no run builds them again (~17 ms of CPU each, profiled).
    Returns how many jobs are ready. A module that is not a code location is only imported."""
    from dagster import Definitions

    jobs = 0
    for value in list(vars(module).values()):
        if isinstance(value, Definitions):
            with contextlib.suppress(Exception):  # a broken definition fails in its run, with its error
                repository = value.get_repository_def()
                for name in repository.job_names:
                    repository.get_job(name)
                    jobs += 1
    return jobs


def run_child(run_id: str, instance_ref_json: str) -> int:
    """Execute one run in this (forked) process, exactly like `dagster api execute_run`."""
    from dagster._cli.api import _execute_run_command_body
    from dagster._cli.utils import get_instance_for_cli
    from dagster._core.instance.ref import InstanceRef
    from dagster._serdes import deserialize_value
    from dagster._utils.interrupts import capture_interrupts

    from .storage_tuning import run_worker_ref, tune_storage

    with capture_interrupts():
        ref = run_worker_ref(deserialize_value(instance_ref_json, InstanceRef))
        with get_instance_for_cli(instance_ref=ref) as instance:
            tune_storage(
                instance, pool_size=RUN_POOL_SIZE, max_overflow=RUN_POOL_MAX_OVERFLOW
            )  # see storage_tuning.py
            return _execute_run_command_body(
                run_id, instance, lambda _event: None, set_exit_code_on_failure=False
            )


def run_profiled(request: dict[str, Any]) -> int:
    """`run_child` under cProfile (CPU time), written to $TENANTATLAS_RUN_PROFILE_DIR/<run id>.prof: how
    the per-run costs in docs/orchestration.md were found (`python -m pstats` reads the files)."""
    import cProfile
    import time

    profile = cProfile.Profile(time.process_time)
    code = profile.runcall(run_child, str(request["run_id"]), str(request["instance_ref"]))
    profile.dump_stats(os.path.join(os.environ[PROFILE_DIR_ENV], f"{request['run_id']}.prof"))
    return int(code)


def _fork_run(conn: socket.socket, listener: socket.socket, request: dict[str, Any]) -> int:
    """Fork; the child executes the run and never returns into the accept loop."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        conn.close()
        listener.close()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        code = (
            run_profiled(request)
            if os.environ.get(PROFILE_DIR_ENV)
            else run_child(str(request["run_id"]), str(request["instance_ref"]))
        )
    except BaseException as exc:  # the run's failure is already in its event log when it got that far
        print(
            f"tenantatlas zygote: run {request.get('run_id')} worker error: {type(exc).__name__}",
            file=sys.stderr,
        )
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    return 0  # unreachable


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while True:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return


def serve(socket_path: str, parent_pid: int, modules: list[str]) -> int:
    warm(modules)
    stamp = definitions_stamp()
    if threading.active_count() > 1:  # forking a threaded process could copy a held lock
        print("tenantatlas zygote: threads after warm-up; refusing to fork", file=sys.stderr)
        return 2
    stop = False

    def _stop(_sig: int, _frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous_umask = os.umask(0o177)  # the socket is ours alone from the moment it exists
    try:
        listener.bind(socket_path)
    finally:
        os.umask(previous_umask)
    bound_inode = os.stat(socket_path).st_ino
    listener.listen(64)
    listener.settimeout(ACCEPT_TIMEOUT_S)
    try:
        while not stop and os.getppid() == parent_pid:
            _reap()
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except InterruptedError:
                continue
            with conn:
                conn.settimeout(30)
                try:
                    request = receive(conn)
                    if request.get("op") == "ping":
                        send(conn, {"pid": os.getpid()})
                    elif request.get("op") == "start":
                        if definitions_stamp() != stamp:
                            send(conn, {"stale": True})
                            stop = True
                        else:
                            send(conn, {"pid": _fork_run(conn, listener, request)})
                    else:
                        send(conn, {"error": f"unknown op {request.get('op')!r}"})
                except (OSError, ValueError) as exc:
                    with contextlib.suppress(OSError):
                        send(conn, {"error": f"{type(exc).__name__}: {exc}"})
    finally:
        listener.close()
        with contextlib.suppress(FileNotFoundError):  # only our own socket, not a successor's
            if os.stat(socket_path).st_ino == bound_inode:
                os.unlink(socket_path)
        _reap()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--socket", required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--warm-module", action="append", default=[])
    args = parser.parse_args(argv)
    return serve(args.socket, args.parent_pid, args.warm_module)


if __name__ == "__main__":
    raise SystemExit(main())
