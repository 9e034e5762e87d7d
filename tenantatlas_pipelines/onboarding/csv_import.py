"""Import tenants from a CSV file: parse, plan against the registry, apply in one transaction.

The file is `tenant_id,key,name[,enabled]` with a header (columns in any order). Why so strict about
problems and so tolerant about form: a spreadsheet export carries a BOM, padded cells, blank lines and
upper-case GUIDs, none of which change what the operator meant; a bad GUID, a clashing key or a tenant
listed twice does, and importing the rest of the file would leave the registry half-way between two
intentions. So every problem of the file is reported with its line, and nothing is written until there
are none.

Tenants that are registered but absent from the file are listed (`not_in_file`) and left alone: a file
is a list of tenants to onboard or correct, not the whole registry, and a forgotten line must never
disable or delete a customer.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import psycopg

from ..errors import ErrorCode, TenantAtlasError
from ..store.tenants import Tenant, list_tenants, validate_tenant_id, validate_tenant_key
from .writes import insert_tenants, lock_registry, update_tenants

REQUIRED_COLUMNS = ("tenant_id", "key", "name")
OPTIONAL_COLUMNS = ("enabled",)
FORMAT = "tenant_id,key,name[,enabled]"
MAX_NAME_CHARS = 256  # Entra's own limit for a tenant's display name
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})
FIELDS = ("key", "name", "enabled")  # what an import may change on a registered tenant

Action = Literal["added", "updated", "unchanged"]


@dataclass(frozen=True)
class Problem:
    """One reason the file cannot be imported: its line (1-based; 0 = the file as a whole), a stable
    code, a sentence, and the column when one cell is at fault."""

    line: int
    code: ErrorCode
    message: str
    column: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "code": str(self.code), "column": self.column, "message": self.message}


@dataclass(frozen=True)
class CsvRow:
    """A valid line of the file, normalised (GUID lower case, cells stripped).

    `enabled` is None when the file does not say: a new tenant is then registered enabled and a
    registered one keeps its state, so a file without the column never re-enables a tenant someone
    disabled on purpose.
    """

    line: int
    tenant_id: str
    key: str
    name: str
    enabled: bool | None


@dataclass(frozen=True)
class ParsedFile:
    """The valid rows and every problem found in the file itself (the registry is not consulted).

    `tenant_ids` holds every valid tenant id of the file, also those on lines with problems, so a
    registered tenant on a broken line is not reported as absent from the file."""

    rows: tuple[CsvRow, ...]
    problems: tuple[Problem, ...]
    tenant_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PlannedTenant:
    """What the import does to one tenant of the file; `changes` maps field -> (old, new)."""

    action: Action
    line: int
    tenant: Tenant
    changes: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"line": self.line, **asdict(self.tenant)}
        if self.action == "updated":
            data["changes"] = {f: {"old": old, "new": new} for f, (old, new) in self.changes.items()}
        return data


@dataclass(frozen=True)
class ImportPlan:
    """The whole import decided before anything is written; `ok` only when there are no problems."""

    entries: tuple[PlannedTenant, ...]
    not_in_file: tuple[Tenant, ...]
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def of(self, action: Action) -> list[PlannedTenant]:
        return [e for e in self.entries if e.action == action]

    @property
    def changes_anything(self) -> bool:
        return any(e.action != "unchanged" for e in self.entries)


@dataclass(frozen=True)
class ImportResult:
    """A plan and whether it was written (False for a dry run, a plan with problems, or no change)."""

    plan: ImportPlan
    dry_run: bool
    applied: bool

    def to_json(self, source: str | None = None) -> dict[str, Any]:
        """The machine-readable report (`tenantatlas tenants import --json`)."""
        plan = self.plan
        return {
            "file": source,
            "dry_run": self.dry_run,
            "ok": plan.ok,
            "applied": self.applied,
            "summary": {
                "added": len(plan.of("added")),
                "updated": len(plan.of("updated")),
                "unchanged": len(plan.of("unchanged")),
                "not_in_file": len(plan.not_in_file),
                "problems": len(plan.problems),
            },
            "added": [e.to_json() for e in plan.of("added")],
            "updated": [e.to_json() for e in plan.of("updated")],
            "unchanged": [e.to_json() for e in plan.of("unchanged")],
            "not_in_file": [asdict(t) for t in plan.not_in_file],
            "problems": [p.to_json() for p in plan.problems],
        }


# --- parse (the file alone) --------------------------------------------------------------------------


def _file_problem(line: int, message: str, column: str | None = None) -> Problem:
    return Problem(line, ErrorCode.INVALID_IMPORT_FILE, message, column)


def _decode(data: bytes | str) -> str | Problem:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")  # drops the BOM spreadsheet programs write
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return _file_problem(line, f"not UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8 CSV")


def _records(text: str) -> Iterable[tuple[int, list[str] | Problem]]:
    """(line number, cells) per CSV record, or (line, Problem) for broken quoting; blank lines skipped.

    Strict on quotes, because a lenient reader turns a forgotten closing quote into one tenant whose
    name is the rest of the file: a quoted cell must close on the line it opens (names never span
    lines), and a quote that never closes or is followed by stray text is a problem of the line where
    the record starts. Reading stops there: after broken quoting, the cells that follow are guesses.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            detail = "is never closed" if "end of data" in str(exc) else f"is malformed ({exc})"
            yield start, _file_problem(
                start,
                f"a quoted cell that starts on this line {detail}; quote a whole cell, close it on the "
                'same line, and double a quote inside it ("Fabrikam ""Big"" Inc.")',
            )
            return
        end = reader.line_num
        if end > start:
            yield start, _file_problem(
                start,
                f"a quoted cell runs from line {start} to line {end}: a quote opened on line {start} is not "
                "closed on that line (a cell may not span lines)",
            )
            return
        if any(c.strip() for c in cells):
            yield start, cells
        start = end + 1


@dataclass(frozen=True)
class _Header:
    columns: dict[str, int]  # column name -> cell index
    width: int  # cells per line (a trailing empty header cell, i.e. a trailing comma, not counted)


def _header(line: int, cells: list[str]) -> tuple[_Header, list[Problem]]:
    names = [c.strip().lower().removeprefix("\ufeff") for c in cells]
    while len(names) > 1 and not names[-1]:
        names.pop()
    problems: list[Problem] = []
    columns: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in columns:
            problems.append(_file_problem(line, f"column {name!r} appears twice in the header"))
        elif name in REQUIRED_COLUMNS or name in OPTIONAL_COLUMNS:
            columns[name] = i
        else:
            problems.append(_file_problem(line, f"unknown column {name[:40]!r}; expected {FORMAT}"))
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        problems.append(
            _file_problem(
                line, f"header lacks {', '.join(missing)}; the first line must be the header {FORMAT}"
            )
        )
    return _Header(columns, len(names)), problems


def _enabled(value: str) -> bool | None:
    word = value.strip().lower()
    if not word:
        return None
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(word)


def parse_csv(data: bytes | str) -> ParsedFile:
    """Every valid row and every problem of a tenant CSV (header `tenant_id,key,name[,enabled]`).

    Checks per line: the GUID (validate_tenant_id, any case), the key (validate_tenant_key), a non-empty
    name, `enabled` as true/false/yes/no/1/0 (any case) or empty, the field count; across lines: one
    line per tenant id and per key. A line with a problem is not among `rows`.
    """
    text = _decode(data)
    if isinstance(text, Problem):
        return ParsedFile((), (text,))
    problems: list[Problem] = []
    rows: list[CsvRow] = []
    seen_ids: dict[str, int] = {}
    seen_keys: dict[str, int] = {}
    header: _Header | None = None
    for line, cells in _records(text):
        if isinstance(cells, Problem):
            problems.append(cells)
            break
        if header is None:
            header, header_problems = _header(line, cells)
            problems += header_problems
            if any(c not in header.columns for c in REQUIRED_COLUMNS):
                return ParsedFile((), tuple(problems))
            continue
        row, row_problems = _row(line, cells, header, seen_ids, seen_keys)
        problems += row_problems
        if row is not None:
            rows.append(row)
    if header is None and not problems:
        problems.append(_file_problem(1, f"the file is empty; the first line must be the header {FORMAT}"))
    return ParsedFile(tuple(rows), tuple(problems), frozenset(seen_ids))


def _row(
    line: int, cells: list[str], header: _Header, seen_ids: dict[str, int], seen_keys: dict[str, int]
) -> tuple[CsvRow | None, list[Problem]]:
    columns, width = header.columns, header.width
    extra = cells[width:]
    if any(c.strip() for c in extra):
        return None, [
            _file_problem(
                line,
                f"{len(cells)} fields where the header has {width}; quote names "
                'that contain a comma ("Fabrikam, Inc.")',
            )
        ]
    short = [c for c in REQUIRED_COLUMNS if columns[c] >= len(cells)]
    if short:
        return None, [_file_problem(line, f"{len(cells)} field(s): no {', '.join(short)}; expected {FORMAT}")]

    def cell(name: str) -> str:
        i = columns.get(name)
        return cells[i].strip() if i is not None and i < len(cells) else ""

    problems: list[Problem] = []
    tenant_id: str | None = None
    key: str | None = None
    try:
        tenant_id = validate_tenant_id(cell("tenant_id"))
    except TenantAtlasError as exc:
        problems.append(Problem(line, exc.code, exc.message, "tenant_id"))
    try:
        key = validate_tenant_key(cell("key"))
    except TenantAtlasError as exc:
        problems.append(Problem(line, exc.code, exc.message, "key"))
    name = cell("name")
    controls = sorted({f"U+{ord(c):04X}" for c in name if unicodedata.category(c) == "Cc"})
    if controls:
        problems.append(
            _file_problem(line, f"name contains control characters ({', '.join(controls)})", "name")
        )
    elif not name:
        problems.append(_file_problem(line, "name is empty", "name"))
    elif len(name) > MAX_NAME_CHARS:
        problems.append(_file_problem(line, f"name is longer than {MAX_NAME_CHARS} characters", "name"))
    enabled: bool | None = None
    try:
        enabled = _enabled(cell("enabled"))
    except ValueError:
        problems.append(
            _file_problem(
                line,
                f"enabled is {cell('enabled')[:20]!r}; use true/false, yes/no, 1/0 or leave it empty",
                "enabled",
            )
        )
    if tenant_id is not None:
        if tenant_id in seen_ids:
            problems.append(
                _file_problem(
                    line,
                    f"tenant {tenant_id} is also on line {seen_ids[tenant_id]}; list each tenant once",
                    "tenant_id",
                )
            )
        else:
            seen_ids[tenant_id] = line
    if key is not None:
        if key in seen_keys:
            problems.append(
                Problem(
                    line,
                    ErrorCode.INVALID_TENANT_KEY,
                    f"key {key!r} is also used on line {seen_keys[key]}",
                    "key",
                )
            )
        else:
            seen_keys[key] = line
    if problems or tenant_id is None or key is None:
        return None, problems
    return CsvRow(line, tenant_id, key, name, enabled), []


# --- plan (the file against the registry) ------------------------------------------------------------


def plan_import(parsed: ParsedFile, registered: Sequence[Tenant]) -> ImportPlan:
    """What importing `parsed` into a registry holding `registered` would do, and every problem.

    A key owned by another registered tenant is a problem even when the file gives that tenant a new
    key too: swapping keys in one import would briefly need one key twice, and renaming a key moves the
    tenant's Dagster partition, so it deserves its own, deliberate import.
    """
    by_id = {t.tenant_id: t for t in registered}
    by_key = {t.key: t for t in registered}
    problems = list(parsed.problems)
    entries: list[PlannedTenant] = []
    for row in parsed.rows:
        owner = by_key.get(row.key)
        if owner is not None and owner.tenant_id != row.tenant_id:
            problems.append(
                Problem(
                    row.line,
                    ErrorCode.INVALID_TENANT_KEY,
                    f"key {row.key!r} belongs to registered tenant {owner.tenant_id} ({owner.name}); choose "
                    "another key, or change that tenant's key in a separate import first",
                    "key",
                )
            )
            continue
        current = by_id.get(row.tenant_id)
        if current is None:
            tenant = Tenant(row.tenant_id, row.key, row.name, True if row.enabled is None else row.enabled)
            entries.append(PlannedTenant("added", row.line, tenant))
            continue
        tenant = Tenant(
            row.tenant_id, row.key, row.name, current.enabled if row.enabled is None else row.enabled
        )
        changes = {
            f: (getattr(current, f), getattr(tenant, f))
            for f in FIELDS
            if getattr(current, f) != getattr(tenant, f)
        }
        entries.append(PlannedTenant("updated" if changes else "unchanged", row.line, tenant, changes))
    in_file = parsed.tenant_ids | {r.tenant_id for r in parsed.rows}
    not_in_file = tuple(t for t in registered if t.tenant_id not in in_file)
    problems.sort(key=lambda p: p.line)
    return ImportPlan(tuple(entries), not_in_file, tuple(problems))


# --- apply -------------------------------------------------------------------------------------------


def import_tenants(conn: psycopg.Connection, parsed: ParsedFile, *, dry_run: bool = False) -> ImportResult:
    """Plan `parsed` against the registry and, unless `dry_run` or a problem, apply it in one transaction.

    The registry is locked against other writers while the plan is made and applied (not for a dry run,
    which only reads), so the plan that is reported is the one that is written.
    """
    try:
        if not dry_run:
            lock_registry(conn)
        plan = plan_import(parsed, list_tenants(conn))
        apply = plan.ok and not dry_run and plan.changes_anything
        if apply:
            insert_tenants(conn, [e.tenant for e in plan.of("added")])
            update_tenants(conn, [e.tenant for e in plan.of("updated")])
            conn.commit()
        else:
            conn.rollback()
    except BaseException:
        conn.rollback()
        raise
    return ImportResult(plan, dry_run=dry_run, applied=apply)
