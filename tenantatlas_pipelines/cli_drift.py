"""`tenantatlas baseline set|show|clear` and `tenantatlas drift [accept|accepted|revoke]`.

`tenantatlas drift --tenant KEY --selection NAME [--against baseline|previous|SNAPSHOT_ID] [--json]`
prints the drift between the baseline and the current snapshot. Exit status: 0 when drift was computed
(whatever it found); 3 with `--fail-on-drift` when unaccepted high-confidence drift exists; 2 when it
could not be computed (`error [code] message` on stderr: no_snapshot, no_baseline_snapshot,
baseline_not_usable, snapshot_not_found, unknown_tenant, unknown_selection, ...).
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import click

from .cli_common import database, handle_errors, print_table

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from .db import Database
    from .store.scope import TenantScope
    from .store.selections import Selection

EXIT_DRIFT = 3
OPERATOR_ENV = "TENANTATLAS_OPERATOR"


def operator() -> str:
    """Who is acting: TENANTATLAS_OPERATOR when set (shared service accounts), else the login name."""
    return os.environ.get(OPERATOR_ENV, "").strip() or getpass.getuser()


@contextmanager
def _scoped(tenant_key: str, selection_name: str) -> Iterator[tuple[TenantScope, Selection]]:
    from .store.scope import tenant_scope
    from .store.selections import get_selection
    from .store.tenants import get_tenant

    with database().connect() as conn:
        tenant = get_tenant(conn, tenant_key)
        selection = get_selection(conn, selection_name)
        yield tenant_scope(conn, tenant.tenant_id), selection


_tenant_option = click.option("--tenant", required=True, help="Tenant key (or id).")
_selection_option = click.option("--selection", required=True, help="Named selection.")


def _dump(value: Any) -> str:
    return json.dumps(value, default=str, indent=2, ensure_ascii=False)


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 3] + "..."


# --- baseline ----------------------------------------------------------------------------------------
@click.group("baseline")
def baseline() -> None:
    """The snapshot drift compares against (pinned per tenant and selection)."""


@baseline.command("set")
@_tenant_option
@_selection_option
@click.option("--snapshot", "snapshot_id", type=int, help="Snapshot id (default: the latest succeeded).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def baseline_set(tenant: str, selection: str, snapshot_id: int | None, as_json: bool) -> None:
    """Pin a succeeded snapshot as the baseline (a partial or failed one is refused)."""
    from .drift.baselines import set_baseline

    with _scoped(tenant, selection) as (scope, sel):
        pin = set_baseline(scope, sel, snapshot_id, operator())
    click.echo(
        _dump(asdict(pin))
        if as_json
        else f"baseline of {tenant}/{selection}: snapshot {pin.snapshot_run_id} (pinned by {pin.pinned_by})"
    )


@baseline.command("show")
@_tenant_option
@_selection_option
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def baseline_show(tenant: str, selection: str, as_json: bool) -> None:
    """Show the pinned baseline (none: drift compares against the previous snapshot)."""
    from .drift.baselines import show_baseline

    with _scoped(tenant, selection) as (scope, sel):
        pin = show_baseline(scope, sel)
    if as_json:
        click.echo(_dump(asdict(pin) if pin else None))
    elif pin is None:
        click.echo(
            f"no baseline pinned for {tenant}/{selection}: drift compares against the previous snapshot"
        )
    else:
        click.echo(
            f"baseline of {tenant}/{selection}: snapshot {pin.snapshot_run_id}, "
            f"pinned by {pin.pinned_by} at {pin.pinned_at:%Y-%m-%d %H:%M:%S %Z}"
        )


@baseline.command("clear")
@_tenant_option
@_selection_option
@handle_errors
def baseline_clear(tenant: str, selection: str) -> None:
    """Unpin the baseline: drift compares against the previous snapshot again."""
    from .drift.baselines import unpin_baseline

    with _scoped(tenant, selection) as (scope, sel):
        had = unpin_baseline(scope, sel)
    click.echo(
        f"baseline of {tenant}/{selection} cleared"
        if had
        else f"no baseline was pinned for {tenant}/{selection}"
    )


# --- drift -------------------------------------------------------------------------------------------
@click.group("drift", invoke_without_command=True)
@click.option("--tenant", help="Tenant key (or id).")
@click.option("--selection", help="Named selection.")
@click.option(
    "--against", help="baseline | previous | SNAPSHOT_ID (default: the pinned baseline, else previous)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the drift as one JSON object.")
@click.option(
    "--fail-on-drift", is_flag=True, help=f"Exit {EXIT_DRIFT} when unaccepted high-confidence drift exists."
)
@click.pass_context
@handle_errors
def drift(
    ctx: click.Context,
    tenant: str | None,
    selection: str | None,
    against: str | None,
    as_json: bool,
    fail_on_drift: bool,
) -> None:
    """Property-level drift of a tenant's selection: the current snapshot against its baseline."""
    if ctx.invoked_subcommand is not None:
        return
    if not tenant or not selection:
        raise click.UsageError("--tenant and --selection are required")
    from .drift import compute_drift

    with _scoped(tenant, selection) as (scope, sel):
        report = compute_drift(scope, sel, against=against)
    if as_json:
        click.echo(_dump(report.as_json()))
    else:
        counts = report.counts
        click.echo(
            f"{tenant}/{selection}: snapshot {report.current_snapshot_id} against {report.baseline_kind} "
            f"baseline {report.baseline_snapshot_id}: {counts.changed} changed, {counts.added} added, "
            f"{counts.missing} missing ({counts.accepted} accepted, {counts.unaccepted_high} alerting)"
        )
        rows = [
            (
                i.kind,
                i.confidence,
                "yes" if i.accepted else "",
                i.policy_type,
                i.external_id,
                _short(i.display_name or "", 40),
                c.path if c else "",
                _short(c.baseline) if c else "",
                _short(c.current) if c else "",
            )
            for i in report.items
            for c in (i.changes if i.kind == "changed" else (None,))
        ]
        if rows:
            print_table(
                rows,
                [
                    "kind",
                    "confidence",
                    "accepted",
                    "policy_type",
                    "external_id",
                    "name",
                    "path",
                    "baseline",
                    "current",
                ],
            )
        for i in report.items:
            if i.reason:
                click.echo(f"low confidence: {i.policy_type} {i.external_id}: {i.reason}")
    if fail_on_drift and report.counts.unaccepted_high:
        sys.exit(EXIT_DRIFT)


@drift.command("accept")
@_tenant_option
@_selection_option
@click.option("--policy-type", required=True)
@click.option("--external-id", required=True)
@click.option("--path", help="Accept only the changes at or under this path (default: the whole item).")
@click.option("--note", required=True, help="Why this deviation is accepted.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def drift_accept(
    tenant: str,
    selection: str,
    policy_type: str,
    external_id: str,
    path: str | None,
    note: str,
    as_json: bool,
) -> None:
    """Accept an object's current drift: it stays listed with accepted=true and stops alerting until
    its value changes again."""
    from .drift.deviations import accept_deviation

    if not note.strip():
        raise click.BadParameter("must say why", param_hint="--note")
    with _scoped(tenant, selection) as (scope, sel):
        acc = accept_deviation(
            scope,
            sel,
            policy_type=policy_type,
            external_id=external_id,
            path=path,
            note=note,
            accepted_by=operator(),
        )
    click.echo(
        _dump(asdict(acc))
        if as_json
        else f"acceptance {acc.id}: {policy_type} {external_id}"
        f"{' at ' + path if path else ''} accepted by {acc.accepted_by}"
    )


@drift.command("accepted")
@click.option("--tenant", help="Only this tenant.")
@click.option("--selection", help="Only this selection (with --tenant).")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked acceptances.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def drift_accepted(tenant: str | None, selection: str | None, include_revoked: bool, as_json: bool) -> None:
    """List accepted deviations (active ones; --all adds revoked), with who and when."""
    from .store.drift_acceptances import list_acceptances
    from .store.scope import tenant_scope
    from .store.selections import get_selection
    from .store.tenants import get_tenant, list_tenants

    rows: list[dict[str, Any]] = []
    with database().connect() as conn:
        tenants = [get_tenant(conn, tenant)] if tenant else list_tenants(conn)
        lineage = get_selection(conn, selection).selection_hash if selection else None
        for t in tenants:
            for a in list_acceptances(
                tenant_scope(conn, t.tenant_id), lineage, include_revoked=include_revoked
            ):
                rows.append({"tenant": t.key, **asdict(a)})
    if as_json:
        click.echo(_dump(rows))
        return
    print_table(
        [
            (
                r["id"],
                r["tenant"],
                r["selection_name"],
                r["policy_type"],
                r["external_id"],
                r["path"] or "*",
                r["accepted_by"],
                f"{r['accepted_at']:%Y-%m-%d %H:%M}",
                "revoked" if r["revoked_at"] else "active",
                _short(r["note"]),
            )
            for r in rows
        ],
        ["id", "tenant", "selection", "policy_type", "external_id", "path", "by", "at", "state", "note"],
    )


@drift.command("revoke")
@click.argument("acceptance_id", type=int)
@handle_errors
def drift_revoke(acceptance_id: int) -> None:
    """Revoke an accepted deviation: the item alerts again (the record stays, with who and when)."""
    from .drift.deviations import revoke

    with database().connect() as conn:
        acc = revoke(conn, acceptance_id, operator())
    click.echo(f"acceptance {acc.id} revoked by {acc.revoked_by}")


# --- the demo's drift round (called by `tenantatlas demo`) ------------------------------------------
def demo_drift_round(
    instance: DagsterInstance,
    db: Database,
    emu: Any,
    snapshot_rows: list[dict[str, Any]],
    log_level: str = "CRITICAL",
) -> list[dict[str, Any]]:
    """After the demo's snapshot round: change one snapshotted tenant (drift/demo.py), snapshot it
    again and materialize its drift, all through Dagster; one row per drift item found (empty when no
    tenant has enough content for the round). The last tenant that fits is used, so the missing-items
    round (which changes the first two) does not mix into it."""
    from .cli_dagster import execute_partition_job
    from .cli_snapshots import materialize_snapshot
    from .defs.drift import DRIFT_JOB_NAME
    from .defs.partitions import PartitionRef
    from .drift.demo import apply_demo_drift
    from .store.drift_items import read_partition
    from .store.scope import tenant_scope
    from .store.tenants import get_tenant

    for row in reversed([r for r in snapshot_rows if r.get("status") == "succeeded"]):
        ref = PartitionRef(row["tenant_key"], row["selection_name"])
        try:
            demo = apply_demo_drift(emu, ref.tenant)
        except ValueError:
            continue
        click.echo(f"\nDrift round: {demo.story}", err=True)
        materialize_snapshot(instance, db, ref, log_level)
        result = execute_partition_job(instance, DRIFT_JOB_NAME, ref, log_level)
        with db.connect() as conn:
            items = read_partition(tenant_scope(conn, get_tenant(conn, ref.tenant).tenant_id), ref.selection)
        expected = {e.external_id for e in demo.expected}
        return [
            {
                "tenant": ref.tenant,
                "selection": ref.selection,
                "dagster_run_id": result.run_id,
                "kind": i.kind,
                "confidence": i.confidence,
                "accepted": i.accepted,
                "policy_type": i.policy_type,
                "name": i.display_name,
                "external_id": i.external_id,
                "first_change": i.changes[0]["path"] if i.changes and i.kind == "changed" else None,
                "made_by_demo": i.external_id in expected,
            }
            for i in items
        ]
    return []


def print_drift_round(rows: list[dict[str, Any]]) -> None:
    """The demo's drift summary (the re-encrypted secret is, correctly, not among the items)."""
    click.echo(
        f"\nDrift of {rows[0]['tenant']}/{rows[0]['selection']} (policy_drift, against the previous "
        "snapshot; the re-encrypted secret does not show):"
    )
    print_table(
        [
            (
                r["kind"],
                r["confidence"],
                r["policy_type"],
                _short(r["name"] or r["external_id"], 40),
                r["first_change"] or "",
            )
            for r in rows
        ],
        ["kind", "confidence", "policy_type", "name", "first change"],
    )
    click.echo("See `tenantatlas drift --tenant KEY --selection NAME` and docs/drift.md.")
