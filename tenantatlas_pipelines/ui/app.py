"""The web application: routes, request parsing and rendering. Reads go through queries.py only.

Handlers are plain (sync) functions: Starlette runs them in its thread pool, each with its own analyst
session from the reader, so a slow page never blocks the event loop.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..dependencies.lookup import pick_target
from ..drift.present import display_path, display_value, mask
from ..errors import ErrorCode, TenantAtlasError
from ..snapshots import diff as snapshot_diff
from . import charts, format, history_queries, paging, portfolio, queries
from .error_docs import error_docs
from .reader import AnalystReader
from .security import SecurityMiddleware, allowed_hosts

HERE = Path(__file__).parent
PAGE_SIZE = 25
RUNS_PAGE_SIZE = 30
PORTFOLIO_PAGE_SIZE = 100  # tenants per portfolio page (sorted and counted over all of them)
DEFAULT_STALE_AFTER = timedelta(hours=48)
CSV_COLUMNS = (
    "tenant_key", "policy_type", "external_id", "display_name", "state",
    "first_seen_at", "last_seen_at", "last_changed_at",
)  # fmt: skip
# CSV cells a spreadsheet would run as a formula get a leading quote (display names are attacker text).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Settings:
    stale_after: timedelta = DEFAULT_STALE_AFTER
    page_size: int = PAGE_SIZE
    runs_page_size: int = RUNS_PAGE_SIZE
    portfolio_page_size: int = PORTFOLIO_PAGE_SIZE


def url(path: str, **params: Any) -> str:
    """`path` with the non-empty params as a query string."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "", False)})
    return f"{path}?{query}" if query else path


def object_url(tenant_key: str, policy_type: str, external_id: str) -> str:
    return f"/tenants/{quote(tenant_key)}/objects/{quote(policy_type)}/{quote(external_id, safe='')}"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value: display names and metadata are attacker-controlled text
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ts=format.timestamp,
        ts_full=format.timestamp_full,
        age=format.age,
        duration=format.duration,
        count=format.count,
        short_code=format.short_code,
    )
    env.globals.update(url=url, object_url=object_url, quote=quote, drift_changes=drift_changes)
    return env


def csv_safe(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


class UI:
    """The pages, bound to one reader and one template environment."""

    def __init__(self, reader: AnalystReader, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.reader = reader
        self.settings = settings
        self.clock = clock
        self.env = _environment()

    def render(self, request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(
            request=request, now=self.clock(), path=request.url.path, **context
        )
        return HTMLResponse(html, status_code=status_code)

    # --- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _tenant(conn: Any, key: str) -> queries.TenantInfo:
        tenant = queries.get_tenant(conn, key)
        if tenant is None:
            raise HTTPException(404, f"There is no tenant with the key {key!r}.")
        return tenant

    @staticmethod
    def _cursor(request: Request, parts: int) -> tuple[tuple[str, ...] | None, queries.Direction]:
        after, before = request.query_params.get("after"), request.query_params.get("before")
        try:
            if before:
                return paging.decode(before, parts), "prev"
            if after:
                return paging.decode(after, parts), "next"
        except paging.BadCursor:
            raise HTTPException(
                400, "This page link is not valid; start again from the first page."
            ) from None
        return None, "next"

    @staticmethod
    def _page_number(request: Request) -> int:
        try:
            return max(1, int(request.query_params.get("p", "1")))
        except ValueError:
            return 1

    # --- pages -----------------------------------------------------------------------------------

    def portfolio(self, request: Request) -> Response:
        q = request.query_params
        sort = q.get("sort", "tenant")
        if sort not in portfolio.SORTS and not sort.startswith("type:"):
            sort = "tenant"
        default_desc = portfolio.SORTS.get(sort, ("", True))[1]
        descending = {"asc": False, "desc": True}.get(q.get("order", ""), default_desc)
        now = self.clock()
        with self.reader.session() as conn:
            types = queries.policy_type_keys(conn)
            tenants = queries.list_tenants(conn)
            cells = queries.coverage(conn)
            last_runs = queries.last_runs(conn)
            drift = history_queries.unaccepted_drift_by_tenant(conn)
        rows = portfolio.build_rows(tenants, cells, last_runs, types, now, self.settings.stale_after, drift)
        totals = {
            "tenants": len(rows),
            "failing": sum(r.failing for r in rows),
            "stale": sum(r.stale for r in rows),
            "missing_high": sum(r.missing_high for r in rows),
            "missing_low": sum(r.missing_low for r in rows),
            "items": sum(r.items for r in rows),
            "drift": sum(r.drift for r in rows),
        }
        search, problems = q.get("q", ""), q.get("problems") == "1"
        rows = portfolio.sort_rows(portfolio.filter_rows(rows, search, problems), sort, descending)
        size = self.settings.portfolio_page_size
        pages = max(1, -(-len(rows) // size))
        number = min(self._page_number(request), pages)
        base = {"q": search, "problems": "1" if problems else "", "sort": sort, "order": q.get("order", "")}
        return self.render(
            request,
            "portfolio.html",
            rows=rows[(number - 1) * size : number * size],
            matching=len(rows),
            offset=(number - 1) * size,
            number=number,
            pages=pages,
            first_url=url("/", **base) if number > 1 else None,
            prev_url=url("/", **base, p=number - 1) if number > 1 else None,
            next_url=url("/", **base, p=number + 1) if number < pages else None,
            types=types,
            totals=totals,
            sort=sort,
            descending=descending,
            search=search,
            problems=problems,
            sorts=portfolio.SORTS,
            stale_hours=int(self.settings.stale_after.total_seconds() // 3600),
        )

    def _inventory_filter(self, request: Request, types: list[str]) -> queries.InventoryFilter:
        q = request.query_params
        policy_type = q.get("type") or None
        if policy_type is not None and policy_type not in types:
            raise HTTPException(400, f"Unknown policy type {policy_type!r}.")
        state = q.get("state") or None
        if state is not None and state not in queries.STATES:
            raise HTTPException(400, f"Unknown state {state!r}: use one of {', '.join(queries.STATES)}.")
        return queries.InventoryFilter(
            search=q.get("q", "").strip()[:200], policy_type=policy_type, state=state
        )

    def tenant(self, request: Request) -> Response:
        key = request.path_params["key"]
        cursor, direction = self._cursor(request, 3)
        number = self._page_number(request)
        now = self.clock()
        with self.reader.session() as conn:
            tenant = self._tenant(conn, key)
            types = queries.policy_type_keys(conn)
            f = self._inventory_filter(request, types)
            cells = queries.coverage(conn, tenant.tenant_id)
            page = queries.inventory_page(
                conn, tenant.tenant_id, f, size=self.settings.page_size,
                cursor=cursor, direction=direction,  # type: ignore[arg-type]
            )  # fmt: skip
        row = portfolio.build_rows([tenant], cells, {}, types, now, self.settings.stale_after)[0]
        base = {"q": f.search, "type": f.policy_type, "state": f.state}
        path = f"/tenants/{quote(tenant.key)}"
        next_url = prev_url = None
        if page.rows and page.has_next:
            next_url = url(path, **base, after=paging.encode(page.rows[-1].key), p=number + 1)
        if page.rows and page.has_prev:
            prev_url = url(path, **base, before=paging.encode(page.rows[0].key), p=max(1, number - 1))
        return self.render(
            request,
            "tenant.html",
            tenant=tenant,
            row=row,
            types=types,
            states=queries.STATES,
            f=f,
            page=page,
            number=number,
            next_url=next_url,
            prev_url=prev_url,
            first_url=url(path, **base) if page.has_prev else None,
            csv_url=url(f"{path}/inventory.csv", **base),
            tab="inventory",
        )

    def inventory_csv(self, request: Request) -> Response:
        key = request.path_params["key"]
        with self.reader.session() as conn:
            tenant = self._tenant(conn, key)
            f = self._inventory_filter(request, queries.policy_type_keys(conn))

        def lines() -> Iterator[str]:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(CSV_COLUMNS)
            with self.reader.session() as conn:
                for n, r in enumerate(queries.iter_inventory(conn, tenant.tenant_id, f), 1):
                    writer.writerow(
                        (
                            tenant.key, r.policy_type, csv_safe(r.external_id),
                            csv_safe(r.display_name or ""), r.state, r.first_seen_at.isoformat(),
                            r.last_seen_at.isoformat(), r.last_changed_at.isoformat(),
                        )
                    )  # fmt: skip
                    if n % 500 == 0:
                        yield buffer.getvalue()
                        buffer.seek(0)
                        buffer.truncate()
            yield buffer.getvalue()

        name = f"{tenant.key}-inventory.csv"
        return StreamingResponse(
            lines(),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    def object_page(self, request: Request) -> Response:
        key = request.path_params["key"]
        policy_type = request.path_params["policy_type"]
        external_id = request.path_params["external_id"]
        with self.reader.session() as conn:
            tenant = self._tenant(conn, key)
            obj = queries.get_object(conn, tenant.tenant_id, policy_type, external_id)
            if obj is None:
                raise HTTPException(404, f"{tenant.key} has no {policy_type} object with id {external_id!r}.")
            missing = queries.object_missing(conn, obj)
            versions = history_queries.object_versions(conn, tenant.tenant_id, policy_type, external_id)
            pair = _version_pair(request, versions)
            contents = history_queries.version_contents(
                conn,
                tenant.tenant_id,
                policy_type,
                external_id,
                [v for v in (*pair, _last_id(versions)) if v],
            )
            drift = history_queries.object_drift(conn, tenant.tenant_id, policy_type, external_id)
            # Assignments named as each version's snapshot resolved them (the diff keys them by id).
            first_snapshot = {v.version_id: v.first_snapshot_id for v in versions}
            refs = {
                v: history_queries.snapshot_references(conn, tenant.tenant_id, first_snapshot[v])
                for v in pair
                if v in first_snapshot
            }
            uses = history_queries.edges_of_object(conn, tenant.tenant_id, policy_type, external_id)
            target_type = USED_AS_TARGET.get(policy_type)
            used_by = (
                history_queries.edges_using(conn, tenant.tenant_id, target_type, external_id)
                if target_type
                else []
            )
        meta = [(k, _meta_text(obj.meta_jsonb[k])) for k in sorted(obj.meta_jsonb)]
        old, new = pair
        changes = None
        if old and new and old in contents and new in contents:
            # The snapshots package's one diff; values masked for display like drift's (never an HMAC).
            changes = [
                (
                    display_path(c, refs.get(old), refs.get(new)),
                    _display(display_value(c.old, c.segments, refs.get(old))),
                    _display(display_value(c.new, c.segments, refs.get(new))),
                )
                for c in snapshot_diff(contents[old], contents[new], policy_type=policy_type)
            ]
        latest = contents.get(_last_id(versions) or 0)
        return self.render(
            request,
            "object.html",
            tenant=tenant,
            obj=obj,
            meta=meta,
            missing=missing,
            versions=versions,
            version_from=old,
            version_to=new,
            changes=changes,
            content=None
            if latest is None
            else json.dumps(mask(latest), indent=2, ensure_ascii=False, sort_keys=True),
            drift=drift,
            uses=uses,
            used_by=used_by,
            target_type=target_type,
        )

    def tenant_runs(self, request: Request) -> Response:
        key = request.path_params["key"]
        before = _int_param(request, "before")
        with self.reader.session() as conn:
            tenant = self._tenant(conn, key)
            selections = queries.tenant_selections(conn, tenant.tenant_id)
            wanted = request.query_params.get("selection")
            selection = (
                wanted
                if wanted in selections
                else ("all" if "all" in selections else next(iter(selections), None))
            )
            history = queries.run_history(conn, tenant.tenant_id, selection) if selection else []
            page = queries.runs_page(
                conn, tenant_id=tenant.tenant_id, size=self.settings.runs_page_size, before_id=before
            )
        path = f"/tenants/{quote(tenant.key)}/runs"
        return self.render(
            request,
            "tenant_runs.html",
            tenant=tenant,
            selections=selections,
            selection=selection,
            charts=_run_charts(history),
            page=page,
            next_url=url(path, selection=selection, before=page.rows[-1].id) if page.has_next else None,
            first_url=url(path, selection=selection) if page.has_prev else None,
            tab="runs",
        )

    def runs(self, request: Request) -> Response:
        status = request.query_params.get("status") or None
        if status is not None and status not in RUN_STATUSES:
            raise HTTPException(400, f"Unknown run status {status!r}.")
        before = _int_param(request, "before")
        with self.reader.session() as conn:
            page = queries.runs_page(
                conn, tenant_id=None, status=status, size=self.settings.runs_page_size, before_id=before
            )
        return self.render(
            request,
            "runs.html",
            page=page,
            status=status,
            statuses=RUN_STATUSES,
            next_url=url("/runs", status=status, before=page.rows[-1].id) if page.has_next else None,
            first_url=url("/runs", status=status) if page.has_prev else None,
        )

    def run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        with self.reader.session() as conn:
            run = queries.get_run(conn, run_id)
            if run is None:
                raise HTTPException(404, f"There is no sync run {run_id}.")
            types = queries.run_types(conn, run_id)
        docs = error_docs()
        codes = sorted({*run.error_codes, *(t.error_code for t in types if t.error_code)})
        return self.render(
            request, "run.html", run=run, types=types, docs=docs, error_codes=codes, tab="runs"
        )

    def missing(self, request: Request) -> Response:
        q = request.query_params
        confidence = q.get("confidence") or None
        if confidence not in (None, "high", "low"):
            raise HTTPException(400, "Confidence is high or low.")
        cursor, direction = self._cursor(request, 4)
        number = self._page_number(request)
        with self.reader.session() as conn:
            tenant = self._tenant(conn, q["tenant"]) if q.get("tenant") else None
            selections = queries.selection_names(conn)
            selection = q.get("selection") or None
            if selection is not None and selection not in selections:
                raise HTTPException(400, f"Unknown selection {selection!r}.")
            tenants = queries.list_tenants(conn)
            page = queries.missing_page(
                conn, tenant_id=tenant.tenant_id if tenant else None, selection=selection,
                confidence=confidence, size=self.settings.page_size,
                cursor=cursor, direction=direction,  # type: ignore[arg-type]
            )  # fmt: skip
        base = {"tenant": tenant.key if tenant else None, "selection": selection, "confidence": confidence}
        next_url = prev_url = None
        if page.rows and page.has_next:
            next_url = url("/missing", **base, after=paging.encode(page.rows[-1].key), p=number + 1)
        if page.rows and page.has_prev:
            prev_url = url("/missing", **base, before=paging.encode(page.rows[0].key), p=max(1, number - 1))
        return self.render(
            request,
            "missing.html",
            page=page,
            tenant=tenant,
            tenants=tenants,
            selections=selections,
            selection=selection,
            confidence=confidence,
            number=number,
            next_url=next_url,
            prev_url=prev_url,
            first_url=url("/missing", **base) if page.has_prev else None,
            tab="missing",
        )

    def tenant_snapshots(self, request: Request) -> Response:
        key = request.path_params["key"]
        before = _int_param(request, "before")
        with self.reader.session() as conn:
            tenant = self._tenant(conn, key)
            page = history_queries.snapshots_page(
                conn, tenant.tenant_id, size=self.settings.runs_page_size, before_id=before
            )
        path = f"/tenants/{quote(tenant.key)}/snapshots"
        return self.render(
            request,
            "tenant_snapshots.html",
            tenant=tenant,
            page=page,
            next_url=url(path, before=page.rows[-1].id) if page.has_next else None,
            first_url=path if page.has_prev else None,
            tab="snapshots",
        )

    def snapshot(self, request: Request) -> Response:
        snapshot_id = request.path_params["snapshot_id"]
        with self.reader.session() as conn:
            snap = history_queries.get_snapshot(conn, snapshot_id)
            if snap is None:
                raise HTTPException(404, f"There is no snapshot {snapshot_id}.")
            types = history_queries.snapshot_types(conn, snapshot_id)
        codes = sorted({*snap.error_codes, *(t.error_code for t in types if t.error_code)})
        return self.render(
            request, "snapshot.html", snap=snap, types=types, docs=error_docs(), error_codes=codes
        )

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

    async def error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "Something went wrong."
        return self.render(request, "error.html", status_code=status, status=status, detail=detail)


RUN_STATUSES = ("running", "succeeded", "partial", "failed", "skipped")
# Inventory objects that are themselves dependency targets: what uses them is on their page.
USED_AS_TARGET = {"assignmentFilter": "assignment_filter", "roleScopeTag": "scope_tag"}


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise HTTPException(400, f"{name} must be a number.") from None


def _display(value: Any) -> str | None:
    """A diff value as JSON text for people (secrets masked); None stays None (absent)."""
    if value is None:
        return None
    return json.dumps(mask(value), ensure_ascii=False, sort_keys=True)


def drift_changes(item: history_queries.DriftItemRow) -> list[tuple[str, str | None, str | None]]:
    """A published drift item's changes as (path, baseline, current) display texts."""
    return [(c["path"], _display(c.get("baseline")), _display(c.get("current"))) for c in item.changes]


def _last_id(versions: list[history_queries.VersionRow]) -> int | None:
    return versions[-1].version_id if versions else None


def _version_pair(
    request: Request, versions: list[history_queries.VersionRow]
) -> tuple[int | None, int | None]:
    """The two versions to compare: `from` and `to` from the query, by default the last two."""
    ids = [v.version_id for v in versions]
    default = (ids[-2] if len(ids) > 1 else None, ids[-1] if ids else None)
    old, new = _int_param(request, "from"), _int_param(request, "to")
    if old is None and new is None:
        return default
    if (old is not None and old not in ids) or (new is not None and new not in ids):
        raise HTTPException(400, "Pick two versions of this object to compare.")
    return (old or default[0], new or default[1])


def _meta_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _run_charts(history: list[queries.RunRow]) -> dict[str, Any] | None:
    """Run durations (bars) and objects observed (line) of one tenant + selection, oldest to newest."""
    if not history:
        return None
    first, last = format.timestamp(history[0].started_at), format.timestamp(history[-1].started_at)
    durations = [
        charts.Point(
            r.seconds, f"s-{r.status}",
            f"run {r.id} · {r.status} · {format.duration(r.seconds)} · {format.timestamp(r.started_at)}",
            f"/runs/{r.id}",
        )
        for r in history
    ]  # fmt: skip
    items = [
        charts.Point(
            None if r.status in ("skipped", "running") else float(r.items_observed), f"s-{r.status}",
            f"run {r.id} · {r.items_observed} objects · {r.status} · {format.timestamp(r.started_at)}",
            f"/runs/{r.id}",
        )
        for r in history
    ]  # fmt: skip
    return {
        "durations": charts.bar_chart(durations, title="Run duration", unit=" s", first=first, last=last),
        "items": charts.line_chart(items, title="Objects observed", unit="", first=first, last=last),
        "runs": len(history),
    }


def create_app(
    reader: AnalystReader,
    *,
    token: str | None = None,
    host: str = "127.0.0.1",
    settings: Settings | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Starlette:
    """The ASGI application; `host` is the bind address (it decides which Host headers are served)."""
    ui = UI(reader, settings or Settings(), clock)
    routes = [
        Route("/", ui.portfolio, name="portfolio"),
        Route("/tenants/{key}", ui.tenant, name="tenant"),
        Route("/tenants/{key}/inventory.csv", ui.inventory_csv, name="inventory_csv"),
        Route("/tenants/{key}/runs", ui.tenant_runs, name="tenant_runs"),
        Route("/tenants/{key}/objects/{policy_type}/{external_id:path}", ui.object_page, name="object"),
        Route("/runs", ui.runs, name="runs"),
        Route("/runs/{run_id:int}", ui.run, name="run"),
        Route("/missing", ui.missing, name="missing"),
        Route("/tenants/{key}/snapshots", ui.tenant_snapshots, name="tenant_snapshots"),
        Route("/snapshots/{snapshot_id:int}", ui.snapshot, name="snapshot"),
        Route("/drift", ui.drift, name="drift"),
        Route("/dependencies", ui.dependencies, name="dependencies"),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [
        Middleware(SecurityMiddleware, token=token),
        Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(host, token)),
    ]
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: ui.error, 500: ui.error},
    )
