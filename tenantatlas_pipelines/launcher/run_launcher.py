"""`WarmRunLauncher`: Dagster's run launcher for one machine, forking each run from a warm zygote.

Configured in dagster.yaml (`run_launcher: {module: tenantatlas_pipelines.launcher.run_launcher, class:
WarmRunLauncher}`); the Kubernetes instance keeps `K8sRunLauncher` (deploy/dagster-k8s.yaml).

What stays exactly as with Dagster's DefaultRunLauncher: one run per partition, one process per run
(`dagster api execute_run`'s own code path, see zygote.py), the run queue deciding *when* a run is
launched (the global and per-tenant limits are the QueuedRunCoordinator's and never see the launcher),
run monitoring and termination. What changes: the run's process is forked from a zygote that imported
Dagster and the definitions once, so a run starts in milliseconds instead of an interpreter's start-up.

A job whose code the zygote cannot run the same way (another Python executable, i.e. another code
location's environment) is launched through its gRPC code server like DefaultRunLauncher does.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dagster import Field, IntSource, Noneable, StringSource
from dagster._core.launcher.base import (
    CheckRunHealthResult,
    LaunchRunContext,
    RunLauncher,
    WorkerStatus,
)
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher
from dagster._core.storage.dagster_run import DagsterRun
from dagster._serdes import ConfigurableClass, ConfigurableClassData, serialize_value

from .protocol import receive, send

WORKER_PID_TAG = "tenantatlas/run_worker_pid"
WORKER_HOST_TAG = "tenantatlas/run_worker_host"
# pandas: imported lazily by the missing-items step (0.6 s a run when not warmed, measured).
DEFAULT_WARM_MODULES = (
    "tenantatlas_pipelines.definitions",
    "pandas",
    "httpcore",
    "h11",
    "dagster._core.storage.local_compute_log_manager",
    "dagster._utils.test",
    "watchdog.observers.polling",
    "dagster._core.workspace.autodiscovery",
)


class ZygoteUnavailable(RuntimeError):
    """The zygote could not be started or reached (its stderr is in the daemon's log)."""


def default_socket_path(dagster_home: str) -> str:
    """One zygote per Dagster instance; in the temp dir because unix socket paths are short (108 B)."""
    digest = hashlib.sha256(os.path.abspath(dagster_home).encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"tenantatlas-zygote-{digest}.sock")


class ZygoteClient:
    """Talks to (and if need be starts) the zygote for one socket path."""

    def __init__(
        self,
        socket_path: str,
        warm_modules: Sequence[str],
        start_timeout_s: float,
        lock_path: str | None = None,
    ) -> None:
        self.socket_path = socket_path
        self.lock_path = lock_path or socket_path + ".lock"
        self.warm_modules = tuple(warm_modules)
        self.start_timeout_s = start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None

    def _call(self, request: Mapping[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(self.socket_path)
            send(sock, request)
            return receive(sock)

    def ping(self) -> int | None:
        """The zygote's pid, or None when none is listening."""
        try:
            return int(self._call({"op": "ping"}, timeout=5.0)["pid"])
        except (OSError, ValueError, KeyError):
            return None

    def ensure_running(self) -> int:
        """Start the zygote unless one answers; a file lock keeps two launchers from starting two."""
        pid = self.ping()
        if pid is not None:
            return pid
        with open(self.lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            pid = self.ping()
            if pid is not None:
                return pid
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tenantatlas_pipelines.launcher.zygote",
                    "--socket",
                    self.socket_path,
                    "--parent-pid",
                    str(os.getpid()),
                    *(arg for m in self.warm_modules for arg in ("--warm-module", m)),
                ],
                stdin=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + self.start_timeout_s
            while time.monotonic() < deadline:
                pid = self.ping()
                if pid is not None:
                    return pid
                if self._proc.poll() is not None:
                    raise ZygoteUnavailable(f"the run zygote exited with status {self._proc.returncode}")
                time.sleep(0.05)
            raise ZygoteUnavailable(f"the run zygote did not answer within {self.start_timeout_s:.0f} s")

    def start_run(self, run_id: str, instance_ref: str) -> int:
        """Fork a run worker for `run_id`; restarts a zygote that reports stale code once."""
        for _attempt in range(2):
            self.ensure_running()
            answer = self._call({"op": "start", "run_id": run_id, "instance_ref": instance_ref})
            if "pid" in answer:
                return int(answer["pid"])
            if not answer.get("stale"):
                raise ZygoteUnavailable(f"the run zygote refused the run: {answer.get('error', answer)}")
            self._wait_gone()
        raise ZygoteUnavailable("the run zygote kept reporting stale definitions")

    def _wait_gone(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and os.path.exists(self.socket_path):
            time.sleep(0.02)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=max(0.1, deadline - time.monotonic()))

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=10)


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, exited but not yet reaped by the zygote, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


class WarmRunLauncher(RunLauncher, ConfigurableClass):
    """Launches each run as a process forked from a warm zygote on this machine (see module docstring)."""

    def __init__(
        self,
        inst_data: ConfigurableClassData | None = None,
        socket_path: str | None = None,
        warm_modules: Sequence[str] | None = None,
        start_timeout_seconds: int = 120,
    ) -> None:
        self._inst_data = inst_data
        self._socket_path = socket_path
        self._warm_modules = tuple(warm_modules or DEFAULT_WARM_MODULES)
        self._start_timeout_s = float(start_timeout_seconds)
        self._client: ZygoteClient | None = None
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "socket_path": Field(Noneable(StringSource), is_required=False, default_value=None),
            "warm_modules": Field([str], is_required=False, default_value=list(DEFAULT_WARM_MODULES)),
            "start_timeout_seconds": Field(IntSource, is_required=False, default_value=120),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> WarmRunLauncher:
        return cls(inst_data=inst_data, **config_value)

    def _zygote(self) -> ZygoteClient:
        if self._client is None:
            root = self._instance.root_directory
            path = self._socket_path or default_socket_path(root)
            # The lock lives with the instance (the socket is in the temp dir only for its short path).
            lock = os.path.join(root, ".tenantatlas-zygote.lock") if os.path.isdir(root) else None
            self._client = ZygoteClient(path, self._warm_modules, self._start_timeout_s, lock)
        return self._client

    def prestart(self) -> bool:
        """Start the zygote now rather than at the first launch (its imports take seconds), so the first
        run of a backfill or sweep does not wait for them; False when it could not be started."""
        try:
            self._zygote().ensure_running()
        except (ZygoteUnavailable, OSError, ValueError):
            return False
        return True

    @staticmethod
    def can_fork(run: DagsterRun) -> bool:
        """The zygote runs this interpreter; a job from another environment goes through gRPC."""
        origin = run.job_code_origin
        return origin is not None and os.path.abspath(origin.executable_path) == os.path.abspath(
            sys.executable
        )

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        if not self.can_fork(run):
            self._default().launch_run(context)
            return
        try:
            pid = self._zygote().start_run(run.run_id, serialize_value(self._instance.get_ref()))
        except (ZygoteUnavailable, OSError, ValueError) as exc:
            # Never lose a run to the launcher's own trouble: the code server can start it the slow way.
            self._instance.report_engine_event(
                f"Warm run launcher unavailable ({type(exc).__name__}: {exc}); "
                "launching this run through the code server instead.",
                run,
                cls=self.__class__,
            )
            self._default().launch_run(context)
            return
        self._instance.add_run_tags(
            run.run_id, {WORKER_PID_TAG: str(pid), WORKER_HOST_TAG: socket.gethostname()}
        )

    def _default(self) -> DefaultRunLauncher:
        launcher = DefaultRunLauncher()
        launcher.register_instance(self._instance)
        return launcher

    def _worker_pid(self, run: DagsterRun) -> int | None:
        if run.tags.get(WORKER_HOST_TAG) != socket.gethostname():
            return None
        try:
            return int(run.tags[WORKER_PID_TAG])
        except (KeyError, ValueError):
            return None

    def terminate(self, run_id: str) -> bool:
        """Ask the run worker to stop the way Dagster's gRPC server does: an interrupt in the worker."""
        run = self._instance.get_run_by_id(run_id)
        if not run or run.is_finished:
            return False
        pid = self._worker_pid(run)
        if pid is None:  # launched through gRPC (another environment)
            return self._default().terminate(run_id)
        self._instance.report_run_canceling(run)
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            return False
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        pid = self._worker_pid(run)
        if pid is None:  # not ours to judge (gRPC launch, or tags not written yet)
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no forked worker recorded")
        if _alive(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        latest = self._instance.get_run_by_id(run.run_id)
        if latest is not None and latest.is_finished:
            return CheckRunHealthResult(WorkerStatus.SUCCESS, run_worker_id=str(pid))
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"run worker process {pid} exited before the run finished",
            run_worker_id=str(pid),
        )

    def dispose(self) -> None:
        if self._client is not None:
            self._client.stop()
