"""Every statement the UI runs: SELECTs only, each bounded by an index (sql/110_ui_indexes.sql).

Plain functions, one per question a page asks, each taking an analyst session (reader.py) and typed
arguments and returning frozen dataclasses. Lists are keyset-paged (`Page`), never OFFSET-paged, so the
2,000th page costs what the first one does.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from ..policy_types import REGISTRY
from ..store.run_ledger import RunLedger
from ..store.sync_runs import LEDGER as SYNC_LEDGER

Direction = Literal["next", "prev"]
T = TypeVar("T")
STATES = ("present", "missing-high", "missing-low")


@dataclass(frozen=True)
class TenantInfo:
    tenant_id: str
    key: str
    name: str
    enabled: bool


@dataclass(frozen=True)
class CoverageCell:
    """One (tenant, policy type): its last good read and how the latest attempt ended."""

    tenant_id: str
    policy_type: str
    last_good_at: datetime | None
    items: int | None  # objects the last good read observed
    last_status: str | None  # succeeded | failed | skipped (of the type, in its latest finished run)
    last_error_code: str | None
    last_at: datetime | None
    missing_high: int = 0
    missing_low: int = 0


@dataclass(frozen=True)
class LastRun:
    tenant_id: str
    run_id: int | None
    status: str | None
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: list[T]
    has_next: bool
    has_prev: bool


@dataclass(frozen=True)
class InventoryRow:
    policy_type: str
    external_id: str
    display_name: str | None
    first_seen_at: datetime
    last_seen_at: datetime
    last_changed_at: datetime
    missing_high: bool | None  # None: not missing in any published selection
    missing_low: bool | None

    @property
    def state(self) -> str:
        if self.missing_high:
            return "missing-high"
        if self.missing_low:
            return "missing-low"
        return "present"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.display_name or "", self.policy_type, self.external_id)


@dataclass(frozen=True)
class InventoryFilter:
    search: str = ""
    policy_type: str | None = None
    state: str | None = None  # one of STATES


@dataclass(frozen=True)
class ObjectDetail:
    tenant_id: str
    policy_type: str
    external_id: str
    display_name: str | None
    meta_jsonb: dict[str, Any]
    first_seen_at: datetime
    last_seen_at: datetime
    last_changed_at: datetime
    last_seen_sync_run_id: int
    prev_seen_sync_run_id: int | None


@dataclass(frozen=True)
class MissingRow:
    tenant_id: str
    tenant_key: str
    selection_name: str
    policy_type: str
    external_id: str
    display_name: str | None
    last_seen_at: datetime
    confidence: str
    reason: str | None
    reference_sync_run_id: int | None
    computed_at: datetime

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.tenant_id, self.selection_name, self.policy_type, self.external_id)


class Timed:
    """`seconds` of a UI row with started_at / finished_at: None while either is unknown (a run still
    going, a type never started)."""

    started_at: datetime | None
    finished_at: datetime | None

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class RunRow(Timed):
    id: int
    tenant_id: str
    tenant_key: str
    selection_name: str | None
    status: str
    had_errors: bool
    error_codes: list[str]
    error_message: str | None
    started_at: datetime
    finished_at: datetime | None
    items_observed: int
    items_new: int
    items_changed: int
    items_errors: int
    requests: int
    throttled: int
    retries: int
    dagster_run_id: str | None
    failed_types: list[str]


@dataclass(frozen=True)
class RunTypeRow(Timed):
    policy_type: str
    status: str
    error_code: str | None
    error_message: str | None
    items_observed: int
    items_new: int
    items_changed: int
    items_errors: int
    items_filtered: int
    meta_keys_dropped: int
    pages: int
    requests: int
    throttled: int
    retries: int
    started_at: datetime | None
    finished_at: datetime | None


def keyset_page(rows: list[T], size: int, from_cursor: bool, backwards: bool) -> Page[T]:
    """A page from `size + 1` rows fetched after a cursor (or before it, newest first, when walking
    backwards): the extra row only says whether there is more in the walking direction."""
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
        return Page(rows, has_next=True, has_prev=more)
    return Page(rows, has_next=more, has_prev=from_cursor)


# --- tenants and policy types ----------------------------------------------------------------------


def list_tenants(conn: psycopg.Connection) -> list[TenantInfo]:
    with conn.cursor(row_factory=class_row(TenantInfo)) as cur:
        return cur.execute(
            "SELECT tenant_id, key, display_name AS name, enabled FROM tenants ORDER BY key"
        ).fetchall()


def get_tenant(conn: psycopg.Connection, key: str) -> TenantInfo | None:
    with conn.cursor(row_factory=class_row(TenantInfo)) as cur:
        return cur.execute(
            "SELECT tenant_id, key, display_name AS name, enabled FROM tenants WHERE key = %s", (key,)
        ).fetchone()


def policy_type_keys(conn: psycopg.Connection) -> list[str]:
    """Every policy type the store knows, in registry order (types no longer registered last)."""
    stored = [r[0] for r in conn.execute("SELECT key FROM policy_types ORDER BY key")]
    order = {k: n for n, k in enumerate(REGISTRY)}
    return sorted(stored, key=lambda k: (order.get(k, len(order)), k))


def selection_names(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM selections ORDER BY name")]


# --- portfolio ---------------------------------------------------------------------------------------

# At most two index probes per (tenant, type): the latest finished attempt, and only when that one did
# not succeed, the last good read (the partial index on succeeded types). The second LATERAL's WHERE
# refers only to the outer row, so PostgreSQL evaluates it as a one-time filter and skips the probe.
_COVERAGE = """
SELECT t.tenant_id, pt.key AS policy_type,
       CASE WHEN last.status = 'succeeded' THEN last.finished_at ELSE good.finished_at END AS last_good_at,
       CASE WHEN last.status = 'succeeded' THEN last.items_observed ELSE good.items_observed END AS items,
       last.status AS last_status, last.error_code AS last_error_code, last.finished_at AS last_at
FROM tenants t
CROSS JOIN policy_types pt
LEFT JOIN LATERAL (
    SELECT rt.status, rt.error_code, rt.finished_at, rt.items_observed FROM inventory_sync_run_types rt
    WHERE rt.tenant_id = t.tenant_id AND rt.policy_type = pt.key AND rt.finished_at IS NOT NULL
      AND rt.status <> 'pending'
    ORDER BY rt.finished_at DESC LIMIT 1
) last ON true
LEFT JOIN LATERAL (
    SELECT rt.finished_at, rt.items_observed FROM inventory_sync_run_types rt
    WHERE last.status IS DISTINCT FROM 'succeeded'
      AND rt.tenant_id = t.tenant_id AND rt.policy_type = pt.key AND rt.status = 'succeeded'
      AND rt.finished_at IS NOT NULL
    ORDER BY rt.finished_at DESC LIMIT 1
) good ON true
WHERE %(tenant_id)s::text IS NULL OR t.tenant_id = %(tenant_id)s
"""

# Published missing items still current: the item was not seen again after the snapshot was computed
# (m.last_seen_at >= i.last_seen_at), so a newer run of another selection that saw it wins. An item
# missing in several selections counts once, as high if any of them is high. The LATERAL ... LIMIT 1
# keeps the item look-up a primary-key probe per missing row: the cost follows the missing set, never
# the tenant's size (a hash join would read every item of the tenant).
_MISSING_COUNTS = """
SELECT tenant_id, policy_type, count(*) FILTER (WHERE high) AS high, count(*) FILTER (WHERE NOT high) AS low
FROM (
    SELECT m.tenant_id, m.policy_type, m.external_id, bool_or(m.confidence = 'high') AS high
    FROM missing_items m
    CROSS JOIN LATERAL (
        SELECT i.last_seen_at FROM inventory_items i
        WHERE i.tenant_id = m.tenant_id AND i.policy_type = m.policy_type AND i.external_id = m.external_id
        LIMIT 1
    ) i
    WHERE m.last_seen_at >= i.last_seen_at
      AND (%(tenant_id)s::text IS NULL OR m.tenant_id = %(tenant_id)s)
    GROUP BY 1, 2, 3
) per_item
GROUP BY 1, 2
"""

_LAST_RUNS = """
SELECT t.tenant_id, r.id AS run_id, r.status, r.started_at, r.finished_at
FROM tenants t
LEFT JOIN LATERAL (
    SELECT id, status, started_at, finished_at FROM inventory_sync_runs r
    WHERE r.tenant_id = t.tenant_id ORDER BY r.id DESC LIMIT 1
) r ON true
WHERE %(tenant_id)s::text IS NULL OR t.tenant_id = %(tenant_id)s
"""


def coverage(conn: psycopg.Connection, tenant_id: str | None = None) -> list[CoverageCell]:
    """Every (tenant, policy type) cell, with the missing counts folded in (tuples, not row factories:
    the fleet-wide portfolio builds ~19,000 of these)."""
    params = {"tenant_id": tenant_id}
    missing = {(r[0], r[1]): (int(r[2]), int(r[3])) for r in conn.execute(_MISSING_COUNTS, params).fetchall()}
    none = (0, 0)
    return [
        CoverageCell(*row, *missing.get((row[0], row[1]), none))
        for row in conn.execute(_COVERAGE, params).fetchall()
    ]


def last_runs(conn: psycopg.Connection, tenant_id: str | None = None) -> dict[str, LastRun]:
    with conn.cursor(row_factory=class_row(LastRun)) as cur:
        return {r.tenant_id: r for r in cur.execute(_LAST_RUNS, {"tenant_id": tenant_id})}


# --- tenant inventory --------------------------------------------------------------------------------

_NAME = sql.SQL("coalesce(i.display_name, '')")


def like_pattern(search: str) -> str:
    """A substring ILIKE pattern that matches `search` literally (its % and _ escaped)."""
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _inventory_query(
    f: InventoryFilter, *, after: bool | None, descending: bool, limit: bool
) -> sql.Composed:
    """The inventory statement for a filter; `after` adds the keyset condition (> or <)."""
    where = [sql.SQL("i.tenant_id = %(tenant_id)s")]
    if f.policy_type:
        where.append(sql.SQL("i.policy_type = %(policy_type)s"))
    if f.search:
        where.append(sql.SQL("({} ILIKE %(pattern)s OR i.external_id = %(search)s)").format(_NAME))
    if f.state == "present":
        where.append(sql.SQL("ms.high IS NULL"))
    elif f.state == "missing-high":
        where.append(sql.SQL("ms.high"))
    elif f.state == "missing-low":
        where.append(sql.SQL("NOT ms.high"))
    if after is not None:
        op = sql.SQL(">" if after else "<")
        where.append(
            sql.SQL("({}, i.policy_type, i.external_id) {} (%(k_name)s, %(k_type)s, %(k_id)s)").format(
                _NAME, op
            )
        )
    direction = sql.SQL("DESC" if descending else "ASC")
    return sql.SQL(
        """SELECT i.policy_type, i.external_id, i.display_name, i.first_seen_at, i.last_seen_at,
                  i.last_changed_at, ms.high AS missing_high, ms.low AS missing_low
           FROM inventory_items i
           LEFT JOIN LATERAL (
               SELECT bool_or(m.confidence = 'high') AS high, bool_or(m.confidence = 'low') AS low
               FROM missing_items m
               WHERE m.tenant_id = i.tenant_id AND m.policy_type = i.policy_type
                 AND m.external_id = i.external_id AND m.last_seen_at >= i.last_seen_at
               HAVING count(*) > 0
           ) ms ON true
           WHERE {where}
           ORDER BY {name} {d}, i.policy_type {d}, i.external_id {d}
           {limit}"""
    ).format(
        where=sql.SQL(" AND ").join(where),
        name=_NAME,
        d=direction,
        limit=sql.SQL("LIMIT %(limit)s") if limit else sql.SQL(""),
    )


def _inventory_params(tenant_id: str, f: InventoryFilter) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "policy_type": f.policy_type,
        "pattern": like_pattern(f.search),
        "search": f.search,
    }


def inventory_page(
    conn: psycopg.Connection,
    tenant_id: str,
    f: InventoryFilter,
    *,
    size: int,
    cursor: tuple[str, str, str] | None = None,
    direction: Direction = "next",
) -> Page[InventoryRow]:
    """One page of a tenant's inventory in name order: the rows after `cursor` (next) or before it
    (prev), found by walking the name index from the cursor, not by counting rows before it."""
    backwards = direction == "prev" and cursor is not None
    query = _inventory_query(
        f, after=None if cursor is None else not backwards, descending=backwards, limit=True
    )
    params = _inventory_params(tenant_id, f) | {"limit": size + 1}
    if cursor is not None:
        params |= {"k_name": cursor[0], "k_type": cursor[1], "k_id": cursor[2]}
    with conn.cursor(row_factory=class_row(InventoryRow)) as cur:
        return keyset_page(cur.execute(query, params).fetchall(), size, cursor is not None, backwards)


def iter_inventory(
    conn: psycopg.Connection, tenant_id: str, f: InventoryFilter, batch: int = 2000
) -> Iterator[InventoryRow]:
    """Every row of the filter in page order, streamed through a server-side cursor (CSV export)."""
    query = _inventory_query(f, after=None, descending=False, limit=False)
    with conn.cursor(name="ui_inventory_export", row_factory=class_row(InventoryRow)) as cur:
        cur.itersize = batch
        cur.execute(query, _inventory_params(tenant_id, f))
        yield from cur


# --- one object --------------------------------------------------------------------------------------


def get_object(
    conn: psycopg.Connection, tenant_id: str, policy_type: str, external_id: str
) -> ObjectDetail | None:
    with conn.cursor(row_factory=class_row(ObjectDetail)) as cur:
        return cur.execute(
            """SELECT tenant_id, policy_type, external_id, display_name, meta_jsonb, first_seen_at,
                      last_seen_at, last_changed_at, last_seen_sync_run_id, prev_seen_sync_run_id
               FROM inventory_items WHERE tenant_id = %s AND policy_type = %s AND external_id = %s""",
            (tenant_id, policy_type, external_id),
        ).fetchone()


def object_missing(conn: psycopg.Connection, obj: ObjectDetail) -> list[MissingRow]:
    """The object's current published missing rows, one per selection that misses it."""
    with conn.cursor(row_factory=class_row(MissingRow)) as cur:
        return cur.execute(
            f"""SELECT {_MISSING_COLUMNS} FROM missing_items m
                WHERE m.tenant_id = %s AND m.policy_type = %s AND m.external_id = %s
                  AND m.last_seen_at >= %s
                ORDER BY m.selection_name""",
            (obj.tenant_id, obj.policy_type, obj.external_id, obj.last_seen_at),
        ).fetchall()


# --- missing -----------------------------------------------------------------------------------------

_MISSING_COLUMNS = """m.tenant_id, m.tenant_key, m.selection_name, m.policy_type, m.external_id,
    m.display_name, m.last_seen_at, m.confidence, m.reason, m.reference_sync_run_id, m.computed_at"""


def missing_page(
    conn: psycopg.Connection,
    *,
    tenant_id: str | None,
    selection: str | None,
    confidence: str | None,
    size: int,
    cursor: tuple[str, str, str, str] | None = None,
    direction: Direction = "next",
) -> Page[MissingRow]:
    """Published missing items (still current: not seen again since), keyset-paged in primary-key
    order (tenant, selection, type, id)."""
    backwards = direction == "prev" and cursor is not None
    where = [sql.SQL("m.last_seen_at >= i.last_seen_at")]
    params: dict[str, Any] = {"limit": size + 1}
    for column, value in (
        ("tenant_id", tenant_id),
        ("selection_name", selection),
        ("confidence", confidence),
    ):
        if value:
            where.append(sql.SQL("m.{} = {}").format(sql.Identifier(column), sql.Placeholder(column)))
            params[column] = value
    if cursor is not None:
        op = "<" if backwards else ">"
        where.append(
            sql.SQL(
                "(m.tenant_id, m.selection_name, m.policy_type, m.external_id)"
                f" {op} (%(k0)s, %(k1)s, %(k2)s, %(k3)s)"
            )
        )
        params |= {"k0": cursor[0], "k1": cursor[1], "k2": cursor[2], "k3": cursor[3]}
    d = sql.SQL("DESC" if backwards else "ASC")
    query = sql.SQL(
        """SELECT {cols} FROM missing_items m
           JOIN inventory_items i
             ON i.tenant_id = m.tenant_id AND i.policy_type = m.policy_type AND i.external_id = m.external_id
           WHERE {where}
           ORDER BY m.tenant_id {d}, m.selection_name {d}, m.policy_type {d}, m.external_id {d}
           LIMIT %(limit)s"""
    ).format(cols=sql.SQL(_MISSING_COLUMNS), where=sql.SQL(" AND ").join(where), d=d)
    with conn.cursor(row_factory=class_row(MissingRow)) as cur:
        return keyset_page(cur.execute(query, params).fetchall(), size, cursor is not None, backwards)


# --- runs --------------------------------------------------------------------------------------------


@functools.cache
def ledger_columns(ledger: RunLedger[Any, Any], row: type) -> str:
    """The SELECT list of a UI run row (its fields, in order): from the ledger's runs table `r`, the
    tenant's key from `t`, and the policy types that failed from its types table."""
    special = {
        "tenant_key": "t.key AS tenant_key",
        "failed_types": f"""coalesce((SELECT array_agg(rt.policy_type ORDER BY rt.policy_type)
              FROM {ledger.types_table} rt WHERE rt.{ledger.run_fk} = r.id AND rt.status = 'failed'),
              '{{}}') AS failed_types""",
    }
    return ", ".join(special.get(f.name, f"r.{f.name}") for f in fields(row))


def ledger_runs_page(
    conn: psycopg.Connection,
    ledger: RunLedger[Any, Any],
    row: type[T],
    *,
    tenant_id: str | None,
    status: str | None = None,
    size: int,
    before_id: int | None = None,
) -> Page[T]:
    """Runs of one ledger (sync runs, snapshots) newest first, one tenant's or the fleet's, keyset-paged
    on the run id."""
    where = [sql.SQL("true")]
    params: dict[str, Any] = {"limit": size + 1}
    if tenant_id:
        where.append(sql.SQL("r.tenant_id = %(tenant_id)s"))
        params["tenant_id"] = tenant_id
    if status:
        where.append(sql.SQL("r.status = %(status)s"))
        params["status"] = status
    if before_id is not None:
        where.append(sql.SQL("r.id < %(before)s"))
        params["before"] = before_id
    query = sql.SQL(
        """SELECT {cols} FROM {runs} r JOIN tenants t ON t.tenant_id = r.tenant_id
           WHERE {where} ORDER BY r.id DESC LIMIT %(limit)s"""
    ).format(
        cols=sql.SQL(ledger_columns(ledger, row)),
        runs=sql.Identifier(ledger.runs_table),
        where=sql.SQL(" AND ").join(where),
    )
    with conn.cursor(row_factory=class_row(row)) as cur:
        return keyset_page(cur.execute(query, params).fetchall(), size, before_id is not None, False)


def ledger_run(conn: psycopg.Connection, ledger: RunLedger[Any, Any], row: type[T], run_id: int) -> T | None:
    """One run of a ledger with its tenant's key and failed types."""
    with conn.cursor(row_factory=class_row(row)) as cur:
        return cur.execute(
            f"""SELECT {ledger_columns(ledger, row)} FROM {ledger.runs_table} r
                JOIN tenants t ON t.tenant_id = r.tenant_id WHERE r.id = %s""",
            (run_id,),
        ).fetchone()


def ledger_run_types(
    conn: psycopg.Connection, ledger: RunLedger[Any, Any], row: type[T], run_id: int
) -> list[T]:
    """Per-type outcomes of one run of a ledger (the row's fields), failed types first."""
    with conn.cursor(row_factory=class_row(row)) as cur:
        return cur.execute(
            f"""SELECT {", ".join(f.name for f in fields(row))} FROM {ledger.types_table}
                WHERE {ledger.run_fk} = %s ORDER BY (status = 'succeeded'), policy_type""",
            (run_id,),
        ).fetchall()


def runs_page(
    conn: psycopg.Connection,
    *,
    tenant_id: str | None,
    status: str | None = None,
    size: int,
    before_id: int | None = None,
) -> Page[RunRow]:
    """Sync runs newest first (one tenant's or the fleet's), keyset-paged on the run id."""
    return ledger_runs_page(
        conn, SYNC_LEDGER, RunRow, tenant_id=tenant_id, status=status, size=size, before_id=before_id
    )


def get_run(conn: psycopg.Connection, run_id: int) -> RunRow | None:
    return ledger_run(conn, SYNC_LEDGER, RunRow, run_id)


def run_types(conn: psycopg.Connection, run_id: int) -> list[RunTypeRow]:
    """Per-type outcomes of a sync run, failed types first."""
    return ledger_run_types(conn, SYNC_LEDGER, RunTypeRow, run_id)


def run_history(
    conn: psycopg.Connection, tenant_id: str, selection_name: str, limit: int = 60
) -> list[RunRow]:
    """The latest `limit` runs of one tenant + selection, oldest first (the charts' series)."""
    with conn.cursor(row_factory=class_row(RunRow)) as cur:
        rows = cur.execute(
            f"""SELECT {ledger_columns(SYNC_LEDGER, RunRow)} FROM inventory_sync_runs r
                JOIN tenants t ON t.tenant_id = r.tenant_id WHERE r.tenant_id = %s AND r.selection_name = %s
                ORDER BY r.id DESC LIMIT %s""",
            (tenant_id, selection_name, limit),
        ).fetchall()
    rows.reverse()
    return rows


@dataclass(frozen=True)
class TypeCoverage:
    """How many of a run's policy types (one ledger row each, written when the run starts) were read."""

    read: int
    total: int

    @property
    def share(self) -> float:
        return self.read / self.total if self.total else 0.0


def run_coverage(conn: psycopg.Connection, run_ids: list[int]) -> dict[int, TypeCoverage]:
    """Types read successfully / types of the selection, per run, for the given runs (the charts'
    series, so at most `run_history`'s limit): probes of the per-type table's primary key
    (sync_run_id, policy_type), bounded by runs x types, never by items. A skipped run has no type
    rows and so no entry."""
    if not run_ids:
        return {}
    return {
        run_id: TypeCoverage(read, total)
        for run_id, read, total in conn.execute(
            """SELECT sync_run_id, count(*) FILTER (WHERE status = 'succeeded'), count(*)
               FROM inventory_sync_run_types WHERE sync_run_id = ANY(%s) GROUP BY sync_run_id""",
            (run_ids,),
        )
    }


def tenant_selections(conn: psycopg.Connection, tenant_id: str) -> list[str]:
    """Selections this tenant has runs of (for the charts' picker)."""
    return [
        r[0]
        for r in conn.execute(
            """SELECT DISTINCT selection_name FROM inventory_sync_runs
               WHERE tenant_id = %s AND selection_name IS NOT NULL ORDER BY 1""",
            (tenant_id,),
        )
    ]
