"""Screenshots of every UI page for docs/ui.md, from the demo-like fleet (tests/ui_fleet.py).

    .venv/bin/python -m tests.ui_screenshots [docs/ui] [--port 8081]

Builds the fleet in a database of its own (never the user's), serves the UI on 127.0.0.1:PORT in this
process, and has Debian's chromium (/usr/bin/chromium, through Playwright) photograph each page.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from bench._common import bench_database
from tenantatlas_pipelines.ui.app import create_app
from tenantatlas_pipelines.ui.reader import AnalystReader
from tests.ui_fleet import DC, build_fleet

CHROMIUM = "/usr/bin/chromium"


def serve(reader: AnalystReader, port: int) -> uvicorn.Server:
    server = uvicorn.Server(
        uvicorn.Config(create_app(reader), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the UI did not start")
        time.sleep(0.05)
    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", nargs="?", default="docs/ui")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    db = bench_database("tenantatlas_ui_screenshots")
    facts = build_fleet(db, big=1200)
    reader = AnalystReader(db)
    server = serve(reader, args.port)
    base = f"http://127.0.0.1:{args.port}"
    gone = facts["contoso_gone"][0]
    pages = {
        "portfolio": ("/", 1500),
        "tenant-inventory": ("/tenants/contoso", 1100),
        "tenant-inventory-missing": ("/tenants/fabrikam?state=missing-low", 900),
        "object": (f"/tenants/contoso/objects/{DC}/{gone['id']}", 900),
        "tenant-runs": ("/tenants/contoso/runs", 1100),
        "tenant-runs-coverage": ("/tenants/fabrikam/runs", 1000),
        "run-partial": (f"/runs/{facts['fabrikam_runs'][-1]}", 1000),
        "run-failed": (f"/runs/{facts['tailspin_runs'][-1]}", 1100),
        "runs": ("/runs", 900),
        "missing": ("/missing", 900),
        "hostile": ("/tenants/hostile", 700),
        "snapshots": ("/tenants/contoso/snapshots", 600),
        "snapshot-partial": (f"/snapshots/{facts['fabrikam_snapshot']}", 900),
        "drift": ("/drift?tenant=contoso", 1250),
        "drift-fleet": ("/drift", 600),
        "compare": ("/compare?source=contoso&target=northwind&selection=all", 1300),
        "dependencies": ("/dependencies?tenant=contoso&kind=group&q=g-sales", 1100),
        "object-versions": (f"/tenants/contoso/objects/{DC}/{facts['drift']['changed']['id']}", 1500),
    }
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
            for name, (path, height) in pages.items():
                page.set_viewport_size({"width": 1440, "height": height})
                page.goto(base + path)
                page.screenshot(path=str(out / f"{name}.png"), full_page=False)
                print(out / f"{name}.png")
            browser.close()
    finally:
        server.should_exit = True
        time.sleep(0.3)
        reader.close()


if __name__ == "__main__":
    main()
