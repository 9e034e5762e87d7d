"""What every `tenantatlas` command module shares: error reporting and plain tables.

Kept apart from cli.py so command modules can import it without importing the command group.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from functools import wraps
from typing import TYPE_CHECKING, Any

import click

from .errors import TenantAtlasError

if TYPE_CHECKING:
    from .db import Database


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn TenantAtlasError into one line on stderr with its stable code, exit status 2."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TenantAtlasError as exc:
            click.echo(f"error [{exc.code}]: {exc.message}", err=True)
            sys.exit(2)

    return wrapper


def database() -> Database:
    """The migrated store (embedded unless TENANTATLAS_DATABASE_URL is set)."""
    from .db import Database

    return Database.from_env()


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    """A plain aligned text table (no dependency, readable in any terminal and CI log)."""
    cells = [[str(h) for h in headers], *[["" if v is None else str(v) for v in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            click.echo("  ".join("-" * w for w in widths))
