"""A fleet-wide summary of the store for `tenantatlas status` (operator view, not tenant-scoped)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row


def store_status(conn: psycopg.Connection) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        migrations = [r["name"] for r in cur.execute("SELECT name FROM schema_migrations ORDER BY name")]
        tenants = cur.execute("SELECT key, tenant_id, enabled FROM tenants ORDER BY key").fetchall()
        selections = cur.execute("SELECT name, selection_hash FROM selections ORDER BY name").fetchall()
        items = cur.execute("SELECT count(*) AS n FROM inventory_items").fetchone()
        runs = cur.execute("SELECT count(*) AS n FROM inventory_sync_runs").fetchone()
        latest = cur.execute(
            """SELECT DISTINCT ON (r.tenant_id, r.selection_hash) t.key AS tenant_key, r.selection_name, r.id,
                      r.status, r.items_observed, r.error_codes, r.finished_at
               FROM inventory_sync_runs r JOIN tenants t USING (tenant_id)
               ORDER BY r.tenant_id, r.selection_hash, r.started_at DESC, r.id DESC"""
        ).fetchall()
    return {
        "migrations": migrations,
        "tenants": tenants,
        "selections": selections,
        "items": items["n"] if items else 0,
        "runs": runs["n"] if runs else 0,
        "latest_runs": latest,
    }


def latest_synced_at(conn: psycopg.Connection) -> dict[tuple[str, str], Any]:
    """Per (tenant key, selection name), when its latest sync that read something finished.

    `succeeded` and `partial` count (the inventory was refreshed); `failed` and `skipped` do not. What the
    per-tenant freshness check ages against.
    """
    rows = conn.execute(
        """SELECT t.key, r.selection_name, max(r.finished_at)
           FROM inventory_sync_runs r JOIN tenants t USING (tenant_id)
           WHERE r.status IN ('succeeded', 'partial') AND r.finished_at IS NOT NULL
           GROUP BY t.key, r.selection_name"""
    ).fetchall()
    return {(key, selection): finished for key, selection, finished in rows}
