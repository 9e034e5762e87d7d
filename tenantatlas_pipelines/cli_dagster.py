"""`tenantatlas demo | dev | sync | missing`: the pipeline through Dagster, from the command line.

Every sync here is a Dagster run of the sync job (in-process executor) recorded in a persistent
instance, so what the CLI did shows up in `tenantatlas dev`'s UI next to scheduled runs. The instance
lives in DAGSTER_HOME when set, else TENANTATLAS_HOME/dagster, with Dagster's storage in a `dagster`
database on the same PostgreSQL server.

Exit status of `sync`: 0 succeeded, 1 failed, 3 partial, 4 skipped (another run holds the lock),
2 refused before any run (unknown tenant/selection, store unreachable: the `[code] message` line says).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from .cli_common import handle_errors, print_table
from .errors import ErrorCode, TenantAtlasError

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from .db import Database
    from .defs.partitions import PartitionRef

EXIT_BY_STATUS = {"succeeded": 0, "failed": 1, "partial": 3, "skipped": 4}
GRAPH_CONFIG_ENV = ("TENANTATLAS_GRAPH_URL", "TENANTATLAS_CLIENT_ID")
_Run = TypeVar("_Run")


# --- set-up shared by the commands -------------------------------------------------------------------
@dataclass
class Stack:
    """What a command runs against: the store, maybe the emulator, and the Dagster instance's home."""

    db: Database
    dagster_home: Path
    emulator: Any = None
    tenant_keys: list[str] = field(default_factory=list)


def _want_emulator(flag: bool | None) -> bool:
    """Explicit flag wins; otherwise the emulator runs only when no real Graph is configured."""
    if flag is not None:
        return flag
    return not any(os.environ.get(v, "").strip() for v in GRAPH_CONFIG_ENV)


def _start_emulator(home: Path, scale: float) -> tuple[Any, list[Any], dict[str, str]]:
    """Start the Graph emulator with the demo tenants; returns it, its tenants and the Graph env for it."""
    from .compare.demo import COMPARE_DEMO_TENANTS, setup_compare_demo
    from .emulator import DEMO_TENANTS, Emulator
    from .emulator.data import small_tenants

    tenants = list(DEMO_TENANTS if scale >= 1 else small_tenants(scale)) + list(COMPARE_DEMO_TENANTS)
    emu = Emulator(state_dir=home / "emulator", tenants=tenants)
    emu.start()
    setup_compare_demo(emu)  # a golden tenant and a branch that differs from it in three ways
    return emu, tenants, emu.client_env()


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """Set env vars for the duration (Dagster runs, `dagster dev` inherit them), then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _instance_env(db: Database) -> tuple[Path, dict[str, str]]:
    """DAGSTER_HOME and the storage URL for the instance (writing its dagster.yaml unless the operator
    brought their own in DAGSTER_HOME)."""
    from .defs.instance import STORAGE_URL_ENV, dagster_home, sqlalchemy_storage_url, write_instance_yaml

    explicit = bool(os.environ.get("DAGSTER_HOME", "").strip())
    home = dagster_home()
    if not explicit or not (home / "dagster.yaml").exists():
        write_instance_yaml(home)
    return home, {
        "DAGSTER_HOME": str(home),
        STORAGE_URL_ENV: sqlalchemy_storage_url(db.dagster_storage_url()),
    }


@contextmanager
def stack(*, emulator: bool, scale: float = 1.0, register_demo: bool = True) -> Iterator[Stack]:
    """Database (embedded unless configured) + seeded selections + optional emulator and demo tenants,
    with the env the Dagster runs need set for the duration."""
    from .config import home_dir
    from .db import Database
    from .store.selections import seed_default_selections
    from .store.tenants import add_tenant

    db = Database.from_env()
    with db.connect() as conn:
        seed_default_selections(conn)
    dagster_home, env = _instance_env(db)
    emu = None
    keys: list[str] = []
    try:
        if emulator:
            emu, specs, graph_env = _start_emulator(home_dir(), scale)
            env.update(graph_env)
            if register_demo:
                with db.connect() as conn:
                    keys = [add_tenant(conn, s.tenant_id, s.key, s.name).key for s in specs]
        with _environ(env):
            yield Stack(db=db, dagster_home=dagster_home, emulator=emu, tenant_keys=keys)
    finally:
        if emu is not None:
            from .defs.resources import close_clients

            close_clients()  # their connections and TLS trust belong to this emulator
            emu.stop()


# --- running partitions through Dagster --------------------------------------------------------------
@dataclass(frozen=True)
class PartitionOutcome:
    """One partition's Dagster run, as the CLI reports it."""

    tenant: str
    selection: str
    dagster_run_id: str
    dagster_success: bool
    ledger: dict[str, Any]
    missing_high: int | None
    missing_low: int | None
    seconds: float

    @property
    def status(self) -> str:
        return str(self.ledger.get("status") or "failed")


def _quiet_dagster() -> None:
    warnings.filterwarnings("ignore", module="dagster")
    warnings.filterwarnings("ignore", message=".*(preview|beta|experimental).*")


def open_instance() -> DagsterInstance:
    from dagster import DagsterInstance

    return DagsterInstance.get()


def execute_partition_job(
    instance: DagsterInstance, job_name: str, ref: PartitionRef, log_level: str = "CRITICAL"
) -> Any:
    """One in-process run of a partitioned job for `ref` (its tenant registered as a partition first),
    logging at `log_level`; failures are in the returned result, never raised."""
    from . import definitions
    from .defs.partitions import TENANT_PARTITIONS_NAME

    if not instance.has_dynamic_partition(TENANT_PARTITIONS_NAME, ref.tenant):
        instance.add_dynamic_partitions(TENANT_PARTITIONS_NAME, [ref.tenant])
    job = definitions.defs.resolve_job_def(job_name)
    return job.execute_in_process(
        partition_key=ref.key,
        instance=instance,
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )


def materialize_partition(
    instance: DagsterInstance, db: Database, ref: PartitionRef, log_level: str = "CRITICAL"
) -> PartitionOutcome:
    """One run of the sync job for `ref` (sync + missing items + checks), read back from the ledger."""
    from .defs.jobs import SYNC_JOB_NAME

    started = time.monotonic()
    result = execute_partition_job(instance, SYNC_JOB_NAME, ref, log_level)
    seconds = time.monotonic() - started
    ledger = ledger_for_run(db, ref, result.run_id) or _failure_summary(result, ref)
    high = low = None
    if ledger.get("status") != "failed" or result.success:
        high, low = _missing_counts(db, ref)
    return PartitionOutcome(
        ref.tenant, ref.selection, result.run_id, result.success, ledger, high, low, seconds
    )


def ledger_summary(
    db: Database,
    ref: PartitionRef,
    dagster_run_id: str,
    list_runs: Callable[..., Sequence[Any]],
    summarize: Callable[..., dict[str, Any]],
) -> dict[str, Any] | None:
    """The ledger row an engine wrote for this Dagster run (found among the partition's latest 20 rows
    by `list_runs(scope, selection_hash, limit=)`), as `summarize(row, tenant_key=)` words it."""
    from .store.scope import tenant_scope
    from .store.selections import get_selection
    from .store.tenants import get_tenant_by_key

    with db.connect() as conn:
        tenant = get_tenant_by_key(conn, ref.tenant)
        selection = get_selection(conn, ref.selection)
        runs = list_runs(tenant_scope(conn, tenant.tenant_id), selection.selection_hash, limit=20)
    for run in runs:
        if run.dagster_run_id == dagster_run_id:
            return summarize(run, tenant_key=tenant.key)
    return None


def refused_summary(
    result: Any, ref: PartitionRef, step_key: str, default: str, id_field: str, fields: dict[str, Any]
) -> dict[str, Any]:
    """No ledger row: the run was refused before the engine started; say why with the failure's text.
    `id_field` (None) leads, `fields` (the run kind's own zero values) follow the partition."""
    message, codes = step_failure(result, step_key, default)
    return {
        id_field: None,
        "status": "failed",
        "tenant_key": ref.tenant,
        "selection_name": ref.selection,
        **fields,
        "error_codes": codes or [str(ErrorCode.INTERNAL_ERROR)],
        "error_message": message,
    }


def ledger_for_run(db: Database, ref: PartitionRef, dagster_run_id: str) -> dict[str, Any] | None:
    """The sync ledger row the engine wrote for this Dagster run, as the CLI's JSON summary."""
    from .defs.reporting import summary_from_sync_run
    from .store.sync_runs import list_runs

    return ledger_summary(db, ref, dagster_run_id, list_runs, summary_from_sync_run)


def _failure_summary(result: Any, ref: PartitionRef) -> dict[str, Any]:
    return refused_summary(
        result,
        ref,
        "inventory_sync",
        "the Dagster run failed before the sync started",
        "sync_run_id",
        {"counts": {}},
    )


def _missing_counts(db: Database, ref: PartitionRef) -> tuple[int | None, int | None]:
    from .store.missing_snapshots import get_snapshot
    from .store.scope import tenant_scope
    from .store.tenants import get_tenant_by_key

    with db.connect() as conn:
        tenant = get_tenant_by_key(conn, ref.tenant)
        snapshot = get_snapshot(tenant_scope(conn, tenant.tenant_id), ref.selection)
    return (snapshot.items_high, snapshot.items_low) if snapshot else (None, None)


def _outcome_row(o: PartitionOutcome) -> list[Any]:
    counts = o.ledger.get("counts") or {}
    return [
        o.tenant,
        o.selection,
        o.status,
        counts.get("observed"),
        counts.get("new"),
        counts.get("changed"),
        counts.get("errors"),
        o.missing_high,
        o.missing_low,
        ",".join(o.ledger.get("error_codes") or []),
        f"{o.seconds:.1f}s",
    ]


OUTCOME_HEADERS = [
    "tenant",
    "selection",
    "status",
    "observed",
    "new",
    "changed",
    "errors",
    "missing_high",
    "missing_low",
    "error_codes",
    "time",
]


def _all_partitions(db: Database, tenants: Sequence[str], selections: Sequence[str]) -> list[PartitionRef]:
    from .defs.partitions import SELECTION_NAMES, PartitionRef
    from .store.tenants import list_tenants

    with db.connect() as conn:
        enabled = [t.key for t in list_tenants(conn, enabled_only=True)]
    chosen_tenants = [t for t in enabled if not tenants or t in tenants]
    chosen_selections = [s for s in SELECTION_NAMES if not selections or s in selections]
    unknown = sorted(set(selections) - set(SELECTION_NAMES))
    if unknown:
        raise TenantAtlasError(
            ErrorCode.UNKNOWN_SELECTION,
            f"unknown selection(s) {unknown}; known: {', '.join(SELECTION_NAMES)}",
        )
    return [PartitionRef(t, s) for t in chosen_tenants for s in chosen_selections]


# --- commands ----------------------------------------------------------------------------------------
_emulator_option = click.option(
    "--emulator/--no-emulator",
    default=None,
    help="Run against the bundled Graph emulator with its demo tenants "
    "(default: when no Graph is configured).",
)


@click.command("demo")
@_emulator_option
@click.option("--tenant", "tenants", multiple=True, help="Only these tenant keys (repeatable).")
@click.option("--selection", "selections", multiple=True, help="Only these selections (repeatable).")
@click.option(
    "--scale",
    type=float,
    default=1.0,
    show_default=True,
    help="Emulator object counts relative to the demo tenants (e.g. 0.05 for a quick look).",
)
@click.option(
    "--drift/--no-drift",
    default=True,
    show_default=True,
    help="With the emulator: then remove two objects in one tenant, revoke a permission in another, "
    "and sync those partitions again, so missing items show with high and low confidence.",
)
@click.option(
    "--snapshots/--no-snapshots",
    default=True,
    show_default=True,
    help="After the first sync round, take one snapshot (full content) of every tenant.",
)
@click.option(
    "--compare/--no-compare",
    default=True,
    show_default=True,
    help="With the emulator: include the golden tenant litware and its branch, and print their compare "
    "after the snapshots (docs/compare.md).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcomes as JSON instead of a table.")
@click.option("--verbose", is_flag=True, help="Show Dagster's run logs (INFO and up).")
@handle_errors
def demo(
    emulator: bool | None,
    tenants: tuple[str, ...],
    selections: tuple[str, ...],
    scale: float,
    drift: bool,
    snapshots: bool,
    compare: bool,
    as_json: bool,
    verbose: bool,
) -> None:
    """Sync every (tenant, selection) partition through Dagster and print a summary.

    Starts the embedded PostgreSQL and the Graph emulator with its demo tenants when nothing else is
    configured, registers them, and runs each partition as its own Dagster run (in-process) recorded
    in the persistent instance under TENANTATLAS_HOME/dagster.
    """
    _quiet_dagster()
    with stack(emulator=_want_emulator(emulator), scale=scale) as st:
        refs = _all_partitions(st.db, tenants, selections)
        if not compare:
            from .compare.demo import COMPARE_DEMO_TENANTS

            refs = [r for r in refs if r.tenant not in {t.key for t in COMPARE_DEMO_TENANTS}]
        if not refs:
            raise TenantAtlasError(
                ErrorCode.UNKNOWN_TENANT,
                "no enabled tenants to sync; register one with "
                "`tenantatlas tenants add` or run with --emulator",
            )
        level = "INFO" if verbose else "CRITICAL"
        rounds: list[tuple[str, list[PartitionOutcome]]] = []
        snapshot_rows: list[dict[str, Any]] = []
        deps_round: tuple[str, list[dict[str, Any]]] = ("", [])
        compared: dict[str, Any] | None = None
        with open_instance() as instance:
            rounds.append(("", _run_partitions(instance, st.db, refs, level)))
            if snapshots:
                from .cli_snapshots import snapshot_round
                from .compare.demo import compare_demo_document

                snapshot_rows = snapshot_round(instance, st.db, refs, level)
                compared = compare_demo_document(st.db, refs[0].selection) if compare else None
            if drift and st.emulator is not None:
                story, again = _simulate_drift(st.emulator, st.db, refs)
                if again:
                    click.echo(f"\nSimulating drift: {story}", err=True)
                    rounds.append((story, _run_partitions(instance, st.db, again, level)))
            drift_rows: list[dict[str, Any]] = []
            if drift and snapshot_rows and st.emulator is not None:
                from .cli_drift import demo_drift_round

                drift_rows = demo_drift_round(instance, st.db, st.emulator, snapshot_rows, level)
            if snapshot_rows:  # the dependency graph; the drift round removes one assigned group
                from .cli_deps import dependency_round

                deps_round = dependency_round(
                    instance, st.db, st.emulator if drift else None, snapshot_rows, level
                )
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        **o.ledger,
                        "round": n,
                        "tenant": o.tenant,
                        "selection": o.selection,
                        "dagster_run_id": o.dagster_run_id,
                        "missing_high": o.missing_high,
                        "missing_low": o.missing_low,
                    }
                    for n, (_, outcomes) in enumerate(rounds, 1)
                    for o in outcomes
                ]
                + [{**s, "round": "snapshots", "tenant": s["tenant_key"], "selection": s["selection_name"]}
                   for s in snapshot_rows]
                + [{**d, "round": "drift"} for d in drift_rows]
                + [{**d, "round": "dependencies", "tenant": d["tenant_key"], "selection": d["selection_name"]}
                   for d in deps_round[1]]
                + ([{**compared, "round": "compare"}] if snapshots and compared else []),
                default=str,
                indent=2,
            )
        )
        return
    for n, (story, outcomes) in enumerate(rounds, 1):
        if story:
            click.echo(f"\nRound {n}, after drift ({story}):")
        print_table([_outcome_row(o) for o in outcomes], OUTCOME_HEADERS)
        by_status: dict[str, int] = {}
        for o in outcomes:
            by_status[o.status] = by_status.get(o.status, 0) + 1
        click.echo(
            f"\n{len(outcomes)} partitions: " + ", ".join(f"{v} {k}" for k, v in sorted(by_status.items()))
        )
        if n == 1 and snapshot_rows:
            from .cli_snapshots import print_snapshot_round

            print_snapshot_round(snapshot_rows)
            if compared:
                from .compare.demo import compare_demo_lines

                click.echo("\n".join(compare_demo_lines(compared)))
    if drift_rows:
        from .cli_drift import print_drift_round

        print_drift_round(drift_rows)
    if deps_round[1]:
        from .cli_deps import print_dependency_round

        print_dependency_round(*deps_round)
    if len(rounds) > 1:
        click.echo(
            "missing_high: gone from a run that read everything; missing_low: not seen, but the run "
            "could not read everything, so nothing is concluded (see `tenantatlas missing`)."
        )
    click.echo(f"Dagster instance: {st.dagster_home}  (browse it with `tenantatlas dev`)")
    click.echo(
        "Inventory UI: `tenantatlas ui` (./run ui), then open http://127.0.0.1:8080/ "
        "(`tenantatlas dev` starts it next to Dagster)"
    )


def _run_partitions(
    instance: DagsterInstance, db: Database, refs: Sequence[PartitionRef], level: str
) -> list[PartitionOutcome]:
    outcomes: list[PartitionOutcome] = []
    for n, ref in enumerate(refs, 1):
        click.echo(f"[{n}/{len(refs)}] {ref.tenant}/{ref.selection} ...", nl=False, err=True)
        outcome = materialize_partition(instance, db, ref, level)
        outcomes.append(outcome)
        click.echo(f" {outcome.status} ({outcome.seconds:.1f}s)", err=True)
    return outcomes


def _simulate_drift(emu: Any, db: Database, refs: Sequence[PartitionRef]) -> tuple[str, list[PartitionRef]]:
    """Change the emulated tenants the way real ones drift, and say which partitions to sync again:
    two objects deleted in the first tenant (missing, high confidence); the app's permission for one
    policy type revoked in the second (403: partial run, its items missing with low confidence)."""
    from .defs.partitions import PartitionRef
    from .emulator import Fault
    from .store.selections import get_selection

    selection = "all" if any(r.selection == "all" for r in refs) else refs[0].selection
    with db.connect() as conn:
        types = get_selection(conn, selection).policy_types
    licensed = [t for t in dict.fromkeys(r.tenant for r in refs) if emu.tenant(t).licensed]
    story: list[str] = []
    if licensed:
        first = emu.tenant(licensed[0])
        kind = max(types, key=lambda k: len(emu.objects(first.tenant_id, k)))
        victims = emu.objects(first.tenant_id, kind)[:2]
        for obj in victims:
            emu.remove_object(first.tenant_id, kind, obj["id"])
        story.append(f"{len(victims)} {kind} deleted in {first.key}")
    if len(licensed) > 1:
        second = emu.tenant(licensed[1])
        kind = max(types, key=lambda k: len(emu.objects(second.tenant_id, k)))
        emu.inject(Fault("forbidden", tenant_id=second.tenant_id, policy_type=kind))
        story.append(f"{kind} permission revoked in {second.key}")
    again = [PartitionRef(t, selection) for t in licensed[:2]]
    return "; ".join(story), again


@click.command("dev")
@_emulator_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3000, show_default=True, type=int)
@click.option(
    "--scale", type=float, default=1.0, show_default=True, help="Emulator object counts (see demo)."
)
@click.option("--ui-port", default=8080, show_default=True, type=int, help="Port of the inventory UI.")
@handle_errors
def dev(emulator: bool | None, host: str, port: int, scale: float, ui_port: int) -> None:
    """Set up like `demo`, then run the Dagster UI (webserver), daemon, one long-lived code server and the
    inventory UI (`tenantatlas ui`).

    The tenant registry sensor turns registered tenants into partitions and syncs new ones; the
    schedule keeps them fresh. Ctrl-C or SIGTERM stops every process it started (one process group,
    bounded by TENANTATLAS_DEV_STOP_TIMEOUT_S, default 20 s, then killed), the emulator with them.
    """
    import logging

    from .cli_ui import ui_command
    from .dev_stack import DevStack

    logging.basicConfig(level=logging.INFO, format="%(asctime)s tenantatlas dev: %(message)s")
    # SIGTERM (a service manager stopping us) is handled like Ctrl-C: one path that stops the group.
    previous = {s: signal.signal(s, _raise_keyboard_interrupt) for s in (signal.SIGTERM, signal.SIGINT)}
    code = 1
    try:
        with stack(emulator=_want_emulator(emulator), scale=scale) as st:
            # Dagster's tables exist before the webserver, the daemon and the run zygote start: on a fresh
            # database they would otherwise all create them at once, and the losers fail their start.
            with open_instance():
                pass
            dev_stack = DevStack(
                dagster_home=st.dagster_home, env=os.environ.copy(), host=host, port=port,
                extra={"inventory-ui": ui_command(host, ui_port)},
            )
            click.echo(
                f"DAGSTER_HOME={st.dagster_home}\nDagster UI:   http://{host}:{port}\n"
                f"Inventory UI: http://{host}:{ui_port}",
                err=True,
            )
            dev_stack.start()
            code = dev_stack.run_until_stopped()
    except KeyboardInterrupt:  # stopped while setting up: nothing of ours is running yet
        code = 0
    finally:
        logging.getLogger(__name__).info("stopped (emulator and Dagster processes)")
        for s, handler in previous.items():
            signal.signal(s, handler)
    sys.exit(code)


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    # Further signals while stopping are ignored: the stop is bounded anyway and must not be cut short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def checked_partition(db: Database, tenant: str, selection: str) -> PartitionRef:
    """The partition of an enabled tenant and a known selection, refused (with its code) before anything
    is recorded in Dagster."""
    from .defs.partitions import SELECTION_NAMES, PartitionRef
    from .store.selections import get_selection
    from .store.tenants import get_tenant

    with db.connect() as conn:
        t = get_tenant(conn, tenant)
        if not t.enabled:
            raise TenantAtlasError(ErrorCode.TENANT_DISABLED, f"tenant {t.key!r} is disabled")
        get_selection(conn, selection)
    if selection not in SELECTION_NAMES:
        raise TenantAtlasError(
            ErrorCode.UNKNOWN_SELECTION,
            f"selection {selection!r} is not a partition of "
            f"the loaded definitions ({', '.join(SELECTION_NAMES)})",
        )
    return PartitionRef(t.key, selection)


def step_failure(result: Any, step_key: str, default: str) -> tuple[str, list[str]]:
    """Why a Dagster run's step failed (its Failure description or error) and the error codes in its
    metadata; `default` when the step did not fail with a message."""
    message, codes = default, []
    for event in result.all_events:
        if event.is_step_failure and event.step_key == step_key:
            data = event.step_failure_data
            message = (data.user_failure_data.description if data.user_failure_data else None) or (
                data.error.message.strip() if data.error else message
            )
            meta = data.user_failure_data.metadata if data.user_failure_data else {}
            if "error_codes" in meta:
                codes = [c for c in str(meta["error_codes"].value).split(", ") if c and c != "none"]
    return message, codes


def run_one_partition(
    tenant: str,
    selection: str,
    verbose: bool,
    materialize: Callable[[DagsterInstance, Database, PartitionRef, str], _Run],
) -> _Run:
    """What `sync` and `snapshot` share: refuse an unknown partition before Dagster records anything,
    then `materialize` it once in the persistent instance (Dagster's logs on stderr when verbose)."""
    from .db import Database

    _quiet_dagster()
    db = Database.from_env()
    ref = checked_partition(db, tenant, selection)
    _, env = _instance_env(db)
    with _environ(env), open_instance() as instance:
        return materialize(instance, db, ref, "INFO" if verbose else "CRITICAL")


def exit_with_summary(
    summary: dict[str, Any], row: list[Any], headers: list[str], status: str, as_json: bool
) -> NoReturn:
    """Print one run's summary (JSON, or its table row and any error message) and exit with the
    status's code (EXIT_BY_STATUS; 1 for anything else)."""
    if as_json:
        click.echo(json.dumps(summary, default=str, indent=2))
    else:
        print_table([row], headers)
        if summary.get("error_message"):
            click.echo(f"\n{summary['error_message']}")
    sys.exit(EXIT_BY_STATUS.get(status, 1))


_Command = TypeVar("_Command", bound=Callable[..., Any])


def partition_run_options(json_help: str) -> Callable[[_Command], _Command]:
    """The options of a command that runs one partition (`sync`, `snapshot`): --tenant, --selection,
    --json (its help says what the JSON is), --verbose."""

    def decorate(command: _Command) -> _Command:
        command = click.option(
            "--verbose", is_flag=True, help="Show Dagster's run logs (INFO and up) on stderr."
        )(command)
        command = click.option("--json", "as_json", is_flag=True, help=json_help)(command)
        command = click.option("--selection", required=True, help="Named selection.")(command)
        return click.option("--tenant", required=True, help="Tenant key.")(command)

    return decorate


@click.command("sync")
@partition_run_options("Print the ledger result as JSON.")
@handle_errors
def sync(tenant: str, selection: str, as_json: bool, verbose: bool) -> None:
    """Materialize one (tenant, selection) partition through Dagster and print the ledger result.

    Exit status 0 only when the sync succeeded (1 failed, 3 partial, 4 skipped, 2 refused).
    """
    outcome = run_one_partition(tenant, selection, verbose, materialize_partition)
    summary = {
        **outcome.ledger,
        "dagster_run_id": outcome.dagster_run_id,
        "missing_high": outcome.missing_high,
        "missing_low": outcome.missing_low,
    }
    exit_with_summary(summary, _outcome_row(outcome), OUTCOME_HEADERS, outcome.status, as_json)


@click.command("missing")
@click.option("--tenant", required=True, help="Tenant key.")
@click.option("--selection", required=True, help="Named selection.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@handle_errors
def missing(tenant: str, selection: str, as_json: bool) -> None:
    """Print the missing items of a tenant and selection, with confidence (derived from the store now)."""
    from .db import Database
    from .store.missing import missing_items
    from .store.scope import tenant_scope
    from .store.selections import get_selection
    from .store.tenants import get_tenant

    with Database.from_env().connect() as conn:
        t = get_tenant(conn, tenant)
        sel = get_selection(conn, selection)
        result = missing_items(tenant_scope(conn, t.tenant_id), sel.selection_hash)
    rows = [
        {
            "policy_type": i.policy_type,
            "external_id": i.external_id,
            "display_name": i.display_name,
            "last_seen_at": i.last_seen_at.isoformat(),
            "confidence": i.confidence,
            "reason": i.reason,
        }
        for i in result.items
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if result.reason:
        click.echo(f"no reference run yet for {t.key}/{sel.name} ({result.reason}): nothing can be missing")
        return
    print_table([list(r.values()) for r in rows], list(rows[0]) if rows else ["policy_type", "external_id"])
    click.echo(
        f"\n{len(rows)} missing ({result.high} high, {result.low} low confidence) "
        f"relative to sync run {result.run_id} ({result.run_status})"
    )
