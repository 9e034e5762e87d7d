"""policy_types: the Python registry mirrored into a table, so analyst views can join on it."""

from __future__ import annotations

import psycopg

from ..policy_types import REGISTRY


def _rows() -> set[tuple[str, str, str, str]]:
    return {(t.key, t.path, t.api_version, t.name_field) for t in REGISTRY.values()}


def policy_types_current(conn: psycopg.Connection) -> bool:
    """Whether the table already mirrors the registry (every entry present and equal)."""
    stored = set(conn.execute("SELECT key, collection_path, api_version, name_field FROM policy_types"))
    return _rows() <= stored


def sync_policy_types(conn: psycopg.Connection) -> None:
    """Upsert every registry entry; types removed from the registry keep their row (history)."""
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO policy_types (key, collection_path, api_version, name_field)
               VALUES (%s, %s, %s, %s)
               ON CONFLICT (key) DO UPDATE SET collection_path = EXCLUDED.collection_path,
                   api_version = EXCLUDED.api_version, name_field = EXCLUDED.name_field""",
            sorted(_rows()),
        )
    conn.commit()
