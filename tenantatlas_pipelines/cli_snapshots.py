"""`tenantatlas snapshot`, `snapshots list`, `show`: snapshots from the command line (issue 12).

`snapshot` runs one partition through Dagster (the `policy_snapshot_job`), like `sync`; `snapshots list`
and `show` read the store. JSON field names are a contract (scripts and the acceptance harness).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import click

from .cli_common import handle_errors, print_table
from .cli_dagster import partition_run_options
from .errors import ErrorCode, TenantAtlasError

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from .db import Database
    from .defs.partitions import PartitionRef


def materialize_snapshot(
    instance: DagsterInstance, db: Database, ref: PartitionRef, log_level: str = "CRITICAL"
) -> dict[str, Any]:
    """One run of the snapshot job for `ref`, read back from the snapshot ledger as the JSON summary."""
    from .cli_dagster import execute_partition_job, ledger_summary, refused_summary
    from .defs.snapshot_reporting import snapshot_summary
    from .defs.snapshots import SNAPSHOT_JOB_NAME
    from .store.snapshot_runs import list_snapshots

    started = time.monotonic()
    result = execute_partition_job(instance, SNAPSHOT_JOB_NAME, ref, log_level)
    summary = ledger_summary(db, ref, result.run_id, list_snapshots, snapshot_summary) or refused_summary(
        result,
        ref,
        "policy_snapshots",
        "the Dagster run failed before the snapshot started",
        "snapshot_id",
        {"selection_hash": None, "objects": 0, "new_versions": 0},
    )
    summary["dagster_run_id"] = result.run_id
    summary["seconds"] = round(time.monotonic() - started, 2)
    return summary


SUMMARY_HEADERS = ["tenant", "selection", "snapshot", "status", "objects", "new_versions", "references",
                   "unresolved", "requests", "throttled", "error_codes"]


def summary_row(s: dict[str, Any]) -> list[Any]:
    return [s.get("tenant_key"), s.get("selection_name"), s.get("snapshot_id"), s.get("status"),
            s.get("objects"), s.get("new_versions"), s.get("references"), s.get("references_unresolved"),
            s.get("requests"), s.get("throttled"), ",".join(s.get("error_codes") or [])]


@click.command("snapshot")
@partition_run_options("Print the snapshot's ledger result as JSON.")
@handle_errors
def snapshot(tenant: str, selection: str, as_json: bool, verbose: bool) -> None:
    """Take one snapshot of a (tenant, selection) partition through Dagster and print the result.

    Exit status 0 only when the snapshot succeeded (1 failed, 3 partial, 4 skipped, 2 refused).
    """
    from .cli_dagster import exit_with_summary, run_one_partition

    summary = run_one_partition(tenant, selection, verbose, materialize_snapshot)
    exit_with_summary(summary, summary_row(summary), SUMMARY_HEADERS, str(summary.get("status")), as_json)


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
