"""Migrations: ordered, recorded, idempotent, and safe when several processes start at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tenantatlas_pipelines.config import PROJECT_ROOT
from tenantatlas_pipelines.db import Database, ensure_database, with_database
from tenantatlas_pipelines.db.migrate import apply_migrations, migration_files


def test_concurrent_first_start_applies_each_migration_once(database_server_url: str) -> None:
    name = f"tenantatlas_test_migrate_race_{os.getpid()}"
    with psycopg.connect(with_database(database_server_url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    ensure_database(database_server_url, name)
    url = with_database(database_server_url, name)
    code = "import sys; from tenantatlas_pipelines.db import Database; print(Database(sys.argv[1]).migrate())"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, url], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    names = [f.name for f in migration_files()]
    applied_now = [eval(o.strip()) for o in outputs]  # each prints the list it applied
    assert sorted(n for batch in applied_now for n in batch) == sorted(names), "each applied exactly once"
    assert Database(url).migrate() == []
    with psycopg.connect(url) as conn:
        recorded = [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]
        assert recorded == names
        assert conn.execute("SELECT count(*) FROM selections WHERE name = 'all'").fetchone() == (1,)


RACED = """
DO $$
BEGIN
    IF nextval('raced_attempts') = 1 THEN  -- the first attempt loses, as CREATE ROLE does to a twin
        RAISE unique_violation USING
            MESSAGE = 'duplicate key value violates unique constraint "pg_authid_rolname_index"',
            CONSTRAINT = 'pg_authid_rolname_index';
    END IF;
END $$;
CREATE TABLE raced (x int);
"""


def _fresh(database_server_url: str, suffix: str) -> Database:
    name = f"tenantatlas_test_migrate_{suffix}_{os.getpid()}"
    with psycopg.connect(with_database(database_server_url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    ensure_database(database_server_url, name)
    db = Database(with_database(database_server_url, name))
    with db.connect() as conn:  # outside any migration transaction: nextval survives the rollback
        conn.execute("CREATE SEQUENCE raced_attempts")
    return db


def test_a_migration_that_lost_a_role_creation_race_is_applied_again(
    database_server_url: str, tmp_path: Path
) -> None:
    """Roles are per server, the migration lock per database: two databases migrating at once can both
    try to create a role (seen in the suite: two workers' fresh databases). The loser applies the
    migration again, then sees the role; nothing else is retried."""
    (tmp_path / "001_raced.sql").write_text(RACED)
    db = _fresh(database_server_url, "role_race")
    assert apply_migrations(db, tmp_path) == ["001_raced.sql"]
    with db.connect() as conn:
        assert conn.execute("SELECT to_regclass('raced') IS NOT NULL").fetchone() == (True,)
        assert conn.execute("SELECT name FROM schema_migrations").fetchall() == [("001_raced.sql",)]
    # Any other unique violation is the migration's own error: not retried, nothing recorded.
    (tmp_path / "001_raced.sql").write_text(RACED.replace("pg_authid_rolname_index", "selections_pkey"))
    other = _fresh(database_server_url, "other_violation")
    with pytest.raises(psycopg.errors.UniqueViolation):
        apply_migrations(other, tmp_path)
    with other.connect() as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (0,)


def test_up_to_date_check_notices_missing_seeds(db: Database) -> None:
    """The fast path (nothing to apply) still restores a deleted default selection and a stale
    policy-type row, because it checks them as well as the migration record."""
    with db.connect() as conn:
        conn.execute("DELETE FROM selections WHERE name = 'apps'")
        conn.execute("UPDATE policy_types SET collection_path = 'stale' WHERE key = 'mobileApp'")
        conn.commit()
    assert db.migrate() == []
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM selections WHERE name = 'apps'").fetchone() == (1,)
        path = conn.execute("SELECT collection_path FROM policy_types WHERE key = 'mobileApp'").fetchone()
        assert path == ("deviceAppManagement/mobileApps",)


def test_050_merges_ids_that_differ_only_in_case_into_one_folded_row(db: Database) -> None:
    """Rows an older release stored twice (ids differing only in case) become one row under the folded
    id, keeping the earliest first_seen_at and the newest observation; a second run changes nothing."""
    from tenantatlas_pipelines.store.tenants import add_tenant

    tenant = "11111111-1111-4111-8111-111111111111"
    merge = (PROJECT_ROOT / "sql" / "050_fold_item_id_case.sql").read_text()
    with db.connect() as conn:
        add_tenant(conn, tenant, "contoso", "Contoso")
        run_ids = [
            conn.execute(
                """INSERT INTO inventory_sync_runs (tenant_id, selection_hash, selection_payload)
                   VALUES (%s, 'h', '{}') RETURNING id""",
                (tenant,),
            ).fetchone()[0]  # type: ignore[index]
            for _ in range(2)
        ]
        rows = [  # (type, id, name, first seen, last seen, run): Graph listed the GUID in two cases
            ("deviceConfiguration", "AB-1", "old upper", "2025-01-01", "2025-01-05", run_ids[0]),
            ("deviceConfiguration", "ab-1", "new lower", "2025-01-03", "2025-01-09", run_ids[1]),
            ("deviceConfiguration", "Cd-2", "only mixed", "2025-01-02", "2025-01-04", run_ids[0]),
            ("mobileApp", "AB-1", "other type", "2025-01-02", "2025-01-04", run_ids[0]),
            ("mobileApp", "ef-3", "already folded", "2025-01-02", "2025-01-04", run_ids[0]),
        ]
        for policy_type, external_id, name, first, last, run_id in rows:
            conn.execute(
                """INSERT INTO inventory_items (tenant_id, policy_type, external_id, display_name,
                       first_seen_at, last_seen_at, last_changed_at, last_seen_sync_run_id)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
                (tenant, policy_type, external_id, name, first, last, last, run_id),
            )
        conn.commit()
        query = """SELECT policy_type, external_id, display_name, first_seen_at::date::text,
                          last_seen_at::date::text, last_seen_sync_run_id
                   FROM inventory_items ORDER BY 1, 2"""
        for _ in range(2):  # idempotent
            conn.execute(merge)
            conn.commit()
            assert conn.execute(query).fetchall() == [
                ("deviceConfiguration", "ab-1", "new lower", "2025-01-01", "2025-01-09", run_ids[1]),
                ("deviceConfiguration", "cd-2", "only mixed", "2025-01-02", "2025-01-04", run_ids[0]),
                ("mobileApp", "ab-1", "other type", "2025-01-02", "2025-01-04", run_ids[0]),
                ("mobileApp", "ef-3", "already folded", "2025-01-02", "2025-01-04", run_ids[0]),
            ]
