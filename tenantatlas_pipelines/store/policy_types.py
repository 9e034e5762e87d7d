"""policy_types: the Python registry mirrored into a table, so analyst views can join on it."""

from __future__ import annotations

import psycopg

from ..policy_types import REGISTRY


def sync_policy_types(conn: psycopg.Connection) -> None:
    """Upsert every registry entry; types removed from the registry keep their row (history)."""
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO policy_types (key, collection_path, api_version, name_field)
               VALUES (%s, %s, %s, %s)
               ON CONFLICT (key) DO UPDATE SET collection_path = EXCLUDED.collection_path,
                   api_version = EXCLUDED.api_version, name_field = EXCLUDED.name_field""",
            [(t.key, t.path, t.api_version, t.name_field) for t in REGISTRY.values()],
        )
    conn.commit()
