"""A real browser through the real server: `tenantatlas ui` as a process (uvicorn), Debian's chromium
driven by Playwright, the demo-like fleet in PostgreSQL. Walks portfolio -> tenant -> filter -> object ->
runs -> run -> an object's versions -> drift -> dependencies -> compare -> missing the way a technician
would and asserts what they see; the hostile tenant's name shows as text and runs nothing; the CSP
blocks nothing the pages need.

Needs /usr/bin/chromium (`apt-get install chromium`; `./run test` installs it when missing, as root).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenantatlas_pipelines.db import Database
from tests.ui_fleet import XSS, fleet_database

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium"),
]


def free_port() -> int:
    """A free port in 8080-8089 (the range this project's dev servers use), else any free one."""
    for port in [*range(8080, 8090), 0]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free port")


@pytest.fixture(scope="module")
def fleet(database_server_url: str) -> Iterator[tuple[Database, dict[str, Any]]]:
    with fleet_database(database_server_url, "ui_browser", runs=4, big=40) as built:
        yield built


@pytest.fixture(scope="module")
def server(fleet: tuple[Database, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "TENANTATLAS_DATABASE_URL": fleet[0].url,
        "TENANTATLAS_HOME": str(tmp_path_factory.mktemp("home")),
    }
    env.pop("TENANTATLAS_UI_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tenantatlas_pipelines", "ui", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(base + "/", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout and proc.poll() is not None else ""
                raise RuntimeError(f"tenantatlas ui did not start: {out[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def page(server: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        context = browser.new_context(
            base_url=server, viewport={"width": 1440, "height": 900}, accept_downloads=True
        )
        pg = context.new_page()
        pg.set_default_timeout(30_000)
        pg.csp_messages = []  # type: ignore[attr-defined]
        pg.dialogs = []  # type: ignore[attr-defined]
        pg.on(
            "console",
            lambda m: pg.csp_messages.append(m.text) if "Content Security Policy" in m.text else None,
        )
        pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
        yield pg
        context.close()
        browser.close()


def test_a_technician_walks_from_the_portfolio_to_a_missing_object(page: Any, fleet: Any) -> None:
    _, facts = fleet
    page.goto("/")
    assert page.locator("h1").inner_text() == "Portfolio"
    # styled by the stylesheet the CSP allows
    assert (
        page.locator("header.top").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(15, 27, 45)"
    )
    contoso_dc = page.locator('td.cell a[href="/tenants/contoso?type=deviceConfiguration"]').locator("..")
    assert contoso_dc.get_attribute("class") == "cell c-ok"
    assert contoso_dc.locator(".mh").inner_text() == "\u22122"
    failing = page.locator('td.cell a[href="/tenants/fabrikam?type=mobileApp"]')
    assert failing.locator(".err").inner_text() == "403"
    assert "graph_forbidden" in (failing.get_attribute("title") or "")

    page.get_by_role("link", name="Contoso Ltd").click()
    page.wait_for_url("**/tenants/contoso")
    assert page.locator("h1").inner_text().startswith("Contoso Ltd")
    assert page.locator("table.list tbody tr").count() == 25

    page.select_option("select[name=state]", "missing-high")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**state=missing-high**")
    rows = page.locator("table.list tbody tr")
    assert rows.count() == 2
    assert all("missing · high" in t for t in rows.all_inner_texts())
    names = sorted(o["displayName"] for o in facts["contoso_gone"])
    assert sorted(page.locator("td.name a").all_inner_texts()) == names

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("tenant_key,policy_type,external_id") and len(lines) == 3

    page.locator("td.name a").first.click()
    page.wait_for_url("**/objects/deviceConfiguration/**")
    assert page.locator("h2.obj-name").inner_text() in names
    assert "A run that read everything did not find it." in page.locator(".alert").inner_text()

    page.get_by_role("link", name="Runs", exact=True).nth(1).click()  # the tenant's tab, not the top nav
    page.wait_for_url("**/tenants/contoso/runs")
    assert page.locator("svg.chart").count() == 3  # durations, objects, coverage
    assert page.locator("svg.chart rect.bar").count() == len(facts["contoso_runs"])
    page.locator("table.runs tbody tr").first.locator("a").first.click()
    page.wait_for_url("**/runs/*")
    assert page.locator("h1").inner_text().startswith(f"Run #{facts['contoso_runs'][-1]}")

    # The object's drift and versions: what changed, with the one diff between its two versions.
    changed = facts["drift"]["changed"]
    page.goto(f"/tenants/contoso/objects/deviceConfiguration/{changed['id']}")
    assert page.locator("section#versions table.list tbody tr").count() == 2
    diff = page.locator("section#versions table.changes").inner_text()
    assert "ssid" in diff and '"corp"' in diff and '"corp-5g"' in diff
    page.get_by_role("link", name="Drift", exact=True).nth(1).click()  # the tenant's tab
    page.wait_for_url("**/drift?tenant=contoso")
    open_drift = page.locator("section.card").filter(has_text="Open drift")
    assert changed["displayName"] in open_drift.inner_text()
    accepted = page.locator("section.accepted-section").inner_text()
    assert facts["drift"]["added"]["displayName"] in accepted and "CHG-1042" in accepted
    assert facts["drift"]["added"]["displayName"] not in open_drift.inner_text()

    # What uses a group that no longer exists (dangling), found by typing its id.
    page.get_by_role("link", name="Dependencies", exact=True).nth(1).click()  # the tenant's tab
    page.wait_for_url("**/dependencies?tenant=contoso")
    page.fill("input[name=q]", "g-gone")
    page.get_by_role("button", name="Find").click()
    page.wait_for_url("**q=g-gone**")
    found = page.locator("section.card").filter(has_text="What uses").locator("tbody tr")
    assert found.count() == 1 and facts["drift"]["added"]["displayName"] in found.inner_text()

    # Compare contoso with northwind: the match table and the plan.
    page.get_by_role("link", name="Compare", exact=True).click()
    page.select_option("select[name=source]", "contoso")
    page.select_option("select[name=target]", "northwind")
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url("**source=contoso**")
    matches = page.locator("table.compare > tbody > tr").all_inner_texts()
    assert len(matches) == 4 and any("identical" in m for m in matches)
    assert "update" in page.locator("section.card").filter(has_text="Promotion plan").inner_text()

    page.get_by_role("link", name="Missing", exact=True).first.click()
    page.select_option("select[name=confidence]", "high")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**confidence=high**")
    assert page.locator("table.list tbody tr").count() == 2
    assert page.csp_messages == [] and page.dialogs == []


def test_partial_run_page_says_which_type_failed_and_why(page: Any, fleet: Any) -> None:
    _, facts = fleet
    page.goto(f"/runs/{facts['fabrikam_runs'][-1]}")
    assert "partial" in page.locator("h1").inner_text()
    first = page.locator("table.list tbody tr").first
    assert first.get_attribute("class") == "row-fail"
    text = first.inner_text()
    assert "mobileApp" in text and "graph_forbidden" in text
    assert "403: the app lacks the permission for this policy type." in text


def test_hostile_names_show_as_text_and_run_nothing(page: Any) -> None:
    page.goto("/")
    page.goto("/tenants/hostile")
    assert page.locator("h1").inner_text().strip() == XSS
    names = page.locator("td.name a").all_inner_texts()
    assert XSS in names and '"><img src=x onerror=alert(2)>' in names
    assert page.locator("main script").count() == 0 and page.locator("main img").count() == 0
    page.goto("/missing")
    page.goto("/")
    assert page.dialogs == [] and page.csp_messages == []
