"""The inventory UI over HTTP (Starlette's test client, the ASGI app in-process) against the real
PostgreSQL holding a demo-like fleet built by the real engine (tests/ui_fleet.py): every page, every
filter, keyset paging both ways, CSV export, escaping of hostile names, headers, token and host checks.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from pathlib import Path
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from tenantatlas_pipelines.db import Database, ensure_database, with_database
from tenantatlas_pipelines.errors import ErrorCode, TenantAtlasError
from tenantatlas_pipelines.policy_types import REGISTRY
from tenantatlas_pipelines.ui.app import Settings, create_app
from tenantatlas_pipelines.ui.charts import HEIGHT, PAD_BOTTOM, PAD_TOP
from tenantatlas_pipelines.ui.reader import AnalystReader
from tenantatlas_pipelines.ui.security import CSP, cookie_value
from tests.ui_fleet import APP, CA, DC, FORMULA, IMG, TENANTS, XSS, fleet_database

PAGE = 10
BASE = "http://127.0.0.1:8080"


@pytest.fixture(scope="module")
def fleet(database_server_url: str) -> Iterator[tuple[Database, dict[str, Any]]]:
    with fleet_database(database_server_url, "ui_http", runs=6, big=57) as built:
        yield built


@pytest.fixture(scope="module")
def reader(fleet: tuple[Database, dict[str, Any]]) -> Iterator[AnalystReader]:
    r = AnalystReader(fleet[0])
    yield r
    r.close()


@pytest.fixture(scope="module")
def client(reader: AnalystReader) -> Iterator[TestClient]:
    app = create_app(
        reader, settings=Settings(page_size=PAGE, runs_page_size=5, stale_after=timedelta(hours=48))
    )
    with TestClient(app, base_url=BASE) as c:
        yield c


@pytest.fixture(scope="module")
def facts(fleet: tuple[Database, dict[str, Any]]) -> dict[str, Any]:
    return fleet[1]


def ok(client: TestClient, path: str, **params: Any) -> str:
    response = client.get(path, params=params) if params else client.get(path)
    assert response.status_code == 200, (path, response.status_code, response.text[:500])
    return response.text


def rows(html: str) -> list[str]:
    """The body rows of the first list table, as their text."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return [
        re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", r))).strip()
        for r in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def object_ids(html: str) -> list[str]:
    return re.findall(r'href="/tenants/[^/"]+/objects/[^/"]+/([^"]+)"', html)


def link(html: str, rel: str) -> str | None:
    m = re.search(rf'<a href="([^"]+)" rel="{rel}"', html)
    return unescape(m.group(1)) if m else None


def cell(html: str, tenant: str, policy_type: str) -> str:
    """The portfolio cell of (tenant, type): its <td ...>...</td> markup."""
    row = html.split(f'href="/tenants/{tenant}"', 1)[1].split("</tr>", 1)[0]
    m = re.search(
        rf'<td class="cell c-(\w+)"><a href="/tenants/{tenant}\?type={policy_type}".*?</td>', row, re.S
    )
    assert m, (tenant, policy_type)
    return m.group(0)


# --- portfolio ---------------------------------------------------------------------------------------


def test_portfolio_shows_every_tenant_and_marks_cells_by_state(client: TestClient) -> None:
    html = ok(client, "/")
    for key in TENANTS:
        assert f'href="/tenants/{key}"' in html
    assert "Contoso Ltd" in html and "Fabrikam, Inc." in html
    # contoso: read a day ago, two device configurations gone with high confidence
    dc = cell(html, "contoso", DC)
    assert 'class="cell c-ok"' in dc and 'class="mh"' in dc and "\u22122" in dc
    # fabrikam: the latest mobileApp read was refused (403) -> failing, its apps missing with low confidence
    apps = cell(html, "fabrikam", APP)
    assert 'class="cell c-failing"' in apps and ">403<" in apps and "graph_forbidden" in apps
    assert 'class="ml"' in apps
    # northwind: last good read 4 days ago -> stale, with its age
    assert 'class="cell c-stale"' in cell(html, "northwind", DC) and "4 d" in cell(html, "northwind", DC)
    # tailspin: no Intune licence; conditional access still reads
    assert 'class="cell c-failing"' in cell(html, "tailspin", DC)
    assert 'class="cell c-ok"' in cell(html, "tailspin", CA)
    # woodgrove: never read
    assert 'class="cell c-never"' in cell(html, "woodgrove", DC)


def test_portfolio_counts_come_from_the_last_good_read(client: TestClient, facts: dict[str, Any]) -> None:
    html = ok(client, "/")
    # contoso's last run observed 40 - 2 device configurations; northwind's `big` ones
    assert re.search(r">38<", cell(html, "contoso", DC))
    assert re.search(r">57<", cell(html, "northwind", DC))
    assert re.search(r">45<", cell(html, "contoso", APP))


def _tenant_order(html: str) -> list[str]:
    return re.findall(r'<th class="tcol" scope="row"><a href="/tenants/([a-z0-9-]+)"', html)


@pytest.mark.parametrize(
    ("params", "expected_first"),
    [
        ({"sort": "tenant"}, "contoso"),
        ({"sort": "tenant", "order": "desc"}, "woodgrove"),
        ({"sort": "missing_high"}, "contoso"),
        ({"sort": "missing_low"}, "fabrikam"),
        ({"sort": "failing"}, "tailspin"),
        ({"sort": "items"}, "northwind"),
        ({"sort": "stale"}, "northwind"),
        ({"sort": "oldest"}, "woodgrove"),
        ({"sort": f"type:{APP}"}, "tailspin"),  # failing and never read beats failing since 47 h
    ],
)
def test_portfolio_sorts(client: TestClient, params: dict[str, str], expected_first: str) -> None:
    order = _tenant_order(ok(client, "/", **params))
    assert sorted(order) == sorted(TENANTS)
    assert order[0] == expected_first, order


def test_portfolio_filters_by_tenant_and_problems(client: TestClient) -> None:
    assert _tenant_order(ok(client, "/", q="NORTH")) == ["northwind"]
    assert _tenant_order(ok(client, "/", q="Fabrikam, Inc")) == ["fabrikam"]
    problems = _tenant_order(ok(client, "/", problems="1"))
    assert "hostile" not in problems and {"contoso", "fabrikam", "northwind", "tailspin", "woodgrove"} == set(
        problems
    )
    assert "No tenant matches" in ok(client, "/", q="no-such-tenant")


# --- escaping and headers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/", "/tenants/hostile", "/runs", "/missing", "/tenants/hostile/runs", "/tenants/hostile?q=<script>"],
)
def test_hostile_names_are_rendered_inert(client: TestClient, path: str) -> None:
    html = ok(client, path)
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    if path in ("/", "/tenants/hostile"):
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_hostile_object_names_and_metadata_are_escaped(client: TestClient, facts: dict[str, Any]) -> None:
    html = ok(client, "/tenants/hostile")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    for item in facts["hostile_items"]:
        page = ok(client, f"/tenants/hostile/objects/{DC}/{item['id']}")
        assert "<script" not in page.lower() and "<img" not in page.lower()


def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    for path in (
        "/",
        "/tenants/contoso",
        "/static/ui.css",
        "/no-such-page",
        "/tenants/contoso/inventory.csv",
    ):
        response = client.get(path)
        assert response.headers["content-security-policy"] == CSP, path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
    assert "script-src 'none'" in CSP and "default-src 'none'" in CSP and "unsafe-inline" not in CSP


def test_pages_use_no_inline_script_or_style(client: TestClient, facts: dict[str, Any]) -> None:
    # What the CSP forbids must not be needed: no <script>, no style= attributes, no inline handlers.
    for path in (
        "/",
        "/tenants/contoso",
        "/tenants/contoso/runs",
        f"/runs/{facts['fabrikam_runs'][-1]}",
        "/missing",
    ):
        html = ok(client, path)
        assert "<script" not in html and " style=" not in html and not re.search(r"\son[a-z]+=", html), path


def test_host_header_must_be_loopback_on_a_loopback_bind(client: TestClient) -> None:
    assert client.get("/", headers={"host": "evil.example"}).status_code == 400
    assert client.get("/", headers={"host": "localhost:8080"}).status_code == 200


# --- tenant inventory ---------------------------------------------------------------------------------


def walk(client: TestClient, path: str, **params: Any) -> list[list[str]]:
    """Every page of a listing by following its Next links; the ids on each page."""
    html = ok(client, path, **params)
    pages = [object_ids(html)]
    while (nxt := link(html, "next")) is not None:
        html = ok(client, nxt)
        pages.append(object_ids(html))
        assert len(pages) < 100
    return pages


def test_inventory_pages_cover_every_object_once_in_name_order(
    client: TestClient, fleet: tuple[Database, dict[str, Any]]
) -> None:
    db, _ = fleet
    with db.connect() as conn:
        expected = [
            r[0]
            for r in conn.execute(
                """SELECT external_id FROM inventory_items i JOIN tenants t USING (tenant_id)
                   WHERE t.key = 'northwind'
                   ORDER BY coalesce(i.display_name, ''), policy_type, external_id"""
            )
        ]
    pages = walk(client, "/tenants/northwind")
    assert all(len(p) == PAGE for p in pages[:-1]) and 0 < len(pages[-1]) <= PAGE
    assert [i for p in pages for i in p] == expected


def test_inventory_previous_page_is_the_page_before(client: TestClient) -> None:
    first = ok(client, "/tenants/northwind")
    second = ok(client, link(first, "next"))
    third = ok(client, link(second, "next"))
    assert "page 3" in third
    back = ok(client, link(third, "prev"))
    assert object_ids(back) == object_ids(second) and "page 2" in back
    back_to_first = ok(client, link(back, "prev"))
    assert object_ids(back_to_first) == object_ids(first)
    assert link(back_to_first, "prev") is None and link(first, "prev") is None


def test_inventory_type_filter(client: TestClient) -> None:
    pages = walk(client, "/tenants/contoso", type=APP)
    ids = [i for p in pages for i in p]
    assert len(ids) == 45 and all(i.startswith("mobi-") for i in ids)
    html = ok(client, "/tenants/contoso", type=APP)
    assert all(APP in r for r in rows(html))


def test_inventory_state_filters(client: TestClient, facts: dict[str, Any]) -> None:
    high = [i for p in walk(client, "/tenants/contoso", state="missing-high") for i in p]
    assert sorted(high) == sorted(o["id"] for o in facts["contoso_gone"])
    html = ok(client, "/tenants/contoso", state="missing-high")
    assert all("missing · high" in r for r in rows(html))
    assert walk(client, "/tenants/contoso", state="missing-low") == [[]]
    low = [i for p in walk(client, "/tenants/fabrikam", state="missing-low") for i in p]
    assert sorted(low) == sorted(o["id"] for o in facts["fabrikam_apps"])
    present = [i for p in walk(client, "/tenants/fabrikam", state="present", type=APP) for i in p]
    assert present == []
    present_dc = [i for p in walk(client, "/tenants/contoso", state="present", type=DC) for i in p]
    assert len(present_dc) == 38 and not set(present_dc) & set(high)


def test_inventory_search_is_substring_case_insensitive_and_literal(client: TestClient) -> None:
    html = ok(client, "/tenants/contoso", q="bitlocker")
    found = rows(html)
    assert found and all("bitlocker" in r.lower() for r in found)
    assert rows(ok(client, "/tenants/contoso", q="%")) == []  # % is a character, not a wildcard
    assert rows(ok(client, "/tenants/contoso", q="_")) == []
    assert len(rows(ok(client, "/tenants/hostile", q="<script>"))) == 1
    some_id = object_ids(html)[0]
    assert object_ids(ok(client, "/tenants/contoso", q=some_id)) == [some_id]  # exact id also finds it


def test_inventory_filters_combine_and_paging_keeps_them(client: TestClient) -> None:
    pages = walk(client, "/tenants/northwind", type=DC, q="win")
    ids = [i for p in pages for i in p]
    assert len(pages) > 1 and all(i.startswith("devi-") for i in ids)
    html = ok(client, "/tenants/northwind", type=DC, q="win")
    nxt = link(html, "next")
    assert nxt is not None and "type=deviceConfiguration" in nxt and "q=win" in nxt


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"type": "nope"}, 400),
        ({"state": "deleted"}, 400),
        ({"after": "garbage!"}, 400),
        ({"before": "W10"}, 400),
    ],
)
def test_inventory_rejects_bad_parameters_clearly(
    client: TestClient, params: dict[str, str], status: int
) -> None:
    response = client.get("/tenants/contoso", params=params)
    assert response.status_code == status
    assert "<h1>That request does not work</h1>" in response.text


def test_unknown_tenant_and_object_are_404(client: TestClient) -> None:
    assert client.get("/tenants/nobody").status_code == 404
    response = client.get(f"/tenants/contoso/objects/{DC}/no-such-id")
    assert response.status_code == 404 and "no-such-id" in response.text
    assert client.get("/runs/999999").status_code == 404


# --- CSV export ---------------------------------------------------------------------------------------


def read_csv(client: TestClient, path: str, **params: Any) -> list[dict[str, str]]:
    response = client.get(path, params=params)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(response.text)))


def test_csv_exports_exactly_the_current_filter(client: TestClient, facts: dict[str, Any]) -> None:
    everything = read_csv(client, "/tenants/northwind/inventory.csv")
    pages = walk(client, "/tenants/northwind")
    assert [r["external_id"] for r in everything] == [i for p in pages for i in p]
    low = read_csv(client, "/tenants/fabrikam/inventory.csv", state="missing-low")
    assert {r["external_id"] for r in low} == {o["id"] for o in facts["fabrikam_apps"]}
    assert {r["state"] for r in low} == {"missing-low"} and {r["tenant_key"] for r in low} == {"fabrikam"}
    apps = read_csv(client, "/tenants/contoso/inventory.csv", type=APP, q="edge")
    assert apps and all(r["policy_type"] == APP and "edge" in r["display_name"].lower() for r in apps)


def test_csv_neutralises_formulas_and_keeps_text(client: TestClient) -> None:
    names = {r["display_name"] for r in read_csv(client, "/tenants/hostile/inventory.csv")}
    assert names == {XSS, IMG, "'" + FORMULA}


# --- object -------------------------------------------------------------------------------------------


def test_object_page_shows_metadata_seen_times_and_missing(client: TestClient, facts: dict[str, Any]) -> None:
    gone = facts["contoso_gone"][0]
    html = ok(client, f"/tenants/contoso/objects/{DC}/{gone['id']}")
    assert unescape(gone[("displayName")]) in unescape(html)
    assert "First seen" in html and "Last seen" in html and "Last changed" in html
    assert "#microsoft.graph.deviceConfiguration" in html and "odata_type" in html
    assert "alert-high" in html and "A run that read everything did not find it" in html
    # last seen by the run before the last one, linked
    assert f'href="/runs/{facts["contoso_runs"][-2]}"' in html
    present = ok(client, f"/tenants/fabrikam/objects/{APP}/{facts['fabrikam_apps'][0]['id']}")
    assert "alert-low" in present and "nothing is concluded" in present


# --- runs ---------------------------------------------------------------------------------------------


def test_tenant_runs_page_has_charts_and_a_row_per_run(client: TestClient, facts: dict[str, Any]) -> None:
    html = ok(client, "/tenants/contoso/runs")
    assert html.count('<svg class="chart"') == 3
    assert html.count('<rect class="bar s-succeeded"') == len(facts["contoso_runs"])
    # a dot per run in the objects chart and in the coverage chart
    assert html.count('<circle class="dot s-succeeded"') == 2 * len(facts["contoso_runs"])
    for run_id in facts["contoso_runs"]:
        assert f'href="/runs/{run_id}"' in html
    # five per page, newest first, then Older
    listed = re.findall(r'<td><a href="/runs/(\d+)">#', html)
    assert listed == [str(i) for i in sorted(facts["contoso_runs"], reverse=True)[:5]]
    older = ok(client, link(html, "next"))
    assert re.findall(r'<td><a href="/runs/(\d+)">#', older) == [str(min(facts["contoso_runs"]))]


def coverage_points(html: str) -> list[tuple[int, str, float, str]]:
    """The coverage chart's dots, oldest first: (run id, status class, y, tooltip)."""
    svg = html.split('aria-label="Policy types read"', 1)[1].split("</svg>", 1)[0]
    return [
        (int(run), status, float(cy), unescape(tip))
        for run, status, cy, tip in re.findall(
            r'<a href="/runs/(\d+)"><circle class="dot s-(\w+)" cx="[\d.]+" cy="([\d.]+)" r="3.5">'
            r"<title>(.*?)</title>",
            svg,
        )
    ]


def _types_read(key: str, runs: int) -> list[int]:
    """What the fleet's stories read per run, oldest first (selection `all` = every registered type)."""
    n = len(REGISTRY)
    if key == "fabrikam":  # five clean runs, then the app permission is withdrawn: all but mobileApp
        return [n] * (runs - 1) + [n - 1]
    if key == "tailspin":  # no Intune licence in either run: only conditional access reads
        return [1] * runs
    return [n] * runs


@pytest.mark.parametrize("key", ["fabrikam", "tailspin", "contoso"])
def test_tenant_runs_page_charts_coverage_per_run(
    client: TestClient, facts: dict[str, Any], key: str
) -> None:
    """One point per sync run of the selection, oldest first, at the share of its policy types read,
    on a 0-100 % axis, with the run's status colour, the count in its tooltip and a link to the run."""
    points = coverage_points(ok(client, f"/tenants/{key}/runs"))
    runs = facts[f"{key}_runs"]
    assert [p[0] for p in points] == runs
    n, plot_h = len(REGISTRY), HEIGHT - PAD_TOP - PAD_BOTTOM
    for (_, status, cy, tip), k in zip(points, _types_read(key, len(runs)), strict=True):
        assert status == ("succeeded" if k == n else "partial"), tip
        assert f"{k}/{n} types read ({100 * k / n:.0f} %)" in tip
        assert cy == pytest.approx(PAD_TOP + plot_h * (1 - k / n), abs=0.1), tip


def test_partial_run_shows_failed_type_with_code_and_sentence(
    client: TestClient, facts: dict[str, Any]
) -> None:
    run_id = facts["fabrikam_runs"][-1]
    html = ok(client, f"/runs/{run_id}")
    assert 'badge s-partial">partial' in html
    failed_row = rows(html.split("Per policy type", 1)[1])[0]  # failed types first
    assert failed_row.startswith(APP) and "failed" in failed_row and "graph_forbidden" in failed_row
    # the sentence from docs/error-codes.md, and what to do
    assert "403: the app lacks the permission for this policy type." in html
    assert "Grant the Graph application permission named in the message." in html


def test_fleet_runs_page_lists_failed_types_and_filters_by_status(
    client: TestClient, facts: dict[str, Any]
) -> None:
    html = ok(client, "/runs", status="partial")
    ids = re.findall(r'<td><a href="/runs/(\d+)">#', html)
    assert set(ids) == {str(facts["fabrikam_runs"][-1]), *map(str, facts["tailspin_runs"])}
    assert 'class="ptype bad">mobileApp' in html and "graph_tenant_not_licensed" in html
    assert "row-partial" in html
    assert re.findall(r'<td><a href="/runs/(\d+)">#', ok(client, "/runs", status="failed")) == []
    assert client.get("/runs", params={"status": "bogus"}).status_code == 400


def test_fleet_runs_page_is_keyset_paged_newest_first(client: TestClient, facts: dict[str, Any]) -> None:
    every = sorted((i for k, v in facts.items() if k.endswith("_runs") for i in v), reverse=True)
    seen: list[int] = []
    html = ok(client, "/runs")
    while True:
        seen += [int(i) for i in re.findall(r'<td><a href="/runs/(\d+)">#', html)]
        nxt = link(html, "next")
        if nxt is None:
            break
        html = ok(client, nxt)
    assert seen == every


# --- missing ------------------------------------------------------------------------------------------


def test_missing_page_lists_both_confidences_and_filters(client: TestClient, facts: dict[str, Any]) -> None:
    everything = [i for p in walk(client, "/missing") for i in p]
    assert len(everything) == 2 + len(facts["fabrikam_apps"]) and len(set(everything)) == len(everything)
    high = [i for p in walk(client, "/missing", confidence="high") for i in p]
    assert sorted(high) == sorted(o["id"] for o in facts["contoso_gone"])
    html = ok(client, "/missing", confidence="high")
    assert all("not_observed" in r and "high" in r for r in rows(html))
    low = [i for p in walk(client, "/missing", tenant="fabrikam") for i in p]
    assert sorted(low) == sorted(o["id"] for o in facts["fabrikam_apps"])
    assert "type_failed" in ok(client, "/missing", tenant="fabrikam")
    assert walk(client, "/missing", tenant="northwind") == [[]]
    assert walk(client, "/missing", selection="apps") == [[]]
    assert client.get("/missing", params={"confidence": "medium"}).status_code == 400
    assert client.get("/missing", params={"selection": "nope"}).status_code == 400


# --- read-only, token, bind ---------------------------------------------------------------------------


def test_reader_sessions_are_the_analyst_role_and_read_only(reader: AnalystReader) -> None:
    with reader.session() as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("tenantatlas_analyst",)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("UPDATE tenants SET display_name = 'x'")
    # Even a transaction that asks to write cannot: the analyst role has no write privilege.
    with reader.session() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SET TRANSACTION READ WRITE")
        conn.execute("DELETE FROM inventory_items")


# SQL keywords are written in capitals in this code base (a docstring may say "copy" in lower case).
_WRITE = re.compile(
    r"\b(INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|TRUNCATE|CREATE|DROP|ALTER|GRANT|COPY|MERGE\s+INTO)\b"
)


def test_the_ui_package_contains_no_write_statement() -> None:
    package = Path(__file__).resolve().parents[1] / "tenantatlas_pipelines" / "ui"
    for path in package.rglob("*.py"):
        assert not _WRITE.search(path.read_text()), path


def test_schema_behind_the_code_is_refused(database_server_url: str) -> None:
    name = "tenantatlas_test_ui_unmigrated"
    admin = with_database(database_server_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    ensure_database(database_server_url, name)
    try:
        reader = AnalystReader(Database(with_database(database_server_url, name)))
        with pytest.raises(TenantAtlasError) as err:
            reader.check_schema()
        assert err.value.code == ErrorCode.DATABASE_ERROR and "tenantatlas db migrate" in err.value.message
        reader.close()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


TOKEN = "s3cret-token-for-the-ui-0123456789"


@pytest.fixture(scope="module")
def guarded(reader: AnalystReader) -> Iterator[TestClient]:
    app = create_app(reader, token=TOKEN, host="0.0.0.0")
    with TestClient(app, base_url="http://ui.example.net") as c:
        yield c


def test_a_configured_token_is_required_on_every_request(guarded: TestClient) -> None:
    guarded.cookies.clear()
    for path in ("/", "/tenants/contoso", "/static/ui.css", "/tenants/contoso/inventory.csv", "/nope"):
        response = guarded.get(path)
        assert response.status_code == 401, path
        assert "Contoso" not in response.text and response.headers["content-security-policy"] == CSP
    assert guarded.get("/", headers={"authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
    assert guarded.get("/", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert guarded.get("/", cookies={"tenantatlas_ui": "forged"}).status_code == 401


def test_token_in_the_address_becomes_a_cookie_and_leaves_the_address(guarded: TestClient) -> None:
    guarded.cookies.clear()
    response = guarded.get("/tenants/contoso", params={"token": TOKEN, "type": APP}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/tenants/contoso?type={APP}"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    assert cookie.startswith(f"tenantatlas_ui={cookie_value(TOKEN)};")
    page = guarded.get("/tenants/contoso", cookies={"tenantatlas_ui": cookie_value(TOKEN)})
    assert page.status_code == 200 and "Contoso Ltd" in page.text
    guarded.cookies.clear()
    wrong = guarded.get("/", params={"token": "not-the-token-at-all"}, follow_redirects=False)
    assert wrong.status_code == 401


def test_token_is_required_on_loopback_too_when_configured(reader: AnalystReader) -> None:
    with TestClient(create_app(reader, token=TOKEN), base_url=BASE) as c:
        assert c.get("/").status_code == 401
        assert c.get("/", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200


# --- snapshots, versions and drift ----------------------------------------------------------------------

SECRETS = ("hunter2", "hunter3", "guest-pw", "lab-pw", "old-pw")


def test_tenant_snapshots_list_and_partial_snapshot_page(client: TestClient, facts: dict[str, Any]) -> None:
    html = ok(client, "/tenants/contoso/snapshots")
    listed = re.findall(r'<td><a href="/snapshots/(\d+)">#', html)
    assert listed == [str(i) for i in reversed(facts["snapshots"])]
    assert 'class="tabs"' in html and 'href="/tenants/contoso/snapshots" class="on"' in html
    page = ok(client, f"/snapshots/{facts['fabrikam_snapshot']}")
    assert 'badge s-partial">partial' in page
    first = rows(page.split("Per policy type", 1)[1])[0]
    assert first.startswith(APP) and "failed" in first and "graph_forbidden" in first
    assert "403: the app lacks the permission for this policy type." in page
    assert client.get("/snapshots/999999").status_code == 404


def test_object_page_lists_versions_and_diffs_two_with_the_one_diff(
    client: TestClient, facts: dict[str, Any]
) -> None:
    changed = facts["drift"]["changed"]["id"]
    html = ok(client, f"/tenants/contoso/objects/{DC}/{changed}")
    versions = re.findall(r"<td>v(\d+)</td>", html)
    assert versions == ["1", "2"]
    diff = unescape(html.split('<table class="changes">')[-1].split("</table>", 1)[0])
    assert re.search(r"<code>ssid</code>.*?<code>\"corp\"</code>.*?<code>\"corp-5g\"</code>", diff, re.S)
    # The group is named as the version's snapshot resolved it (the diff itself keys it by id).
    assert "assignments[group:Sales].filter_mode" in diff and '"include"' in diff and '"exclude"' in diff
    ids = [int(i) for i in re.findall(r'<option value="(\d+)"', html)][:2]
    same = ok(client, f"/tenants/contoso/objects/{DC}/{changed}", **{"from": ids[1], "to": ids[1]})
    assert "These two versions have the same content." in same
    reverse = ok(client, f"/tenants/contoso/objects/{DC}/{changed}", **{"from": ids[1], "to": ids[0]})
    assert re.search(r"<code>&#34;corp-5g&#34;</code></td>\s*<td class=\"new\"><code>&#34;corp&#34;", reverse)
    bad = client.get(f"/tenants/contoso/objects/{DC}/{changed}", params={"from": 1, "to": 999999})
    assert bad.status_code == 400
    assert "without a snapshot" not in html and "No snapshot has captured" in ok(
        client, f"/tenants/northwind/objects/{DC}/{facts['northwind_dc'][10]['id']}"
    )


def test_no_secret_is_rendered_anywhere(client: TestClient, facts: dict[str, Any]) -> None:
    paths = ["/drift?tenant=contoso", "/drift", "/tenants/contoso/snapshots"]
    paths += [f"/tenants/contoso/objects/{DC}/{o['id']}" for o in facts["drift"].values()]
    for path in paths:
        html = ok(client, path)
        assert not [s for s in SECRETS if s in html], path
    content = ok(client, f"/tenants/contoso/objects/{DC}/{facts['drift']['changed']['id']}")
    assert "&#34;preSharedKey&#34;: &#34;[secret]&#34;" in content


def test_drift_page_shows_open_drift_and_accepted_deviations_apart(
    client: TestClient, facts: dict[str, Any]
) -> None:
    html = ok(client, "/drift", tenant="contoso")
    open_part, accepted_part = html.split("Accepted deviations", 1)
    names = {k: unescape(v["displayName"]) for k, v in facts["drift"].items()}
    text_open, text_accepted = unescape(open_part), unescape(accepted_part)
    assert names["changed"] in text_open and names["missing"] in text_open
    assert names["added"] not in text_open and names["added"] in text_accepted
    assert names["unchanged"] not in unescape(html)
    assert "CHG-1042 lab network approved" in text_accepted and "alice@msp.example" in text_accepted
    assert 'class="drift-item alerting"' in open_part and 'class="drift-item accepted"' in accepted_part
    assert "assignments[group:Sales].filter_mode" in text_open  # drift names the group
    summary = rows(html)[0]
    assert (
        summary.startswith("all") and " 2 1 1 1 0 1 " in f" {summary} "
    )  # alerting changed added missing low acc.


def test_fleet_drift_page_and_portfolio_drift_column(client: TestClient) -> None:
    fleet_html = ok(client, "/drift")
    assert rows(fleet_html)[0].startswith("Contoso Ltd contoso all")
    html = ok(client, "/")
    assert _tenant_order(ok(client, "/", sort="drift"))[0] == "contoso"
    row = html.split('href="/tenants/contoso"', 1)[1].split("</tr>", 1)[0]
    assert '<a class="hot" href="/drift?tenant=contoso"' in row
    assert client.get("/drift", params={"tenant": "nobody"}).status_code == 404


# --- dependencies ---------------------------------------------------------------------------------------


def test_dependencies_page_lists_usage_and_dangling_references(
    client: TestClient, facts: dict[str, Any]
) -> None:
    html = ok(client, "/dependencies", tenant="contoso")
    usage = rows(html)
    assert usage[0].startswith("Sales g-sales 2 2 include · 0 exclude")
    assert any(r.startswith("g-gone dangling g-gone 1 0 include · 1 exclude") for r in usage)
    dangling = unescape(html.split("Dangling references", 1)[1])
    assert facts["drift"]["added"]["displayName"] in dangling and "g-gone" in dangling
    filters = ok(client, "/dependencies", tenant="contoso", kind="assignment_filter")
    assert rows(filters)[0].startswith(
        f"Corporate devices {facts['filter']} 1 0 include mode · 1 exclude mode"
    )
    assert (
        "choose a tenant" in ok(client, "/dependencies")
        and client.get("/dependencies", params={"kind": "user"}).status_code == 400
    )


def test_what_uses_a_group_by_id_or_name_and_ambiguous_names(
    client: TestClient, facts: dict[str, Any]
) -> None:
    by_id = ok(client, "/dependencies", tenant="contoso", kind="group", q="g-sales")
    uses = object_ids(by_id.split("What uses", 1)[1].split("</table>", 1)[0])
    assert sorted(uses) == sorted([facts["drift"]["changed"]["id"], facts["drift"]["added"]["id"]])
    # Two groups are called Sales / SALES: a name is not guessed, the ids are listed.
    ambiguous = ok(client, "/dependencies", tenant="contoso", kind="group", q="sales")
    assert "What uses" not in ambiguous and "g-sales, g-sales-eu" in ambiguous and "pass the id" in ambiguous
    corporate = ok(client, "/dependencies", tenant="contoso", kind="assignment_filter", q="corporate DEVICES")
    assert object_ids(corporate.split("What uses", 1)[1].split("</table>", 1)[0]) == [
        facts["drift"]["changed"]["id"]
    ]
    nothing = ok(client, "/dependencies", tenant="contoso", kind="scope_tag", q="nope")
    assert "is used by contoso" in unescape(nothing) and "What uses" not in nothing


def test_object_page_shows_what_it_uses_and_what_uses_it(client: TestClient, facts: dict[str, Any]) -> None:
    added = ok(client, f"/tenants/contoso/objects/{DC}/{facts['drift']['added']['id']}")
    uses = rows(added.split('id="dependencies"', 1)[1])
    assert any(r.startswith("exclude g-gone dangling") for r in uses)
    assert any(r.startswith("include Sales") for r in uses) and any(
        r.startswith("include SALES") for r in uses
    )
    unchanged = ok(client, f"/tenants/contoso/objects/{DC}/{facts['drift']['unchanged']['id']}")
    assert "all devices" in rows(unchanged.split('id="dependencies"', 1)[1])[0]
    the_filter = ok(client, f"/tenants/contoso/objects/assignmentFilter/{facts['filter']}")
    used_by = the_filter.split("Used by", 1)[1]
    assert object_ids(used_by.split("</table>", 1)[0]) == [facts["drift"]["changed"]["id"]]


# --- compare --------------------------------------------------------------------------------------------


def test_compare_page_shows_the_match_table_and_the_plan(client: TestClient, facts: dict[str, Any]) -> None:
    html = ok(client, "/compare", source="contoso", target="northwind", selection="all")
    stats = re.findall(r"<b>(\d+)</b><span>([a-z ]+)</span>", html)
    assert dict((k, int(v)) for v, k in stats) == {
        "identical": 1, "different": 1, "only in source": 1, "only in target": 1, "ambiguous": 0,
    }  # fmt: skip
    table = unescape(html.split("Match table", 1)[1].split("Promotion plan", 1)[0])
    names = {k: unescape(v["displayName"]) for k, v in facts["drift"].items()}
    # The same baseline with other group / filter ids (Sales, Corporate devices) is identical.
    assert re.search(re.escape(names["changed"]) + r".*?m-identical", table, re.S)
    assert re.search(r'<code>ssid</code>.*?<code>"guest"</code>.*?<code>"guest-5g"</code>', table, re.S)
    assert "NW - Warehouse scanners" in table and "m-only_in_target" in table
    plan = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html.split("Promotion plan", 1)[1])))
    assert f"update {names['unchanged']} deviceConfiguration" in plan
    assert re.search(rf"blocked then create {re.escape(names['added'])} deviceConfiguration .*? g-gone", plan)
    assert not [s for s in (*SECRETS, "other-secret", "scan-pw") if s in html]


def test_compare_refuses_what_cannot_be_compared(client: TestClient) -> None:
    assert "Pick a source and a target tenant." in ok(client, "/compare")
    partial_only = client.get("/compare", params={"source": "contoso", "target": "fabrikam"})
    assert partial_only.status_code == 400 and "has no succeeded snapshot" in partial_only.text
    assert client.get("/compare", params={"source": "contoso", "target": "contoso"}).status_code == 400
    assert client.get("/compare", params={"source": "contoso", "target": "nobody"}).status_code == 404
    bad = client.get("/compare", params={"source": "contoso", "target": "northwind", "selection": "nope"})
    assert bad.status_code == 400


def test_portfolio_shows_alignment_to_the_golden_tenant(client: TestClient, facts: dict[str, Any]) -> None:
    html = ok(client, "/")
    row = html.split('href="/tenants/northwind"', 1)[1].split("</tr>", 1)[0]
    percent = int(facts["northwind_alignment"].score * 100)
    assert re.search(
        rf'href="/compare\?source=contoso&amp;target=northwind&amp;selection=all"[^>]*>{percent} %</a>', row
    )
    assert 0 < percent < 100  # one identical, one different, one on each side only
    assert _tenant_order(ok(client, "/", sort="alignment"))[0] == "northwind"
