"""What every page handler shares: settings, URLs, the template environment, rendering, and reading
the common query parameters (tenant, keyset cursor, page number, integers).

Handlers are plain (sync) methods: Starlette runs them in its thread pool, each with its own analyst
session from the reader, so a slow page never blocks the event loop. The pages live in three modules
(inventory_pages, run_pages, history_pages), each a subclass of `Views`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse

from ..drift.present import mask
from . import format, history_queries, paging, queries
from .reader import AnalystReader

HERE = Path(__file__).parent
PAGE_SIZE = 25
RUNS_PAGE_SIZE = 30
PORTFOLIO_PAGE_SIZE = 100  # tenants per portfolio page (sorted and counted over all of them)
DEFAULT_STALE_AFTER = timedelta(hours=48)


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


def environment() -> Environment:
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


def display(value: Any) -> str | None:
    """A diff value as JSON text for people (secrets masked); None stays None (absent)."""
    if value is None:
        return None
    return json.dumps(mask(value), ensure_ascii=False, sort_keys=True)


def drift_changes(item: history_queries.DriftItemRow) -> list[tuple[str, str | None, str | None]]:
    """A published drift item's changes as (path, baseline, current) display texts."""
    return [(c["path"], display(c.get("baseline")), display(c.get("current"))) for c in item.changes]


def int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise HTTPException(400, f"{name} must be a number.") from None


class Views:
    """Page handlers bound to one reader, one settings object and one template environment."""

    def __init__(self, reader: AnalystReader, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.reader = reader
        self.settings = settings
        self.clock = clock
        self.env = environment()

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
