"""A demo-like fleet for the UI's tests and screenshots, built through the real engine (run_sync against
PostgreSQL; only Graph is replaced by in-memory pages) and the real missing-items publisher.

Runs happen now; `_age_run` then moves each finished run back in time (as the table owner, like an
operator's history would look), so the pages show days of history: durations, counts over time, a
stale tenant. The stories:
- contoso: 6 daily runs of `all`, the last one no longer sees two device configurations (missing, high);
- fabrikam: the app permission is withdrawn in the last run (403 on mobileApp: partial, missing low);
- northwind: a big tenant (`big` objects of deviceConfiguration) last read 4 days ago (stale);
- tailspin: no Intune licence (every Intune type fails), conditional access still reads;
- hostile: a tenant and objects whose names are markup and spreadsheet formulas;
- woodgrove: registered, never synced;
- snapshots and drift (contoso/all): one object changed, one added and accepted, one missing; northwind
  with the same baseline (one identical, one different, one of its own) to compare with; a partial
  snapshot of fabrikam; contoso's dependency graph (a group with a filter, all devices, a dangling
  excluded group).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from tenantatlas_pipelines.compare.run import GoldenConfig, align_tenant, load_golden
from tenantatlas_pipelines.db import Database, ensure_database, with_database
from tenantatlas_pipelines.defs.reporting import publish_missing
from tenantatlas_pipelines.dependencies.derive import derive_partition
from tenantatlas_pipelines.drift.deviations import accept_deviation
from tenantatlas_pipelines.drift.publish import publish_drift
from tenantatlas_pipelines.errors import ErrorCode
from tenantatlas_pipelines.policy_types import REGISTRY
from tenantatlas_pipelines.snapshots import GroupType, Reference, RefKind
from tenantatlas_pipelines.snapshots.synthetic import (
    SyntheticObject,
    group_assignment,
    insert_snapshot,
    virtual_assignment,
)
from tenantatlas_pipelines.store.scope import tenant_scope
from tenantatlas_pipelines.store.selections import get_selection
from tenantatlas_pipelines.store.tenants import add_tenant
from tenantatlas_pipelines.sync import run_sync
from tests.support import MemoryGraph

XSS = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'
FORMULA = '=HYPERLINK("http://evil.example","click")'
DC, APP, SC, CA = "deviceConfiguration", "mobileApp", "settingsCatalogPolicy", "conditionalAccessPolicy"

TENANTS = {
    "contoso": ("11111111-1111-4111-8111-111111111111", "Contoso Ltd"),
    "fabrikam": ("22222222-2222-4222-8222-222222222222", "Fabrikam, Inc."),
    "northwind": ("33333333-3333-4333-8333-333333333333", "Northwind Traders"),
    "tailspin": ("44444444-4444-4444-8444-444444444444", "Tailspin Toys"),
    "hostile": ("55555555-5555-4555-8555-555555555555", XSS),
    "woodgrove": ("66666666-6666-4666-8666-666666666666", "Woodgrove Bank"),
}
_WORDS = ["Baseline", "Kiosk", "Frontline", "Contractors", "São Paulo", "Ελληνικά VPN", "Пилот",
          "BitLocker", "Edge", "Defender", "Wi-Fi", "OneDrive KFM", "Windows Hello", "Firewall", "LAPS",
          "Autopatch"]  # fmt: skip
_PREFIX = ["WIN", "W365", "EU", "US", "iOS", "AND", "MAC"]


def _item(policy_type: str, n: int, name: str | None = None, **extra: Any) -> dict[str, Any]:
    rng = random.Random(f"{policy_type}{n}")
    name = name or f"{rng.choice(_PREFIX)} - {rng.choice(_WORDS)} {rng.choice(_WORDS)} {n}"
    return {
        "id": f"{policy_type[:4].lower()}-{n:05d}-{rng.randrange(16**8):08x}",
        REGISTRY[policy_type].name_field: name,
        "@odata.type": f"#microsoft.graph.{policy_type}",
        "createdDateTime": "2026-01-15T08:00:00Z",
        "version": n % 7,
        **extra,
    }


def _sizes(scale: int) -> dict[str, int]:
    sizes = {key: 3 + (len(key) % 5) for key in REGISTRY}
    sizes |= {DC: 40, SC: 30, APP: 45}
    return {k: max(1, v * scale) for k, v in sizes.items()}


def _pages(items: dict[str, list[dict[str, Any]]], size: int = 100) -> dict[str, list[list[Any]]]:
    return {k: [v[i : i + size] for i in range(0, len(v), size)] or [[]] for k, v in items.items()}


def _catalogue(scale: int = 1, big: int = 0) -> dict[str, list[dict[str, Any]]]:
    items = {k: [_item(k, n) for n in range(count)] for k, count in _sizes(scale).items()}
    if big:
        items[DC] = [_item(DC, n) for n in range(big)]
    return items


def _age_run(db: Database, run_id: int, ago: timedelta, seconds: float) -> None:
    """Move one finished run (and what it wrote) `ago` into the past, lasting `seconds`."""
    with db.connect() as conn:
        started = conn.execute(
            "SELECT started_at FROM inventory_sync_runs WHERE id = %s", (run_id,)
        ).fetchone()
        assert started is not None
        start = started[0]
        conn.execute(
            """UPDATE inventory_sync_runs SET started_at = started_at - %(d)s,
                   finished_at = started_at - %(d)s + %(s)s WHERE id = %(id)s""",
            {"d": ago, "s": timedelta(seconds=seconds), "id": run_id},
        )
        conn.execute(
            """UPDATE inventory_sync_run_types SET started_at = started_at - %(d)s,
                   finished_at = finished_at - %(d)s WHERE sync_run_id = %(id)s""",
            {"d": ago, "id": run_id},
        )
        conn.execute(
            """UPDATE inventory_items SET
                   first_seen_at = CASE WHEN first_seen_at >= %(t)s THEN first_seen_at - %(d)s
                                        ELSE first_seen_at END,
                   last_changed_at = CASE WHEN last_changed_at >= %(t)s THEN last_changed_at - %(d)s
                                          ELSE last_changed_at END,
                   last_seen_at = CASE WHEN last_seen_at >= %(t)s THEN last_seen_at - %(d)s
                                       ELSE last_seen_at END
               WHERE last_seen_at >= %(t)s OR first_seen_at >= %(t)s OR last_changed_at >= %(t)s""",
            {"t": start, "d": ago},
        )
        conn.commit()


def _history(
    db: Database, key: str, graphs: list[MemoryGraph], days: list[float], rng: random.Random, base: float
) -> list[int]:
    ids = []
    for graph, day in zip(graphs, days, strict=True):
        result = run_sync(db, graph, key, "all")
        assert result.sync_run_id is not None
        _age_run(db, result.sync_run_id, timedelta(days=day), base * rng.uniform(0.7, 1.6))
        ids.append(result.sync_run_id)
    return ids


def build_fleet(db: Database, *, runs: int = 6, big: int = 300, scale: int = 1) -> dict[str, Any]:
    """Register the tenants, sync their histories, publish missing items; returns facts tests use."""
    rng = random.Random(7)
    with db.connect() as conn:
        for key, (tenant_id, name) in TENANTS.items():
            add_tenant(conn, tenant_id, key, name)
    days = [float(runs - n) - 0.01 * n for n in range(runs)]  # one run a day, the last ~a day ago
    facts: dict[str, Any] = {}

    contoso = _catalogue(scale)
    gone = contoso[DC][:2]
    later = {**contoso, DC: contoso[DC][2:]}
    graphs = [MemoryGraph(_pages(contoso)) for _ in range(runs - 1)] + [MemoryGraph(_pages(later))]
    facts["contoso_runs"] = _history(db, "contoso", graphs, days, rng, 40)
    facts["contoso_gone"] = gone

    fabrikam = _catalogue()
    graphs = [MemoryGraph(_pages(fabrikam)) for _ in range(runs - 1)]
    graphs.append(MemoryGraph(_pages({**fabrikam, APP: []}), failures={APP: ErrorCode.GRAPH_FORBIDDEN}))
    facts["fabrikam_runs"] = _history(db, "fabrikam", graphs, days, rng, 25)
    facts["fabrikam_apps"] = fabrikam[APP]

    northwind = _catalogue(scale, big=big)
    facts["northwind_runs"] = _history(
        db, "northwind", [MemoryGraph(_pages(northwind)) for _ in range(3)], [6.0, 5.0, 4.0], rng, 90
    )
    facts["northwind_dc"] = northwind[DC]

    intune = [k for k in REGISTRY if k != CA]
    tailspin = MemoryGraph(
        _pages({CA: [_item(CA, n) for n in range(4)], **{k: [] for k in intune}}),
        failures={k: ErrorCode.GRAPH_TENANT_NOT_LICENSED for k in intune},
    )
    facts["tailspin_runs"] = _history(db, "tailspin", [tailspin, tailspin], days[-2:], rng, 5)

    hostile_items = {k: [] for k in REGISTRY}
    hostile_items[DC] = [_item(DC, 1, XSS), _item(DC, 2, IMG), _item(DC, 3, FORMULA, description=XSS)]
    facts["hostile_runs"] = _history(db, "hostile", [MemoryGraph(_pages(hostile_items))], days[-1:], rng, 3)
    facts["hostile_items"] = hostile_items[DC]

    for key in ("contoso", "fabrikam", "northwind", "tailspin", "hostile"):
        publish_missing(db, key, "all", dagster_run_id=None, now=datetime.now(UTC))
    facts |= snapshots_and_drift(db, contoso, northwind[DC])
    return facts


def _wifi(name: str, ssid: str, psk: str, **extra: Any) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.windowsWifiConfiguration",
        "displayName": name,
        "ssid": ssid,
        "preSharedKey": psk,
        "wifiSecurityType": "wpa2Personal",
        "lastModifiedDateTime": "2026-11-01T00:00:00Z",
        **extra,
    }


def snapshots_and_drift(
    db: Database, contoso: dict[str, list[dict[str, Any]]], northwind_dc: list[dict[str, Any]]
) -> dict[str, Any]:
    """Two snapshots of contoso/all through the snapshots package's own synthetic insert (the capture and
    store code of a real run), drift published by the drift package, one deviation accepted; and a
    partial snapshot of fabrikam. Stories: A changed (ssid, the filter mode of its assignment, its secret),
    B unchanged, C added (then accepted), D missing."""
    a, b, c, d = contoso[DC][2], contoso[DC][3], contoso[DC][4], contoso[DC][0]
    corp = contoso["assignmentFilter"][0]["id"]  # the filter is an inventory object too
    refs = [
        Reference(RefKind.GROUP, "g-sales", "Sales", GroupType.SECURITY),
        Reference(RefKind.ASSIGNMENT_FILTER, corp, "Corporate devices"),
        Reference(RefKind.GROUP, "g-sales-eu", "SALES", GroupType.MICROSOFT365),  # same name, other group
    ]
    name = REGISTRY[DC].name_field
    with db.connect() as conn:
        tenant_id = TENANTS["contoso"][0]
        selection = get_selection(conn, "all")
        scope = tenant_scope(conn, tenant_id)

        def snap(objects: list[SyntheticObject], **kw: Any) -> int:
            return insert_snapshot(scope, selection, objects, references=refs, **kw)

        first = snap(
            [
                SyntheticObject(DC, a["id"], _wifi(a[name], "corp", "hunter2"),
                                [group_assignment("g-sales", filter_id=corp, filter_mode="include")]),
                SyntheticObject(DC, b["id"], _wifi(b[name], "guest", "guest-pw"), [virtual_assignment()]),
                SyntheticObject(DC, d["id"], _wifi(d[name], "legacy", "old-pw")),
            ]
        )  # fmt: skip
        second = snap(
            [
                SyntheticObject(DC, a["id"], _wifi(a[name], "corp-5g", "hunter3"),
                                [group_assignment("g-sales", filter_id=corp, filter_mode="exclude")]),
                SyntheticObject(DC, b["id"], _wifi(b[name], "guest", "guest-pw"), [virtual_assignment()]),
                SyntheticObject(DC, c["id"], _wifi(c[name], "lab", "lab-pw"),
                                [group_assignment("g-sales"), group_assignment("g-sales-eu"),
                                 group_assignment("g-gone", exclude=True)]),
            ]
        )  # fmt: skip
    publish_drift(db, "contoso", "all")
    with db.connect() as conn:
        scope = tenant_scope(conn, TENANTS["contoso"][0])
        accept_deviation(
            scope, get_selection(conn, "all"), policy_type=DC, external_id=c["id"], path=None,
            note="CHG-1042 lab network approved", accepted_by="alice@msp.example",
        )  # fmt: skip
    publish_drift(db, "contoso", "all")
    derive_partition(db, "contoso", "all")  # the dependency graph of the latest snapshot
    with db.connect() as conn:  # northwind: the same baseline deployed again, one setting apart
        nw = [o["id"] for o in northwind_dc[:3]]
        nw_refs = [
            Reference(RefKind.GROUP, "nw-sales", "Sales", GroupType.SECURITY),
            Reference(RefKind.ASSIGNMENT_FILTER, "nw-corp", "Corporate devices"),
        ]
        insert_snapshot(
            tenant_scope(conn, TENANTS["northwind"][0]), get_selection(conn, "all"),
            [
                SyntheticObject(DC, nw[0], _wifi(a[name], "corp-5g", "other-secret"),
                                [group_assignment("nw-sales", filter_id="nw-corp", filter_mode="exclude")]),
                SyntheticObject(DC, nw[1], _wifi(b[name], "guest-5g", "guest-pw"), [virtual_assignment()]),
                SyntheticObject(DC, nw[2], _wifi("NW - Warehouse scanners", "scan", "scan-pw")),
            ],
            references=nw_refs,
        )  # fmt: skip
    with db.connect() as conn:  # the fleet asset's alignment of northwind to contoso as golden tenant
        golden, golden_selection = load_golden(conn, GoldenConfig("contoso"))
        alignment, _ = align_tenant(conn, golden, golden_selection, "northwind")
    with db.connect() as conn:
        scope = tenant_scope(conn, TENANTS["fabrikam"][0])
        partial = insert_snapshot(
            scope, get_selection(conn, "all"), [], status="partial", failed_types={APP: "graph_forbidden"}
        )
    return {
        "snapshots": [first, second],
        "fabrikam_snapshot": partial,
        "drift": {"changed": a, "unchanged": b, "added": c, "missing": d},
        "filter": corp,
        "northwind_alignment": alignment,
    }


@contextmanager
def fleet_database(
    server_url: str, purpose: str, **options: Any
) -> Iterator[tuple[Database, dict[str, Any]]]:
    """A database of its own (so other tests' truncation never touches it) holding the fleet; dropped
    afterwards."""
    name = f"tenantatlas_test_{purpose}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    admin = with_database(server_url, "postgres")

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    drop()
    ensure_database(server_url, name)
    db = Database(with_database(server_url, name))
    try:
        db.migrate()
        facts = build_fleet(db, **options)
        yield db, facts
    finally:
        db.close_idle()
        drop()
