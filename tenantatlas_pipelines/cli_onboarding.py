"""`tenantatlas tenants import` and `tenantatlas tenants discover`: thin wrappers over onboarding/.

Both print what they would do or did as a table (or `--json`), and exit 2 when nothing could be done:
import problems are listed one per line as `FILE:LINE: error [code]: message`, the form editors and CI
logs turn into links.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from .cli_common import database, handle_errors, print_table

PARTNER_ENV = "TENANTATLAS_GDAP_PARTNER_TENANT"


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _show(value: Any) -> str:
    return _yes(value) if isinstance(value, bool) else str(value)


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate and show the plan; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report on stdout.")
@handle_errors
def tenants_import(file: Path, dry_run: bool, as_json: bool) -> None:
    """Import tenants from a CSV file: validated first, applied in one transaction.

    The file has the header tenant_id,key,name[,enabled]; FILE may be - for stdin.
    Every line is validated before anything is written; any problem means nothing is written (exit 2).
    Tenants registered but not in the file are listed and left alone. See docs/onboarding.md.
    """
    from .onboarding import import_tenants, parse_csv

    source = "<stdin>" if str(file) == "-" else str(file)
    parsed = parse_csv(sys.stdin.buffer.read() if source == "<stdin>" else file.read_bytes())
    with database().connect() as conn:
        result = import_tenants(conn, parsed, dry_run=dry_run)
    plan = result.plan
    if as_json:
        click.echo(json.dumps(result.to_json(source), indent=2, ensure_ascii=False))
    elif plan.ok:
        added, updated, unchanged = plan.of("added"), plan.of("updated"), plan.of("unchanged")
        click.echo(
            f"{source}: {len(plan.entries)} tenant(s): {len(added)} added, {len(updated)} updated, "
            f"{len(unchanged)} unchanged; {len(plan.not_in_file)} registered tenant(s) not in the file "
            "(left alone)"
        )
        rows = [
            (
                e.action,
                e.line,
                e.tenant.key,
                e.tenant.tenant_id,
                e.tenant.name,
                _yes(e.tenant.enabled),
                "; ".join(f"{f}: {_show(old)} -> {_show(new)}" for f, (old, new) in e.changes.items()),
            )
            for e in (*added, *updated, *unchanged)
        ] + [("not_in_file", "", t.key, t.tenant_id, t.name, _yes(t.enabled), "") for t in plan.not_in_file]
        if rows:
            print_table(rows, ["action", "line", "key", "tenant_id", "name", "enabled", "changes"])
        if dry_run:
            click.echo("dry run: nothing written")
        elif result.applied:
            click.echo(f"applied in one transaction: {len(added)} added, {len(updated)} updated")
        else:
            click.echo("nothing to change")
    else:
        for p in plan.problems:
            column = f" ({p.column})" if p.column else ""
            click.echo(f"{source}:{p.line}: error [{p.code}]{column}: {p.message}", err=True)
        click.echo(f"nothing written: {len(plan.problems)} problem(s) in {source}", err=True)
    if not plan.ok:
        sys.exit(2)


@click.command("discover")
@click.option(
    "--partner-tenant",
    envvar=PARTNER_ENV,
    required=True,
    help=f"The MSP's own (partner) tenant GUID; default ${PARTNER_ENV}.",
)
@click.option("--apply", "apply", is_flag=True, help="Register the new customers (default: dry run).")
@click.option("--disabled", is_flag=True, help="Register new customers disabled (enable them deliberately).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report on stdout.")
@handle_errors
def tenants_discover(partner_tenant: str, apply: bool, disabled: bool, as_json: bool) -> None:
    """Register a GDAP partner's customer tenants (dry run unless --apply).

    Lists the partner's delegated-admin customers through Microsoft Graph and plans their registration.
    Needs the DelegatedAdminRelationship.Read.All application permission in the partner tenant and the
    usual TENANTATLAS_CLIENT_* credentials. Registered tenants keep their key, name and state.
    """
    from .graph.client import GraphClient
    from .graph.settings import GraphSettings
    from .onboarding import discover_tenants

    with GraphClient(GraphSettings.from_env()) as client, database().connect() as conn:
        result = discover_tenants(conn, client, partner_tenant, apply=apply, enabled=not disabled)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
        return
    plan = result.plan
    new, registered = plan.of("new"), plan.of("registered")
    click.echo(
        f"partner {plan.partner_tenant_id}: {len(plan.customers)} GDAP customer(s): {len(new)} new, "
        f"{len(registered)} already registered; {len(plan.not_discovered)} registered tenant(s) not among "
        "them (left alone)"
    )
    rows = (
        [(c.status, c.tenant.key, c.tenant.tenant_id, c.tenant.name, _yes(c.tenant.enabled)) for c in new]
        + [
            (c.status, c.tenant.key, c.tenant.tenant_id, c.tenant.name, _yes(c.tenant.enabled))
            for c in registered
        ]
        + [("not_discovered", t.key, t.tenant_id, t.name, _yes(t.enabled)) for t in plan.not_discovered]
    )
    if rows:
        print_table(rows, ["status", "key", "tenant_id", "name", "enabled"])
    for s in plan.skipped:
        click.echo(f"skipped {s.item}: {s.reason}", err=True)
    if not apply:
        click.echo(
            f"dry run: nothing written; --apply registers the {len(new)} new tenant(s)"
            + (" (add --disabled to register them disabled)" if new else "")
        )
    elif result.applied:
        click.echo(f"registered {len(new)} tenant(s) ({'disabled' if disabled else 'enabled'})")
    else:
        click.echo("nothing to register")
