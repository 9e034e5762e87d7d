"""Pages over what snapshots derive: drift (open and accepted apart) and dependencies."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..dependencies.lookup import pick_target
from ..errors import ErrorCode, TenantAtlasError
from . import history_queries, queries
from .views import Views


class HistoryPages(Views):
    """Drift and dependencies."""

    def drift(self, request: Request) -> Response:
        q = request.query_params
        with self.reader.session() as conn:
            tenant = self._tenant(conn, q["tenant"]) if q.get("tenant") else None
            selection = q.get("selection") or None
            summaries = history_queries.drift_summaries(conn, tenant.tenant_id if tenant else None)
            items = acceptances = []
            if tenant is not None:
                items = history_queries.drift_items(conn, tenant.tenant_id, selection)
                acceptances = history_queries.active_acceptances(conn, tenant.tenant_id)
            tenants = queries.list_tenants(conn)
        shown = [s for s in summaries if selection is None or s.selection_name == selection]
        return self.render(
            request,
            "drift.html",
            tenant=tenant,
            tenants=tenants,
            selection=selection,
            selections=sorted({s.selection_name for s in summaries}),
            summaries=shown,
            open_items=[i for i in items if not i.accepted],
            accepted_items=[i for i in items if i.accepted],
            acceptances=acceptances,
            tab="drift",
        )

    def dependencies(self, request: Request) -> Response:
        q = request.query_params
        kind = q.get("kind") or "group"
        if kind not in history_queries.TARGET_KINDS:
            raise HTTPException(
                400, f"Unknown kind {kind!r}: use one of {', '.join(history_queries.TARGET_KINDS)}."
            )
        search = q.get("q", "").strip()[:300]
        problem = None
        target_id = None
        edges: list[history_queries.EdgeRow] = []
        with self.reader.session() as conn:
            tenants = queries.list_tenants(conn)
            tenant = self._tenant(conn, q["tenant"]) if q.get("tenant") else None
            usage = dangling = []
            if tenant is not None:
                if search:
                    candidates = history_queries.target_candidates(conn, tenant.tenant_id, kind, search)
                    try:
                        target_id = pick_target(kind.replace("_", " "), search, candidates)
                    except TenantAtlasError as exc:
                        if exc.code != ErrorCode.AMBIGUOUS_TARGET_NAME:
                            raise
                        problem = exc.message
                    if target_id is not None:
                        edges = history_queries.edges_using(conn, tenant.tenant_id, kind, target_id)
                usage = history_queries.usage(conn, tenant.tenant_id, kind)
                dangling = history_queries.dangling_edges(conn, tenant.tenant_id)
        return self.render(
            request,
            "dependencies.html",
            tenants=tenants,
            tenant=tenant,
            kind=kind,
            kinds=history_queries.TARGET_KINDS,
            search=search,
            problem=problem,
            target_id=target_id,
            edges=edges,
            usage=usage,
            dangling=dangling,
            tab="dependencies",
        )
