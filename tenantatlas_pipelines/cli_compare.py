"""`tenantatlas compare`: two tenants' snapshots of one selection, side by side (issue 14), read-only.

The command line and the JSON field names are a contract (docs/compare.md). Exit 0 when the compare ran
(whatever it found); 2 with an error code when it could not (unknown tenant or selection, no succeeded
snapshot, a snapshot id of another tenant or selection).
"""

from __future__ import annotations

import json

import click

from .cli_common import database, handle_errors, print_table


@click.command("compare")
@click.option("--source", required=True, help="Tenant key of the source (e.g. the golden tenant).")
@click.option("--target", required=True, help="Tenant key of the target.")
@click.option("--selection", required=True, help="Named selection both snapshots are of.")
@click.option("--source-snapshot", type=int, default=None, help="Snapshot id (default: latest succeeded).")
@click.option("--target-snapshot", type=int, default=None, help="Snapshot id (default: latest succeeded).")
@click.option("--plan", "with_plan", is_flag=True, help="Also print the promotion plan (no writes).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@handle_errors
def compare(source: str, target: str, selection: str, source_snapshot: int | None,
            target_snapshot: int | None, with_plan: bool, as_json: bool) -> None:
    """Compare two tenants' snapshots: objects matched by policy type + display name, references by name."""
    from .compare.plan import promotion_plan
    from .compare.run import CompareRequest, compare_document, compare_tenants

    with database().connect() as conn:
        result = compare_tenants(
            conn, CompareRequest(source, target, selection, source_snapshot, target_snapshot)
        )
    plan = promotion_plan(result) if with_plan else None
    if as_json:
        click.echo(json.dumps(compare_document(result, selection, plan), default=str, indent=2,
                              ensure_ascii=False))
        return
    s, t = result.source, result.target
    click.echo(f"{s.tenant_key} (snapshot {s.snapshot_id}) -> {t.tenant_key} (snapshot {t.snapshot_id}), "
               f"selection {selection}")
    print_table(
        [[i.policy_type, i.display_name[:60], i.match, len(i.changes) or ""]
         for i in result.items if i.match != "identical"],
        ["policy_type", "display_name", "match", "changes"],
    )
    click.echo("\n" + ", ".join(f"{n} {k}" for k, n in result.counts().items()))
    if plan is not None:
        click.echo("\nPromotion plan (nothing is written to Graph):")
        print_table(
            [[p.action, p.policy_type, p.display_name[:60], len(p.changes) or "",
              ", ".join(f"{b.kind} {b.name or b.source_id}" for b in p.blocked_by)] for p in plan],
            ["action", "policy_type", "display_name", "changes", "blocked_by"],
        )
