"""Where TenantAtlas keeps its state, resolved from the environment in one place."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def home_dir() -> Path:
    """TENANTATLAS_HOME (default ./.tenantatlas): embedded PostgreSQL data, Dagster instance, emulator."""
    return Path(os.environ.get("TENANTATLAS_HOME", ".tenantatlas")).expanduser().resolve()


def database_url_from_env() -> str | None:
    """An external PostgreSQL when TENANTATLAS_DATABASE_URL is set; None means use the embedded server."""
    url = os.environ.get("TENANTATLAS_DATABASE_URL", "").strip()
    return url or None


def sql_dir() -> Path:
    """The numbered migrations; TENANTATLAS_SQL_DIR lets an installed image point elsewhere."""
    override = os.environ.get("TENANTATLAS_SQL_DIR")
    return Path(override) if override else PROJECT_ROOT / "sql"


def env_int(name: str, default: int) -> int:
    """A whole-number setting from the environment; CONFIG_INVALID naming the variable, never its value.

    Why not int(os.environ[...]): its ValueError quotes the value, and a secret pasted into the wrong
    variable would reach the definitions' load error, the UI and the logs.
    """
    from .errors import ErrorCode, TenantAtlasError

    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise TenantAtlasError(ErrorCode.CONFIG_INVALID, f"{name} must be a whole number") from None


def env_float(name: str, default: float, minimum: float) -> float:
    """A number of seconds (or any real setting) from the environment, at least `minimum`;
    CONFIG_INVALID naming the variable, never its value (as env_int)."""
    from .errors import ErrorCode, TenantAtlasError

    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= minimum:  # also refuses nan
        raise TenantAtlasError(ErrorCode.CONFIG_INVALID, f"{name} must be a number, at least {minimum:g}")
    return value
