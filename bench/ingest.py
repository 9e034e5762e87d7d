"""Store upsert throughput against a raw psycopg COPY + INSERT ... ON CONFLICT of the same rows.

    python bench/ingest.py [--items 100000] [--page 1000]

Both paths write the same rows (a first insert, then a re-observation) into inventory_items of two
tenants, page by page, one transaction per page. The store's path also counts new/changed items and
adds the page's counts to the ledger, which is the overhead measured. Target: ratio <= 1.25.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import bench_database, target
from tenantatlas_pipelines.normalize import normalize_item
from tenantatlas_pipelines.policy_types import REGISTRY
from tenantatlas_pipelines.store import sync_runs
from tenantatlas_pipelines.store.inventory import write_page
from tenantatlas_pipelines.store.scope import tenant_scope
from tenantatlas_pipelines.store.selections import get_selection
from tenantatlas_pipelines.store.tenants import add_tenant

STORE_TENANT = "aaaaaaaa-0000-4000-8000-000000000001"
RAW_TENANT = "aaaaaaaa-0000-4000-8000-000000000002"
POLICY = REGISTRY["deviceConfiguration"]


def make_records(n: int, generation: int):
    raw = (
        {
            "id": f"{i:08d}-0000-4000-8000-000000000000",
            "displayName": f"Policy {i} g{generation // 2}",
            "@odata.type": "#microsoft.graph.windows10GeneralConfiguration",
            "createdDateTime": "2024-01-02T03:04:05Z",
            "lastModifiedDateTime": "2024-02-03T04:05:06Z",
            "version": i % 7,
            "roleScopeTagIds": ["0"],
            "omaSettings": [{"value": "x"}],
        }
        for i in range(n)
    )
    return [normalize_item(POLICY, r) for r in raw]


RAW_UPSERT = """
INSERT INTO inventory_items AS i (tenant_id, policy_type, external_id, display_name, meta_jsonb,
                                  first_seen_at, last_seen_at, last_changed_at, last_seen_sync_run_id)
SELECT %(t)s, policy_type, external_id, display_name, meta_jsonb, now(), now(), now(), %(run)s
FROM pg_temp.raw_stage
ON CONFLICT (tenant_id, policy_type, external_id) DO UPDATE
SET display_name = EXCLUDED.display_name, meta_jsonb = EXCLUDED.meta_jsonb,
    last_seen_at = EXCLUDED.last_seen_at, last_seen_sync_run_id = EXCLUDED.last_seen_sync_run_id
"""


def store_path(db, records, page: int) -> float:
    with db.connect() as conn:
        scope = tenant_scope(conn, STORE_TENANT)
        run_id = sync_runs.start_run(scope, get_selection(conn, "all"), dagster_run_id=None, worker="bench")
        t0 = time.perf_counter()
        for start in range(0, len(records), page):
            chunk = records[start : start + page]
            write_page(scope, run_id, POLICY.key, chunk, errors=0, filtered=0, meta_keys_dropped=0)
            conn.commit()
        elapsed = time.perf_counter() - t0
        sync_runs.finalize_run(scope, run_id, status="succeeded", error_codes=[], error_message=None)
    return elapsed


def raw_path(db, records, page: int) -> float:
    with db.connect() as conn:
        scope = tenant_scope(conn, RAW_TENANT)
        run_id = sync_runs.start_run(scope, get_selection(conn, "all"), dagster_run_id=None, worker="bench")
        conn.execute(
            "CREATE TEMP TABLE raw_stage (policy_type text, external_id text, display_name text,"
            " meta_jsonb jsonb) ON COMMIT DELETE ROWS"
        )
        conn.commit()
        t0 = time.perf_counter()
        for start in range(0, len(records), page):
            with conn.cursor() as cur:
                with cur.copy("COPY raw_stage FROM STDIN") as copy:
                    for r in records[start : start + page]:
                        copy.write_row((POLICY.key, r.external_id, r.display_name, json.dumps(r.meta)))
                cur.execute(RAW_UPSERT, {"t": RAW_TENANT, "run": run_id})
            conn.commit()
        elapsed = time.perf_counter() - t0
        sync_runs.finalize_run(scope, run_id, status="succeeded", error_codes=[], error_message=None)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="insert + re-observe passes, alternating order")
    args = parser.parse_args()
    db = bench_database("tenantatlas_bench_ingest")
    with db.connect() as conn:
        add_tenant(conn, STORE_TENANT, "bench-store", "bench store")
        add_tenant(conn, RAW_TENANT, "bench-raw", "bench raw")
    store_s = raw_s = 0.0
    for generation in range(args.rounds):
        records = make_records(args.items, generation)
        # Alternate which path goes first so cache warmth does not favour one of them.
        if generation % 2:
            raw_s += raw_path(db, records, args.page)
            store_s += store_path(db, records, args.page)
        else:
            store_s += store_path(db, records, args.page)
            raw_s += raw_path(db, records, args.page)
    with db.connect() as conn:
        n = conn.execute(
            "SELECT count(*) FROM inventory_items WHERE tenant_id = %s", (STORE_TENANT,)
        ).fetchone()
    assert n == (args.items,), n
    total = args.items * args.rounds
    print(
        f"items: {args.items} x {args.rounds} passes (1 insert + {args.rounds - 1} re-observations), "
        f"page {args.page}"
    )
    print(f"store upsert: {store_s:.2f} s ({total / store_s:,.0f} items/s)")
    print(f"raw COPY + INSERT ON CONFLICT: {raw_s:.2f} s ({total / raw_s:,.0f} items/s)")
    target("ingest_store_vs_raw", store_s / raw_s, "<=", 1.25)


if __name__ == "__main__":
    main()
