"""`tenantatlas deps`: the dependency graph from the command line (issue 15), and the demo's step.

`deps` reads the published graph (the `dependency_edges` asset writes it): what uses a group, filter or
scope tag (by id or name), what one object uses, what dangles. JSON field names are a contract
(`store.dependency_edges.EDGE_FIELDS`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from .cli_common import handle_errors, print_table

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from .db import Database
    from .defs.partitions import PartitionRef

_BY_TARGET = (("group", "group"), ("filter", "assignment_filter"), ("scope_tag", "scope_tag"))
TABLE_HEADERS = ["policy_type", "display_name", "relation", "target_type", "target", "filter_mode",
                 "intent", "resolved", "snapshot"]


def _table_row(e: dict[str, Any]) -> list[Any]:
    target = e["target_name"] or e["target_id"]
    if e["via_target_type"]:  # a virtual target's id is its type: say it once
        via = {e["via_target_type"], e["via_target_id"]}
        target = f"{target} (on {' '.join(sorted(via, key=lambda v: v != e['via_target_type']))})"
    resolved = {True: "yes", False: "DANGLING", None: "unknown"}[e["resolved"]]
    return [e["policy_type"], e["display_name"] or e["external_id"], e["relation"], e["target_type"],
            target, e["filter_mode"], e["intent"], resolved, e["snapshot_id"]]


@click.command("deps")
@click.option("--tenant", required=True, help="Tenant key.")
@click.option("--group", default=None, metavar="ID_OR_NAME", help="What uses this group.")
@click.option("--filter", "filter_", default=None, metavar="ID_OR_NAME",
              help="What uses this assignment filter.")
@click.option("--scope-tag", "scope_tag", default=None, metavar="ID_OR_NAME",
              help="What carries this scope tag.")
@click.option("--policy-type", "policy_type", default=None, help="With --external-id: what this object uses.")
@click.option("--external-id", "external_id", default=None, help="The object's Graph id.")
@click.option("--dangling", is_flag=True, help="References Graph no longer resolves (removed groups, ...).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of edges.")
@handle_errors
def deps(tenant: str, group: str | None, filter_: str | None, scope_tag: str | None,
         policy_type: str | None, external_id: str | None, dangling: bool, as_json: bool) -> None:
    """The dependency graph of a tenant: what uses a group / filter / scope tag, what an object uses,
    and dangling references. Reads the graph published by the `dependency_edges` asset."""
    from .cli_common import database
    from .dependencies.lookup import pick_target
    from .policy_types import get_policy_type
    from .store import dependency_edges as store
    from .store.scope import tenant_scope
    from .store.tenants import get_tenant

    by_target = [(kind, v) for (opt, kind), v in zip(_BY_TARGET, (group, filter_, scope_tag), strict=True)
                 if v is not None]
    by_object = policy_type is not None or external_id is not None
    if len(by_target) + by_object + dangling != 1:
        raise click.UsageError("give exactly one of --group, --filter, --scope-tag, "
                               "--policy-type with --external-id, --dangling")
    if by_object and (policy_type is None or external_id is None):
        raise click.UsageError("--policy-type and --external-id go together")
    if policy_type is not None:
        get_policy_type(policy_type)
    with database().connect() as conn:
        t = get_tenant(conn, tenant)
        scope = tenant_scope(conn, t.tenant_id)
        if by_target:
            kind, value = by_target[0]
            label = kind.replace("_", " ")
            chosen = pick_target(label, value, store.target_candidates(scope, kind, value))
            edges = store.edges_using(scope, kind, chosen) if chosen is not None else []
        elif by_object:
            assert policy_type is not None and external_id is not None
            edges = store.edges_of_object(scope, policy_type, external_id)
        else:
            edges = store.dangling_edges(scope)
        published = store.list_partitions(scope)
        behind = store.newer_snapshots(scope)
    if not published:
        click.echo(f"note: no dependency graph of tenant {t.key!r} is published yet (materialize "
                   "`dependency_edges` after a snapshot, or run `tenantatlas demo`)", err=True)
    for selection, have, newer in behind:
        click.echo(f"note: {t.key}/{selection}: graph from snapshot {have}, snapshot {newer} is newer "
                   "(materialize `dependency_edges` for it)", err=True)
    if as_json:
        click.echo(json.dumps([{f: e[f] for f in store.EDGE_FIELDS} for e in edges], indent=2,
                              ensure_ascii=False))
        return
    print_table([_table_row(e) for e in edges], TABLE_HEADERS)
    click.echo(f"\n{len(edges)} edges")


# --- the demo's step --------------------------------------------------------------------------------
def materialize_dependencies(
    instance: DagsterInstance, ref: PartitionRef, log_level: str = "CRITICAL"
) -> str:
    """One run of `dependency_edges_job` for a partition (with its check); returns its Dagster run id."""
    from .cli_dagster import execute_partition_job
    from .defs.dependencies import DEPENDENCY_JOB_NAME

    return str(execute_partition_job(instance, DEPENDENCY_JOB_NAME, ref, log_level).run_id)


def _partition_row(db: Database, ref: PartitionRef, dagster_run_id: str) -> dict[str, Any]:
    from .store.dependency_edges import partition_header
    from .store.scope import tenant_scope
    from .store.selections import get_selection
    from .store.tenants import get_tenant

    with db.connect() as conn:
        scope = tenant_scope(conn, get_tenant(conn, ref.tenant).tenant_id)
        header = partition_header(scope, get_selection(conn, ref.selection).selection_hash)
    return {"tenant_key": ref.tenant, "selection_name": ref.selection,
            "snapshot_id": header.snapshot_run_id if header else None,
            "objects": header.objects if header else 0, "edges": header.edges if header else 0,
            "dangling": header.dangling if header else 0, "dagster_run_id": dagster_run_id}


def _assigned_group(db: Database, ref: PartitionRef) -> tuple[str, str | None] | None:
    from .store.dependency_edges import assigned_group
    from .store.scope import tenant_scope
    from .store.tenants import get_tenant

    with db.connect() as conn:
        return assigned_group(tenant_scope(conn, get_tenant(conn, ref.tenant).tenant_id))


def dependency_round(
    instance: DagsterInstance, db: Database, emulator: Any, snapshot_rows: list[dict[str, Any]],
    log_level: str = "CRITICAL",
) -> tuple[str, list[dict[str, Any]]]:
    """The demo's dependency step: derive the graph of every snapshotted partition; then, with the
    emulator, remove one assigned group in the first tenant, snapshot that partition again and
    derive it again, so a dangling reference shows. Returns (story, one row per partition)."""
    from .cli_snapshots import materialize_snapshot
    from .defs.partitions import PartitionRef

    refs = [PartitionRef(s["tenant_key"], s["selection_name"]) for s in snapshot_rows
            if s.get("status") in ("succeeded", "partial")]
    run_ids = {ref: materialize_dependencies(instance, ref, log_level) for ref in refs}
    story = ""
    if emulator is not None and refs:
        ref = refs[0]
        group = _assigned_group(db, ref)
        if group is not None:
            emulator.remove_group(emulator.tenant(ref.tenant).tenant_id, group[0])
            story = f"group {group[1]!r} ({group[0]}) removed in {ref.tenant}"
            click.echo(f"\nDependencies: {story}; snapshot {ref.key} again ...", err=True)
            materialize_snapshot(instance, db, ref, log_level)
            run_ids[ref] = materialize_dependencies(instance, ref, log_level)
    return story, [_partition_row(db, r, run_ids[r]) for r in refs]


def print_dependency_round(story: str, rows: list[dict[str, Any]]) -> None:
    """The demo's dependency summary."""
    click.echo("\nDependency graph (edges per partition, from its latest snapshot):")
    print_table([[r["tenant_key"], r["selection_name"], r["snapshot_id"], r["objects"], r["edges"],
                  r["dangling"]] for r in rows],
                ["tenant", "selection", "snapshot", "objects", "edges", "dangling"])
    if story and rows:
        click.echo(f"\n{story}: its references now dangle (resolved = false). Try "
                   f"`tenantatlas deps --tenant {rows[0]['tenant_key']} --dangling`.")
