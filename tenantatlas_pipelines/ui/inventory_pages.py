"""Pages over the inventory: the portfolio, a tenant's inventory (and its CSV), one object (with its
versions, drift and dependencies) and the missing items."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..drift.present import display_path, display_value, mask
from ..snapshots import diff as snapshot_diff
from . import history_queries, paging, portfolio, queries
from .views import Views, display, int_param, url

CSV_COLUMNS = (
    "tenant_key", "policy_type", "external_id", "display_name", "state",
    "first_seen_at", "last_seen_at", "last_changed_at",
)  # fmt: skip

# CSV cells a spreadsheet would run as a formula get a leading quote (display names are attacker text).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Inventory objects that are themselves dependency targets: what uses them is on their page.
USED_AS_TARGET = {"assignmentFilter": "assignment_filter", "roleScopeTag": "scope_tag"}


def csv_safe(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


class InventoryPages(Views):
    """Portfolio, tenant inventory, CSV export, object, missing."""

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
            alignment = history_queries.alignment_by_tenant(conn)
        rows = portfolio.build_rows(
            tenants, cells, last_runs, types, now, self.settings.stale_after, drift, alignment
        )
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
                    display(display_value(c.old, c.segments, refs.get(old))),
                    display(display_value(c.new, c.segments, refs.get(new))),
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


def _last_id(versions: list[history_queries.VersionRow]) -> int | None:
    return versions[-1].version_id if versions else None


def _version_pair(
    request: Request, versions: list[history_queries.VersionRow]
) -> tuple[int | None, int | None]:
    """The two versions to compare: `from` and `to` from the query, by default the last two."""
    ids = [v.version_id for v in versions]
    default = (ids[-2] if len(ids) > 1 else None, ids[-1] if ids else None)
    old, new = int_param(request, "from"), int_param(request, "to")
    if old is None and new is None:
        return default
    if (old is not None and old not in ids) or (new is not None and new not in ids):
        raise HTTPException(400, "Pick two versions of this object to compare.")
    return (old or default[0], new or default[1])


def _meta_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
