"""`tenantatlas ui`: serve the read-only inventory UI (tenantatlas_pipelines/ui, docs/ui.md)."""

from __future__ import annotations

import os
import sys
from datetime import timedelta

import click

from .cli_common import handle_errors

STALE_ENV = "TENANTATLAS_UI_STALE_HOURS"


def ui_token() -> str | None:
    from .ui.security import TOKEN_ENV

    return os.environ.get(TOKEN_ENV, "").strip() or None


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", default=8080, show_default=True, type=int)
@handle_errors
def ui(host: str, port: int) -> None:
    """Serve the inventory UI: portfolio, tenant inventory, objects, runs, missing items.

    Reads as the analyst role and never writes. Binding anything but loopback needs an access token in
    TENANTATLAS_UI_TOKEN, which every request must then carry.
    """
    import uvicorn

    from .db import Database
    from .ui.app import DEFAULT_STALE_AFTER, Settings, create_app
    from .ui.reader import AnalystReader
    from .ui.security import check_bind

    token = ui_token()
    check_bind(host, token)
    stale_hours = os.environ.get(STALE_ENV, "").strip()
    stale_after = timedelta(hours=float(stale_hours)) if stale_hours else DEFAULT_STALE_AFTER
    reader = AnalystReader(Database.from_env(migrate=False))
    reader.check_schema()
    app = create_app(reader, token=token, host=host, settings=Settings(stale_after=stale_after))
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"TenantAtlas UI: http://{shown}:{port}/"
        + ("  (access token required: open it once with ?token=<TENANTATLAS_UI_TOKEN>)" if token else ""),
        err=True,
    )
    # No access log: a first request may carry ?token=, and secrets never reach a log.
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, server_header=False)
    reader.close()


def ui_command(host: str, port: int) -> list[str]:
    """`tenantatlas ui` as a child process of this interpreter (what `tenantatlas dev` starts)."""
    return [sys.executable, "-m", "tenantatlas_pipelines", "ui", "--host", host, "--port", str(port)]
