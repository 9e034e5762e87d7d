"""The Compare page: two tenants' latest succeeded snapshots of one selection, matched by the compare
package (`compare_sides`, `promotion_plan`: pure), loaded through the UI's analyst session.

The compare package's own loader binds a tenant scope (the pipeline role), which an analyst session
cannot take; the page builds its sides with the same `compare.run.read_side` on the analyst session
(same rows, same identity rewriting), so the page and `tenantatlas compare` agree.
"""

from __future__ import annotations

import psycopg
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..compare.engine import Side, compare_sides
from ..compare.plan import promotion_plan
from ..compare.run import read_side
from . import history_queries, queries
from .views import Views, display


def load_side(conn: psycopg.Connection, tenant: queries.TenantInfo, selection_hash: str) -> Side:
    """One tenant's latest succeeded snapshot as a compare side (400 when it has none)."""
    snapshot_id = history_queries.latest_succeeded_snapshot_id(conn, tenant.tenant_id, selection_hash)
    if snapshot_id is None:
        raise HTTPException(
            400,
            f"{tenant.key} has no succeeded snapshot of this selection yet "
            f"(tenantatlas snapshot --tenant {tenant.key} --selection …).",
        )
    return read_side(conn, tenant.tenant_id, tenant.key, snapshot_id, "succeeded")


def _changes(changes: tuple) -> list[tuple[str, str | None, str | None]]:  # type: ignore[type-arg]
    return [(c.path, display(c.old), display(c.new)) for c in changes]


class ComparePage(Views):
    """`/compare?source=&target=&selection=`: the match table and the promotion plan."""

    def compare(self, request: Request) -> Response:
        q = request.query_params
        with self.reader.session() as conn:
            tenants = queries.list_tenants(conn)
            selections = queries.selection_names(conn)
            source = self._tenant(conn, q["source"]) if q.get("source") else None
            target = self._tenant(conn, q["target"]) if q.get("target") else None
            selection = q.get("selection") or ("all" if "all" in selections else None)
            result = plan = None
            if source and target:
                if source.key == target.key:
                    raise HTTPException(400, "Pick two different tenants.")
                row = conn.execute(
                    "SELECT selection_hash FROM selections WHERE name = %s", (selection,)
                ).fetchone()
                if row is None:
                    raise HTTPException(400, f"Unknown selection {selection!r}.")
                result = compare_sides(load_side(conn, source, row[0]), load_side(conn, target, row[0]))
                plan = promotion_plan(result)
        return self.render(
            request,
            "compare.html",
            tenants=tenants,
            selections=selections,
            source=source,
            target=target,
            selection=selection,
            result=result,
            plan=plan,
            changes_of=_changes,
        )
