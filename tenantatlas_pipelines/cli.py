"""The `tenantatlas` command: store administration, the emulator, and (via cli_dagster) the pipeline."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

import click

from .cli_common import database as _db
from .cli_common import handle_errors, print_table
from .errors import ErrorCode, TenantAtlasError


@click.group()
def cli() -> None:
    """TenantAtlas inventory pipelines."""


# --- db ---------------------------------------------------------------------------------------------
@cli.group()
def db() -> None:
    """The PostgreSQL store (embedded unless TENANTATLAS_DATABASE_URL is set)."""


@db.command("migrate")
@handle_errors
def db_migrate() -> None:
    """Apply pending schema migrations from sql/."""
    from .db import Database, redact_url

    database = Database.from_env(migrate=False)
    applied = database.migrate()
    click.echo(
        f"database {redact_url(database.url)}: "
        + (f"applied {', '.join(applied)}" if applied else "schema up to date")
    )


@db.command("url")
@handle_errors
def db_url() -> None:
    """Print the database URL (password redacted)."""
    from .db import redact_url

    click.echo(redact_url(_db().url))


@db.command("stop")
@handle_errors
def db_stop() -> None:
    """Stop the embedded PostgreSQL server of TENANTATLAS_HOME."""
    from .config import home_dir
    from .db.embedded import stop_server

    click.echo("stopped" if stop_server(home_dir()) else "not running")


@cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def status(as_json: bool) -> None:
    """Migrate, then print the store's state: tenants, selections, items and latest runs."""
    from .db import redact_url
    from .store.status import store_status

    database = _db()
    with database.connect() as conn:
        state = store_status(conn)
    if as_json:
        click.echo(json.dumps({"database": redact_url(database.url), **state}, default=str, indent=2))
        return
    click.echo(f"database: {redact_url(database.url)}")
    click.echo(f"migrations: {', '.join(state['migrations'])}")
    click.echo(f"selections: {', '.join(s['name'] for s in state['selections'])}")
    click.echo(
        f"tenants: {len(state['tenants'])}, inventory items: {state['items']}, sync runs: {state['runs']}"
    )
    if state["latest_runs"]:
        print_table(
            [
                (
                    r["tenant_key"],
                    r["selection_name"],
                    r["id"],
                    r["status"],
                    r["items_observed"],
                    ",".join(r["error_codes"]),
                    r["finished_at"],
                )
                for r in state["latest_runs"]
            ],
            ["tenant", "selection", "run", "status", "observed", "errors", "finished"],
        )


# --- tenants ----------------------------------------------------------------------------------------
@cli.group()
def tenants() -> None:
    """The tenant registry."""


@tenants.command("add")
@click.option("--tenant-id", required=True, help="The Entra tenant GUID.")
@click.option("--key", required=True, help="Short key used in partitions and the CLI, e.g. contoso.")
@click.option("--name", required=True, help="Display name.")
@click.option("--disabled", is_flag=True, help="Register a new tenant without scheduling it.")
@click.option(
    "--rename-key",
    is_flag=True,
    help="Allow a registered tenant's key to change (its Dagster partition moves to the new key).",
)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def tenants_add(tenant_id: str, key: str, name: str, disabled: bool, rename_key: bool, as_json: bool) -> None:
    """Register a tenant, or update a registered tenant's name.

    Re-adding never enables or disables a tenant (use `tenants enable` / `disable`), and changes its
    key only with --rename-key; what changed is reported.
    """
    from .store.tenants import register_tenant

    with _db().connect() as conn:
        change = register_tenant(conn, tenant_id, key, name, enabled=not disabled, rename_key=rename_key)
    tenant = change.tenant
    notes = []
    if change.action != "added" and disabled and tenant.enabled:
        notes.append(f"--disabled only applies when registering; `tenantatlas tenants disable {tenant.key}`")
    if change.action != "added" and not tenant.enabled:
        notes.append(f"the tenant stays disabled; `tenantatlas tenants enable {tenant.key}` enables it")
    if "key" in change.changes:
        old, new = change.changes["key"]
        notes.append(f"key changed {old} -> {new}: its Dagster partition is now {new!r}")
    if as_json:
        click.echo(json.dumps({**change.to_json(), "notes": notes}))
        return
    detail = "; ".join(f"{f}: {old} -> {new}" for f, (old, new) in change.changes.items())
    state = "enabled" if tenant.enabled else "disabled"
    headline = f"tenant {tenant.key} ({tenant.tenant_id}) {change.action} ({state})"
    click.echo(headline + (f": {detail}" if detail else ""))
    for note in notes:
        click.echo(f"note: {note}")


@tenants.command("list")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def tenants_list(as_json: bool) -> None:
    """List registered tenants."""
    from .store.tenants import list_tenants

    with _db().connect() as conn:
        rows = list_tenants(conn)
    if as_json:
        click.echo(json.dumps([asdict(t) for t in rows], indent=2))
    else:
        print_table(
            [(t.key, t.tenant_id, t.name, "yes" if t.enabled else "no") for t in rows],
            ["key", "tenant_id", "name", "enabled"],
        )


def _set_enabled(key: str, enabled: bool) -> None:
    from .store.tenants import set_enabled

    with _db().connect() as conn:
        tenant = set_enabled(conn, key, enabled)
    click.echo(f"tenant {tenant.key} {'enabled' if enabled else 'disabled'}")


@tenants.command("disable")
@click.argument("key")
@handle_errors
def tenants_disable(key: str) -> None:
    """Stop scheduling a tenant (its inventory is kept)."""
    _set_enabled(key, False)


@tenants.command("enable")
@click.argument("key")
@handle_errors
def tenants_enable(key: str) -> None:
    """Schedule a tenant again."""
    _set_enabled(key, True)


# --- selections -------------------------------------------------------------------------------------
@cli.group()
def selections() -> None:
    """Named selections of policy types."""


@selections.command("add")
@click.argument("name")
@click.option("--policy-types", required=True, help="Comma-separated policy-type keys.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def selections_add(name: str, policy_types: str, as_json: bool) -> None:
    """Create or redefine a named selection."""
    from .store.selections import add_selection

    types = [t.strip() for t in policy_types.split(",") if t.strip()]
    with _db().connect() as conn:
        sel = add_selection(conn, name, types)
    if as_json:
        click.echo(json.dumps(asdict(sel)))
    else:
        click.echo(f"selection {sel.name}: {len(sel.policy_types)} types, hash {sel.selection_hash}")


@selections.command("list")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def selections_list(as_json: bool) -> None:
    """List named selections with their hashes."""
    from .store.selections import list_selections

    with _db().connect() as conn:
        rows = list_selections(conn)
    if as_json:
        click.echo(json.dumps([asdict(s) for s in rows], indent=2))
    else:
        print_table(
            [(s.name, s.selection_hash[:12], ",".join(s.policy_types)) for s in rows],
            ["name", "hash", "policy_types"],
        )


@cli.command("policy-types")
def policy_types() -> None:
    """List the policy types the registry knows."""
    from .policy_types import REGISTRY

    print_table(
        [(t.key, t.api_version, t.path, t.name_field, t.note) for t in REGISTRY.values()],
        ["key", "api", "path", "name field", "note"],
    )


def _register_optional() -> None:
    """Commands from modules that may not be importable in a trimmed install stay optional."""
    for module, names in (
        ("cli_emulator", ("emulator",)),
        ("cli_dagster", ("demo", "dev", "sync", "missing")),
        ("cli_snapshots", ("snapshot", "snapshots", "show")),
        ("cli_ui", ("ui",)),
        ("cli_deps", ("deps",)),
        ("cli_compare", ("compare",)),
    ):
        try:
            mod = __import__(f"{__package__}.{module}", fromlist=list(names))
        except ImportError as exc:
            if module not in str(exc):
                raise
            continue
        for name in names:
            command = getattr(mod, name, None)
            if isinstance(command, click.Command):
                cli.add_command(command, name)


_register_optional()


def _register_onboarding() -> None:
    """`tenants import` / `tenants discover` live in cli_onboarding (onboarding at MSP scale)."""
    from .cli_onboarding import tenants_discover, tenants_import

    tenants.add_command(tenants_import, "import")
    tenants.add_command(tenants_discover, "discover")


_register_onboarding()


def _register_drift() -> None:
    """`baseline` and `drift` live in cli_drift (issue 13)."""
    from .cli_drift import baseline, drift

    cli.add_command(baseline, "baseline")
    cli.add_command(drift, "drift")


_register_drift()


def main() -> None:
    try:
        cli(standalone_mode=True)
    except TenantAtlasError as exc:  # commands not wrapped by handle_errors
        click.echo(f"error [{exc.code}]: {exc.message}", err=True)
        sys.exit(2)


__all__ = ["ErrorCode", "cli", "handle_errors", "main", "print_table"]
