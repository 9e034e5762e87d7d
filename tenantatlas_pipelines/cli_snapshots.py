"""`tenantatlas snapshot`, `snapshots list`, `show`: snapshots from the command line (issue 12).

`snapshot` runs one partition through Dagster (the `policy_snapshot_job`), like `sync`; `snapshots list`
and `show` read the store. JSON field names are a contract (scripts and the acceptance harness).
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

import click

from .cli_common import handle_errors, print_table
from .errors import ErrorCode, TenantAtlasError

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from .db import Database
    from .defs.partitions import PartitionRef


def materialize_snapshot(
    instance: DagsterInstance, db: Database, ref: PartitionRef, log_level: str = "CRITICAL"
) -> dict[str, Any]:
    """One run of the snapshot job for `ref`, read back from the snapshot ledger as the JSON summary."""
    from . import definitions
    from .defs.partitions import TENANT_PARTITIONS_NAME
    from .defs.snapshots import SNAPSHOT_JOB_NAME

    if not instance.has_dynamic_partition(TENANT_PARTITIONS_NAME, ref.tenant):
        instance.add_dynamic_partitions(TENANT_PARTITIONS_NAME, [ref.tenant])
    job = definitions.defs.resolve_job_def(SNAPSHOT_JOB_NAME)
    started = time.monotonic()
    result = job.execute_in_process(
        partition_key=ref.key, instance=instance, raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
    summary = _ledger_for_run(db, ref, result.run_id) or _refused(result, ref)
    summary["dagster_run_id"] = result.run_id
    summary["seconds"] = round(time.monotonic() - started, 2)
    return summary


def _ledger_for_run(db: Database, ref: PartitionRef, dagster_run_id: str) -> dict[str, Any] | None:
    from .defs.snapshot_reporting import snapshot_summary
    from .store.scope import tenant_scope
    from .store.selections import get_selection
    from .store.snapshot_runs import list_snapshots
    from .store.tenants import get_tenant

    with db.connect() as conn:
        tenant = get_tenant(conn, ref.tenant)
        selection = get_selection(conn, ref.selection)
        runs = list_snapshots(tenant_scope(conn, tenant.tenant_id), selection.selection_hash, limit=20)
    for run in runs:
        if run.dagster_run_id == dagster_run_id:
            return snapshot_summary(run, tenant_key=tenant.key)
    return None


def _refused(result: Any, ref: PartitionRef) -> dict[str, Any]:
    """No ledger row: the run was refused before the engine started; say why with the failure's text."""
    from .cli_dagster import step_failure

    message, codes = step_failure(
        result, "policy_snapshots", "the Dagster run failed before the snapshot started"
    )
    return {"snapshot_id": None, "status": "failed", "tenant_key": ref.tenant,
            "selection_name": ref.selection, "selection_hash": None, "objects": 0, "new_versions": 0,
            "error_codes": codes or [str(ErrorCode.INTERNAL_ERROR)], "error_message": message}


SUMMARY_HEADERS = ["tenant", "selection", "snapshot", "status", "objects", "new_versions", "references",
                   "unresolved", "requests", "throttled", "error_codes"]


def summary_row(s: dict[str, Any]) -> list[Any]:
    return [s.get("tenant_key"), s.get("selection_name"), s.get("snapshot_id"), s.get("status"),
            s.get("objects"), s.get("new_versions"), s.get("references"), s.get("references_unresolved"),
            s.get("requests"), s.get("throttled"), ",".join(s.get("error_codes") or [])]


@click.command("snapshot")
@click.option("--tenant", required=True, help="Tenant key.")
@click.option("--selection", required=True, help="Named selection.")
@click.option("--json", "as_json", is_flag=True, help="Print the snapshot's ledger result as JSON.")
@click.option("--verbose", is_flag=True, help="Show Dagster's run logs (INFO and up) on stderr.")
@handle_errors
def snapshot(tenant: str, selection: str, as_json: bool, verbose: bool) -> None:
    """Take one snapshot of a (tenant, selection) partition through Dagster and print the result.

    Exit status 0 only when the snapshot succeeded (1 failed, 3 partial, 4 skipped, 2 refused).
    """
    from .cli_dagster import (
        EXIT_BY_STATUS,
        _environ,
        _instance_env,
        _quiet_dagster,
        checked_partition,
        open_instance,
    )
    from .db import Database

    _quiet_dagster()
    db = Database.from_env()
    ref = checked_partition(db, tenant, selection)
    _, env = _instance_env(db)
    with _environ(env), open_instance() as instance:
        summary = materialize_snapshot(instance, db, ref, "INFO" if verbose else "CRITICAL")
    if as_json:
        click.echo(json.dumps(summary, default=str, indent=2))
    else:
        print_table([summary_row(summary)], SUMMARY_HEADERS)
        if summary.get("error_message"):
            click.echo(f"\n{summary['error_message']}")
    sys.exit(EXIT_BY_STATUS.get(str(summary.get("status")), 1))


@click.group("snapshots")
def snapshots() -> None:
    """Snapshots in the store."""


@snapshots.command("list")
@click.option("--tenant", required=True, help="Tenant key.")
@click.option("--selection", default=None, help="Only this named selection's lineage.")
@click.option("--limit", default=50, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@handle_errors
def snapshots_list(tenant: str, selection: str | None, limit: int, as_json: bool) -> None:
    """List a tenant's snapshots, newest first."""
    from .cli_common import database
    from .defs.snapshot_reporting import snapshot_summary
    from .store.scope import tenant_scope
    from .store.selections import get_selection
    from .store.snapshot_runs import list_snapshots
    from .store.tenants import get_tenant

    with database().connect() as conn:
        t = get_tenant(conn, tenant)
        selection_hash = get_selection(conn, selection).selection_hash if selection else None
        runs = list_snapshots(tenant_scope(conn, t.tenant_id), selection_hash, limit=limit)
    rows = [snapshot_summary(r, tenant_key=t.key) for r in runs]
    if as_json:
        click.echo(json.dumps(rows, default=str, indent=2))
        return
    print_table([[*summary_row(r), r["started_at"]] for r in rows], [*SUMMARY_HEADERS, "started_at"])


@click.command("show")
@click.option("--tenant", required=True, help="Tenant key.")
@click.option("--policy-type", "policy_type", required=True, help="Policy type key (see `policy-types`).")
@click.option("--external-id", "external_id", required=True, help="The object's Graph id.")
@click.option("--snapshot", "snapshot_id", type=int, default=None,
              help="Snapshot id (default: the latest snapshot that saw the object).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@handle_errors
def show(tenant: str, policy_type: str, external_id: str, snapshot_id: int | None, as_json: bool) -> None:
    """An object's normal-form content (with assignments) in a snapshot, and its version history."""
    from .cli_common import database
    from .policy_types import get_policy_type
    from .store.object_versions import versions_of_object
    from .store.scope import tenant_scope
    from .store.snapshot_objects import object_in_snapshot
    from .store.snapshot_runs import get_snapshot
    from .store.tenants import get_tenant

    get_policy_type(policy_type)
    with database().connect() as conn:
        t = get_tenant(conn, tenant)
        scope = tenant_scope(conn, t.tenant_id)
        versions = versions_of_object(scope, policy_type, external_id)
        if snapshot_id is None:
            seen = [s for v in versions for s in v.snapshot_ids]
            if not seen:
                raise TenantAtlasError(
                    ErrorCode.OBJECT_NOT_IN_SNAPSHOT,
                    f"no snapshot of tenant {t.key!r} saw {policy_type} {external_id[:80]!r}",
                )
            snapshot_id = max(seen)
        run = get_snapshot(scope, snapshot_id)
        obj = object_in_snapshot(scope, snapshot_id, policy_type, external_id)
        if obj is None:
            raise TenantAtlasError(
                ErrorCode.OBJECT_NOT_IN_SNAPSHOT,
                f"snapshot {snapshot_id} of tenant {t.key!r} did not see {policy_type} {external_id[:80]!r}",
            )
    doc = {
        "tenant_key": t.key, "policy_type": policy_type, "external_id": external_id,
        "display_name": obj.display_name, "snapshot_id": snapshot_id, "snapshot_status": run.status,
        "captured_at": run.started_at.isoformat(), "content_hash": obj.content_hash, "content": obj.content,
        "versions": [
            {"content_hash": v.content_hash, "first_captured_at": v.first_captured_at.isoformat(),
             "first_snapshot_id": v.first_snapshot_id, "snapshot_ids": list(v.snapshot_ids)}
            for v in versions
        ],
    }
    if as_json:
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    click.echo(f"{policy_type} {external_id}  {obj.display_name or ''}")
    click.echo(f"snapshot {snapshot_id} ({run.status}, {doc['captured_at']}), "
               f"content {obj.content_hash[:16]}")
    click.echo(json.dumps(obj.content, indent=2, ensure_ascii=False, sort_keys=True))
    click.echo("\nversions:")
    print_table([[v["content_hash"][:16], v["first_captured_at"], ",".join(map(str, v["snapshot_ids"]))]
                 for v in doc["versions"]], ["content_hash", "first_captured_at", "snapshot_ids"])


def snapshot_round(
    instance: DagsterInstance, db: Database, refs: list[PartitionRef] | tuple[PartitionRef, ...],
    log_level: str = "CRITICAL",
) -> list[dict[str, Any]]:
    """One snapshot per tenant of `refs` (of its broadest selection: `all` when synced), through Dagster;
    the demo's snapshot round."""
    from .defs.partitions import PartitionRef

    chosen: dict[str, str] = {}
    for ref in refs:
        if ref.tenant not in chosen or ref.selection == "all":
            chosen[ref.tenant] = ref.selection
    rows = []
    for n, (tenant, selection) in enumerate(chosen.items(), 1):
        click.echo(f"[snapshot {n}/{len(chosen)}] {tenant}/{selection} ...", nl=False, err=True)
        summary = materialize_snapshot(instance, db, PartitionRef(tenant, selection), log_level)
        click.echo(f" {summary['status']} ({summary['seconds']:.1f}s)", err=True)
        rows.append(summary)
    return rows


def print_snapshot_round(rows: list[dict[str, Any]]) -> None:
    """The demo's snapshot summary, printed under the sync round it followed."""
    click.echo("\nSnapshots (full content, normal form, content-addressed):")
    print_table([summary_row(s) for s in rows], SUMMARY_HEADERS)
    objects = sum(int(s.get("objects") or 0) for s in rows)
    versions = sum(int(s.get("new_versions") or 0) for s in rows)
    click.echo(f"\n{len(rows)} snapshots: {objects} objects, {versions} new versions "
               "(see `tenantatlas snapshots list` and `tenantatlas show`)")
