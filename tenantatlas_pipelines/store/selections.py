"""Named selections: what people pick (`all`, `apps`), stored with the payload and hash that count."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ..errors import ErrorCode, TenantAtlasError
from ..selection import DEFAULT_SELECTIONS, canonical_json, selection_hash

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class Selection:
    name: str
    payload: dict[str, Any]
    selection_hash: str

    @property
    def policy_types(self) -> tuple[str, ...]:
        return tuple(self.payload["policy_types"])


def make_selection(name: str, policy_types: list[str] | tuple[str, ...]) -> Selection:
    """Validate and canonicalise; raises INVALID_SELECTION / UNKNOWN_POLICY_TYPE before anything is stored."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise TenantAtlasError(
            ErrorCode.INVALID_SELECTION,
            f"invalid selection name {str(name)[:80]!r}: use a-z, 0-9, '-' and '_'",
        )
    payload = json.loads(canonical_json({"policy_types": list(policy_types)}))
    return Selection(name, payload, selection_hash(payload))


def add_selection(
    conn: psycopg.Connection, name: str, policy_types: list[str] | tuple[str, ...]
) -> Selection:
    """Create or redefine a named selection; a changed payload starts a new lineage (new hash)."""
    selection = make_selection(name, policy_types)
    conn.execute(
        """INSERT INTO selections (name, payload, selection_hash) VALUES (%s, %s, %s)
           ON CONFLICT (name) DO UPDATE SET payload = EXCLUDED.payload,
               selection_hash = EXCLUDED.selection_hash, updated_at = now()""",
        (selection.name, Jsonb(selection.payload), selection.selection_hash),
    )
    conn.commit()
    return selection


def default_selections_present(conn: psycopg.Connection) -> bool:
    """Whether every default selection name exists (their payloads are the operator's to change)."""
    row = conn.execute(
        "SELECT count(*) FROM selections WHERE name = ANY(%s)", (list(DEFAULT_SELECTIONS),)
    ).fetchone()
    return bool(row and row[0] == len(DEFAULT_SELECTIONS))


def seed_default_selections(conn: psycopg.Connection) -> None:
    """Insert the default selections that do not exist yet; never overwrite an operator's edit."""
    for name, types in DEFAULT_SELECTIONS.items():
        sel = make_selection(name, types)
        conn.execute(
            "INSERT INTO selections (name, payload, selection_hash) VALUES (%s, %s, %s) "
            "ON CONFLICT (name) DO NOTHING",
            (sel.name, Jsonb(sel.payload), sel.selection_hash),
        )
    conn.commit()


def list_selections(conn: psycopg.Connection) -> list[Selection]:
    rows = conn.execute("SELECT name, payload, selection_hash FROM selections ORDER BY name").fetchall()
    return [Selection(*row) for row in rows]


def get_selection(conn: psycopg.Connection, name: str) -> Selection:
    row = conn.execute(
        "SELECT name, payload, selection_hash FROM selections WHERE name = %s", (name,)
    ).fetchone()
    if row is None:
        known = ", ".join(s.name for s in list_selections(conn)) or "none"
        raise TenantAtlasError(
            ErrorCode.UNKNOWN_SELECTION, f"unknown selection {name[:80]!r}; known: {known}"
        )
    return Selection(*row)
