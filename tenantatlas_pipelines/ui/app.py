"""The web application: routes, middleware and the error page; the pages are in inventory_pages,
run_pages and history_pages (views.py has what they share)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .compare_page import ComparePage
from .history_pages import HistoryPages
from .inventory_pages import InventoryPages, csv_safe
from .reader import AnalystReader
from .run_pages import RunPages
from .security import SecurityMiddleware, allowed_hosts
from .views import DEFAULT_STALE_AFTER, HERE, PAGE_SIZE, Settings, Views, object_url, url

__all__ = ["DEFAULT_STALE_AFTER", "PAGE_SIZE", "Settings", "create_app", "csv_safe", "object_url", "url"]


class ErrorPage(Views):
    """The page for 400, 404 and 500 answers (with the same layout as every page)."""

    async def error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "Something went wrong."
        return self.render(request, "error.html", status_code=status, status=status, detail=detail)


def create_app(
    reader: AnalystReader,
    *,
    token: str | None = None,
    host: str = "127.0.0.1",
    settings: Settings | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Starlette:
    """The ASGI application; `host` is the bind address (it decides which Host headers are served)."""
    settings = settings or Settings()
    inventory = InventoryPages(reader, settings, clock)
    runs = RunPages(reader, settings, clock)
    history = HistoryPages(reader, settings, clock)
    compare = ComparePage(reader, settings, clock)
    errors = ErrorPage(reader, settings, clock)
    routes = [
        Route("/", inventory.portfolio, name="portfolio"),
        Route("/tenants/{key}", inventory.tenant, name="tenant"),
        Route("/tenants/{key}/inventory.csv", inventory.inventory_csv, name="inventory_csv"),
        Route(
            "/tenants/{key}/objects/{policy_type}/{external_id:path}", inventory.object_page, name="object"
        ),
        Route("/missing", inventory.missing, name="missing"),
        Route("/tenants/{key}/runs", runs.tenant_runs, name="tenant_runs"),
        Route("/runs", runs.runs, name="runs"),
        Route("/runs/{run_id:int}", runs.run, name="run"),
        Route("/tenants/{key}/snapshots", runs.tenant_snapshots, name="tenant_snapshots"),
        Route("/snapshots/{snapshot_id:int}", runs.snapshot, name="snapshot"),
        Route("/drift", history.drift, name="drift"),
        Route("/dependencies", history.dependencies, name="dependencies"),
        Route("/compare", compare.compare, name="compare"),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [
        Middleware(SecurityMiddleware, token=token),
        Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(host, token)),
    ]
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: errors.error, 500: errors.error},
    )
