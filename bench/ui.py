"""Inventory UI server time: a 50,000-object tenant's inventory at page 1 and page 2,000, and the
portfolio of 1,000 tenants x 19 policy types.

    python bench/ui.py [--objects 50000] [--tenants 1000] [--repeat 15]

Each page is requested through the ASGI application in this process (Starlette's test client: routing,
the analyst session, the queries, template rendering; no network), warmed up, then timed `--repeat`
times; the median is reported. The data is written straight into a bench database of its own with SQL
(bench set-up, not UI code): ledger rows, items with varied names across the 19 types, and some
published missing items so the state look-ups find rows. Page 2,000 is reached the way the UI reaches
it, through a keyset cursor (the key of the last row of page 1,999), never an OFFSET.

Targets: page 2,000 / page 1 <= 1.5 (keyset paging stays fast at any depth); the portfolio under 2 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Starlette's test client still runs on httpx; its deprecation notice is not a figure.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
from starlette.testclient import TestClient  # noqa: E402

from bench._common import bench_database, target  # noqa: E402
from tenantatlas_pipelines.db import Database  # noqa: E402
from tenantatlas_pipelines.ui import paging  # noqa: E402
from tenantatlas_pipelines.ui.app import PAGE_SIZE, Settings, create_app  # noqa: E402
from tenantatlas_pipelines.ui.reader import AnalystReader  # noqa: E402

BIG_TENANT = "bbbbbbbb-0000-4000-8000-000000050000"
WORDS = "{Baseline,Kiosk,Frontline,Contractors,BitLocker,Edge,Defender,Wi-Fi,OneDrive,Hello,Firewall,LAPS}"
PREFIXES = "{WIN,W365,EU,US,iOS,AND,MAC}"

_RUN = """INSERT INTO inventory_sync_runs (tenant_id, selection_name, selection_hash, selection_payload,
              status, started_at, finished_at)
          VALUES (%s, 'all', repeat('a', 64), '{"policy_types": []}', 'succeeded', now() - interval '1 hour',
              now() - interval '59 minutes')
          RETURNING id"""

# Names like the emulator's ("WIN - Edge Kiosk 123"), spread over the 19 types.
_ITEMS = f"""INSERT INTO inventory_items (tenant_id, policy_type, external_id, display_name, meta_jsonb,
                 first_seen_at, last_seen_at, last_changed_at, last_seen_sync_run_id)
             SELECT %(tenant)s, pt.keys[1 + g %% array_length(pt.keys, 1)], md5(g::text),
                    ('{PREFIXES}'::text[])[1 + g %% 7] || ' - '
                        || ('{WORDS}'::text[])[1 + (g / 7) %% 12] || ' '
                        || ('{WORDS}'::text[])[1 + (g / 84) %% 12] || ' ' || g,
                    jsonb_build_object('version', (g %% 9)::text, 'odata_type', '#microsoft.graph.x'),
                    now() - interval '30 days', now() - interval '1 hour', now() - interval '2 days', %(run)s
             FROM generate_series(1, %(n)s) g,
                  (SELECT array_agg(key ORDER BY key) AS keys FROM policy_types) pt"""

_MISSING = """INSERT INTO missing_items (tenant_id, tenant_key, selection_name, selection_hash, policy_type,
                  external_id, display_name, last_seen_at, last_seen_sync_run_id, confidence, reason,
                  reference_sync_run_id, computed_at)
              SELECT i.tenant_id, t.key, 'all', repeat('a', 64), i.policy_type, i.external_id, i.display_name,
                     i.last_seen_at, i.last_seen_sync_run_id,
                     CASE WHEN n %% 2 = 0 THEN 'high' ELSE 'low' END, 'not_observed',
                     i.last_seen_sync_run_id, now()
              FROM (SELECT i.*, row_number() OVER (ORDER BY external_id) AS n FROM inventory_items i
                    WHERE i.tenant_id = ANY(%(tenants)s)) i
              JOIN tenants t ON t.tenant_id = i.tenant_id
              WHERE n %% %(every)s = 0"""


def timed(client: TestClient, path: str, repeat: int, check: str) -> float:
    """Median milliseconds of `repeat` requests after three warm-up ones."""
    for _ in range(3):
        response = client.get(path)
        assert response.status_code == 200 and check in response.text, (path, response.status_code)
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200
    return statistics.median(samples)


def big_tenant(db: Database, objects: int) -> None:
    with db.connect() as conn:
        conn.execute(
            "INSERT INTO tenants (tenant_id, key, display_name) VALUES (%s, 'bench-big', 'Bench 50k')",
            (BIG_TENANT,),
        )
        run = conn.execute(_RUN, (BIG_TENANT,)).fetchone()
        assert run is not None
        conn.execute(_ITEMS, {"tenant": BIG_TENANT, "run": run[0], "n": objects})
        conn.execute(_MISSING, {"tenants": [BIG_TENANT], "every": 100})
        conn.commit()
        conn.execute("ANALYZE")


def cursor_before_page(db: Database, page: int, size: int) -> str:
    """The keyset cursor the UI's Next link carries to `page`: the key of the last row of page - 1."""
    with db.connect() as conn:
        row = conn.execute(
            """SELECT coalesce(display_name, ''), policy_type, external_id FROM inventory_items
               WHERE tenant_id = %s ORDER BY coalesce(display_name, ''), policy_type, external_id
               OFFSET %s LIMIT 1""",
            (BIG_TENANT, (page - 1) * size - 1),
        ).fetchone()
    assert row is not None, "the tenant has fewer objects than that page needs"
    return paging.encode(row)


def fleet(db: Database, tenants: int) -> None:
    """`tenants` tenants, three daily runs each over every type; one tenant in ten has a failing type, one in
    five an older last read; a few objects and missing items per tenant."""
    with db.connect() as conn:
        conn.execute(
            """INSERT INTO tenants (tenant_id, key, display_name)
               SELECT lpad(to_hex(g), 8, '0') || '-0000-4000-8000-' || lpad(g::text, 12, '0'),
                      't' || lpad(g::text, 5, '0'), 'Tenant ' || g
               FROM generate_series(1, %s) g""",
            (tenants,),
        )
        conn.execute(
            """INSERT INTO inventory_sync_runs (tenant_id, selection_name, selection_hash, selection_payload,
                   status, started_at, finished_at, items_observed)
               SELECT t.tenant_id, 'all', repeat('a', 64), '{"policy_types": []}', 'succeeded',
                      now() - make_interval(days => 4 - r),
                      now() - make_interval(days => 4 - r) + interval '40 s', 300
               FROM tenants t CROSS JOIN generate_series(1, 3) r"""
        )
        conn.execute(
            """INSERT INTO inventory_sync_run_types (sync_run_id, tenant_id, policy_type, status, error_code,
                   items_observed, started_at, finished_at)
               SELECT r.id, r.tenant_id, pt.key,
                      CASE WHEN r.id % 10 = 0 AND pt.key = 'mobileApp' THEN 'failed' ELSE 'succeeded' END,
                      CASE WHEN r.id % 10 = 0 AND pt.key = 'mobileApp' THEN 'graph_forbidden' END,
                      (r.id + length(pt.key)) % 80,
                      r.started_at,
                      r.finished_at - CASE WHEN r.id % 5 = 0 THEN interval '3 days' ELSE '0' END
               FROM inventory_sync_runs r CROSS JOIN policy_types pt"""
        )
        run_ids = conn.execute(
            "SELECT DISTINCT ON (tenant_id) tenant_id, id FROM inventory_sync_runs"
            " ORDER BY tenant_id, id DESC"
        ).fetchall()
        for tenant_id, run_id in run_ids[:: max(1, tenants // 100)]:
            conn.execute(_ITEMS, {"tenant": tenant_id, "run": run_id, "n": 40})
        conn.execute(_MISSING, {"tenants": [t for t, _ in run_ids], "every": 10})
        conn.commit()
        conn.execute("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=50_000)
    parser.add_argument("--tenants", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--deep-page", type=int, default=2_000)
    args = parser.parse_args()

    db = bench_database("tenantatlas_bench_ui_inventory")
    big_tenant(db, args.objects)
    cursor = cursor_before_page(db, args.deep_page, PAGE_SIZE)
    reader = AnalystReader(db)
    with TestClient(create_app(reader, settings=Settings()), base_url="http://127.0.0.1:8080") as client:
        first = timed(client, "/tenants/bench-big", args.repeat, "page 1")
        deep = timed(client, f"/tenants/bench-big?after={cursor}&p={args.deep_page}", args.repeat, "Next")
        typed = timed(
            client,
            f"/tenants/bench-big?type=mobileApp&after={cursor}&p={args.deep_page}",
            args.repeat,
            "page",
        )
        present = timed(client, f"/tenants/bench-big?state=present&after={cursor}", args.repeat, "page")
        search = timed(client, "/tenants/bench-big?q=kiosk+edge", args.repeat, "page")
        export = timed(client, "/tenants/bench-big/inventory.csv", 3, "tenant_key")
    reader.close()
    print(f"tenant inventory, {args.objects:,} objects, {PAGE_SIZE} per page (median of {args.repeat}):")
    print(f"  page 1:                      {first:7.1f} ms")
    print(f"  page {args.deep_page:,}:                  {deep:7.1f} ms")
    print(f"  page {args.deep_page:,}, type filter:     {typed:7.1f} ms")
    print(f"  deep page, state=present:    {present:7.1f} ms")
    print(f"  name search 'kiosk edge':    {search:7.1f} ms  (substring search walks the tenant's names)")
    print(f"  CSV export of all objects:   {export:7.1f} ms")

    db2 = bench_database("tenantatlas_bench_ui_portfolio")
    fleet(db2, args.tenants)
    reader2 = AnalystReader(db2)
    with TestClient(create_app(reader2), base_url="http://127.0.0.1:8080") as client:
        with reader2.session() as conn:
            types = conn.execute("SELECT count(*) FROM policy_types").fetchone()
        portfolio = timed(client, "/", max(3, args.repeat // 3), "Portfolio")
        problems = timed(client, "/?problems=1&sort=failing", max(3, args.repeat // 3), "Portfolio")
    reader2.close()
    n_types = types[0] if types else 0
    print(f"portfolio, {args.tenants:,} tenants x {n_types} policy types:")
    print(f"  all tenants:                 {portfolio:7.1f} ms")
    print(f"  problems only, by failing:   {problems:7.1f} ms")

    target("ui_deep_page_ratio", deep / first, "<=", 1.5)
    target("ui_portfolio_ms", portfolio, "<=", 2000, unit=" ms")


if __name__ == "__main__":
    main()
