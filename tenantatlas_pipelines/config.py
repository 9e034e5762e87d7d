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
