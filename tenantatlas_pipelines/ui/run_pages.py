"""Pages over runs: sync runs (fleet and tenant, with charts), one run, a tenant's snapshots and one
snapshot, each with per-type outcomes and the error codes' sentences."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import psycopg
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from . import charts, format, history_queries, queries
from .error_docs import error_docs
from .views import Views, int_param, url

RUN_STATUSES = ("running", "succeeded", "partial", "failed", "skipped")


class RunPages(Views):
    """Runs, one run, snapshots, one snapshot."""

    def tenant_runs(self, request: Request) -> Response:
        key = request.path_params["key"]
        before = int_param(request, "before")
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
            coverage = queries.run_coverage(conn, [r.id for r in history])
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
            charts=_run_charts(history, coverage),
            page=page,
            next_url=url(path, selection=selection, before=page.rows[-1].id) if page.has_next else None,
            first_url=url(path, selection=selection) if page.has_prev else None,
            tab="runs",
        )

    def runs(self, request: Request) -> Response:
        status = request.query_params.get("status") or None
        if status is not None and status not in RUN_STATUSES:
            raise HTTPException(400, f"Unknown run status {status!r}.")
        before = int_param(request, "before")
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

    def _with_types(
        self,
        run_id: int,
        get: Callable[[psycopg.Connection, int], Any],
        get_types: Callable[[psycopg.Connection, int], list[Any]],
        missing: str,
    ) -> tuple[Any, list[Any], list[str]]:
        """One run of a ledger (404 with `missing` when there is none), its per-type rows, and every
        error code of the run and its types, sorted."""
        with self.reader.session() as conn:
            row = get(conn, run_id)
            if row is None:
                raise HTTPException(404, missing)
            types = get_types(conn, run_id)
        return row, types, sorted({*row.error_codes, *(t.error_code for t in types if t.error_code)})

    def run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        run, types, codes = self._with_types(
            run_id, queries.get_run, queries.run_types, f"There is no sync run {run_id}."
        )
        docs = error_docs()
        return self.render(
            request, "run.html", run=run, types=types, docs=docs, error_codes=codes, tab="runs"
        )

    def tenant_snapshots(self, request: Request) -> Response:
        key = request.path_params["key"]
        before = int_param(request, "before")
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
        snap, types, codes = self._with_types(
            snapshot_id,
            history_queries.get_snapshot,
            history_queries.snapshot_types,
            f"There is no snapshot {snapshot_id}.",
        )
        return self.render(
            request, "snapshot.html", snap=snap, types=types, docs=error_docs(), error_codes=codes
        )


def _run_charts(
    history: list[queries.RunRow], coverage: dict[int, queries.TypeCoverage]
) -> dict[str, Any] | None:
    """Run durations (bars), objects observed (line) and coverage — the share of the selection's policy
    types read successfully (line, 0-100 %) — of one tenant + selection, oldest to newest. A run that is
    still going or was skipped has no objects and no coverage point."""
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
    shares = [
        charts.Point(
            None if r.status in ("skipped", "running") or r.id not in coverage
            else 100 * coverage[r.id].share,
            f"s-{r.status}",
            _coverage_tooltip(r, coverage.get(r.id)),
            f"/runs/{r.id}",
        )
        for r in history
    ]  # fmt: skip
    return {
        "coverage": charts.line_chart(
            shares, title="Policy types read", unit=" %", first=first, last=last, top=100.0
        ),
        "durations": charts.bar_chart(durations, title="Run duration", unit=" s", first=first, last=last),
        "items": charts.line_chart(items, title="Objects observed", unit="", first=first, last=last),
        "runs": len(history),
    }


def _coverage_tooltip(run: queries.RunRow, cov: queries.TypeCoverage | None) -> str:
    when = format.timestamp(run.started_at)
    if cov is None or run.status in ("skipped", "running"):
        return f"run {run.id} · {run.status} · no per-type outcome · {when}"
    return (
        f"run {run.id} · {cov.read}/{cov.total} types read ({100 * cov.share:.0f} %) · {run.status} · {when}"
    )
