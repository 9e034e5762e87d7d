"""`tenantatlas emulator serve`: the bundled Microsoft Graph + Entra emulator as a process."""

from __future__ import annotations

from pathlib import Path

import click

from .cli_common import handle_errors


@click.group()
def emulator() -> None:
    """The bundled Microsoft Graph + Entra emulator (see docs/emulator.md)."""


@emulator.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, type=int, help="0 picks a free port.")
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the CA and emulator.json go (default TENANTATLAS_HOME/emulator).",
)
@click.option("--latency-ms", default=0.0, type=float, help="Added to every request.")
@click.option("--seed", default=0, type=int, help="Deterministic demo data seed.")
@handle_errors
def serve_cmd(host: str, port: int, state_dir: Path | None, latency_ms: float, seed: int) -> None:
    """Serve the demo tenants over HTTPS until interrupted; emulator.json tells clients where it is."""
    from .config import home_dir
    from .emulator import serve

    serve(
        host=host, port=port, state_dir=state_dir or home_dir() / "emulator", latency_ms=latency_ms, seed=seed
    )
