"""The portfolio's judgement: which cells are fine, stale, failing or never read, and tenant order.

Pure functions over the rows queries.py returns, so what turns a cell red is tested without a server.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .format import age, count, short_code, timestamp
from .queries import CoverageCell, LastRun, TenantInfo

# Worst first: the order a tenant's cells are ranked in when sorting by one policy type.
SEVERITY = {"failing": 3, "never": 2, "stale": 1, "ok": 0}
# sort key -> (label, descending by default)
SORTS = {
    "tenant": ("Tenant", False),
    "items": ("Objects", True),
    "missing_high": ("Missing (high)", True),
    "missing_low": ("Missing (low)", True),
    "failing": ("Failing types", True),
    "stale": ("Stale types", True),
    "drift": ("Unaccepted drift", True),
    "alignment": ("Alignment to the golden tenant", False),
    "oldest": ("Oldest good read", False),
}


def cell_state(cell: CoverageCell, now: datetime, stale_after: timedelta) -> str:
    """failing: the latest attempt at this type failed (whatever an older read says); never: no read
    has succeeded; stale: the last good read is older than `stale_after`; ok otherwise."""
    if cell.last_status == "failed":
        return "failing"
    if cell.last_good_at is None:
        return "never"
    if now - cell.last_good_at > stale_after:
        return "stale"
    return "ok"


@dataclass(frozen=True)
class CellView:
    cell: CoverageCell
    state: str
    age: timedelta | None

    @property
    def label(self) -> str:
        """What the cell says: the error for a failing type, else the objects of the last good read."""
        if self.state == "failing":
            return short_code(self.cell.last_error_code)
        return "·" if self.cell.items is None else count(self.cell.items)

    @property
    def title(self) -> str:
        """The tooltip: everything the cell stands for, in a sentence (escaped by the template)."""
        c = self.cell
        if c.last_good_at is None:
            text = f"{c.policy_type}: never read successfully"
        else:
            text = (
                f"{c.policy_type}: last good read {timestamp(c.last_good_at)} UTC ({age(self.age)} ago), "
                f"{c.items} objects"
            )
        if c.last_status:
            text += f"; latest attempt {c.last_status}" + (
                f" ({c.last_error_code})" if c.last_error_code else ""
            )
        return text + f"; missing {c.missing_high} high / {c.missing_low} low"


@dataclass
class TenantRow:
    tenant: TenantInfo
    cells: list[CellView]
    last_run: LastRun | None
    items: int = 0
    missing_high: int = 0
    missing_low: int = 0
    failing: int = 0
    stale: int = 0  # stale or never read
    drift: int = 0  # unaccepted high-confidence drift items (published, all selections)
    alignment: Any = None  # history_queries.AlignmentRow: score against the golden tenant, if computed
    oldest_good: datetime | None = None
    by_type: dict[str, CellView] = field(default_factory=dict)

    @property
    def has_problem(self) -> bool:
        return bool(self.failing or self.stale or self.missing_high or self.drift)


def build_rows(
    tenants: Iterable[TenantInfo],
    cells: Iterable[CoverageCell],
    last_runs: dict[str, LastRun],
    types: Sequence[str],
    now: datetime,
    stale_after: timedelta,
    drift: dict[str, int] | None = None,
    alignment: dict[str, Any] | None = None,
) -> list[TenantRow]:
    """One row per tenant, its cells in `types` order, with the totals the sort keys use."""
    drift = drift or {}
    by_tenant: dict[str, dict[str, CoverageCell]] = {}
    for c in cells:
        by_tenant.setdefault(c.tenant_id, {})[c.policy_type] = c
    rows: list[TenantRow] = []
    for t in tenants:
        mine = by_tenant.get(t.tenant_id, {})
        row = TenantRow(
            tenant=t,
            cells=[],
            last_run=last_runs.get(t.tenant_id),
            drift=drift.get(t.tenant_id, 0),
            alignment=(alignment or {}).get(t.tenant_id),
        )
        for key in types:
            cell = mine.get(key) or CoverageCell(t.tenant_id, key, None, None, None, None, None)
            view = CellView(
                cell,
                cell_state(cell, now, stale_after),
                None if cell.last_good_at is None else now - cell.last_good_at,
            )
            row.cells.append(view)
            row.by_type[key] = view
            row.items += cell.items or 0
            row.missing_high += cell.missing_high
            row.missing_low += cell.missing_low
            row.failing += view.state == "failing"
            row.stale += view.state in ("stale", "never")
            if cell.last_good_at is not None and (
                row.oldest_good is None or cell.last_good_at < row.oldest_good
            ):
                row.oldest_good = cell.last_good_at
        rows.append(row)
    return rows


def sort_rows(rows: list[TenantRow], sort: str, descending: bool) -> list[TenantRow]:
    """Rows by a SORTS key or `type:<policy type>` (worst state, then oldest read); ties by tenant key."""
    if sort.startswith("type:"):
        policy_type = sort[5:]

        def type_key(r: TenantRow) -> tuple[int, float]:
            view = r.by_type.get(policy_type)
            if view is None:
                return (-1, 0.0)
            age = view.age.total_seconds() if view.age is not None else float("inf")
            return (SEVERITY[view.state], age)

        ranked = sorted(rows, key=lambda r: r.tenant.key)
        return sorted(ranked, key=type_key, reverse=descending)
    if sort == "alignment":  # least aligned first; tenants without an alignment last
        ranked = sorted(rows, key=lambda r: r.tenant.key)
        return sorted(
            ranked,
            key=lambda r: (r.alignment is None, r.alignment.score if r.alignment else 0.0),
            reverse=descending,
        )
    if sort == "oldest":
        # Never read sorts as the oldest of all.
        ranked = sorted(rows, key=lambda r: r.tenant.key)
        return sorted(
            ranked,
            key=lambda r: (r.oldest_good is not None, r.oldest_good.timestamp() if r.oldest_good else 0.0),
            reverse=descending,
        )
    attribute = sort if sort in SORTS else "tenant"
    if attribute == "tenant":
        return sorted(rows, key=lambda r: r.tenant.key, reverse=descending)
    ranked = sorted(rows, key=lambda r: r.tenant.key)
    return sorted(ranked, key=lambda r: getattr(r, attribute), reverse=descending)


def filter_rows(rows: Iterable[TenantRow], search: str, problems_only: bool) -> list[TenantRow]:
    """Tenants whose key or name contains `search` (case-insensitive); optionally only those with a
    failing, stale or never-read type, a high-confidence missing item or unaccepted drift."""
    needle = search.strip().casefold()
    return [
        r
        for r in rows
        if (not needle or needle in r.tenant.key.casefold() or needle in r.tenant.name.casefold())
        and (not problems_only or r.has_problem)
    ]
