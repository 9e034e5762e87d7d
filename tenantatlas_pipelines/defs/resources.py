"""Dagster resources: the inventory database and the Graph client, configured from the environment.

Both are `ConfigurableResource`s whose fields are fed by `EnvVar` (see `resources_from_env`), so the UI
shows *which* variable configures a field and never a secret's value. Expensive objects (a migrated
Database, a GraphClient with its connection pool and token cache) are built once per process and
reused by every run in it: the in-process executor and the CLI's demo run many partitions per process.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

if TYPE_CHECKING:
    from ..db import Database
    from ..graph.client import GraphClient
    from ..graph.settings import GraphSettings

_lock = threading.Lock()
_databases: dict[str, Database] = {}
_clients: dict[tuple[GraphSettings, float | None], GraphClient] = {}

# Graph settings the resource carries as fields; other TENANTATLAS_GRAPH_* tuning stays in the env.
GRAPH_ENV: dict[str, str] = {
    "client_id": "TENANTATLAS_CLIENT_ID",
    "client_secret": "TENANTATLAS_CLIENT_SECRET",
    "authority_host": "TENANTATLAS_AUTHORITY_HOST",
    "graph_url": "TENANTATLAS_GRAPH_URL",
    "ca_bundle": "TENANTATLAS_CA_BUNDLE",
    "cloud": "TENANTATLAS_CLOUD",
    "client_certificate": "TENANTATLAS_CLIENT_CERTIFICATE",
}
DATABASE_ENV: dict[str, str] = {"database_url": "TENANTATLAS_DATABASE_URL", "home": "TENANTATLAS_HOME"}


class InventoryDatabase(ConfigurableResource):
    """The TenantAtlas PostgreSQL database (external by URL, else the embedded server under `home`)."""

    database_url: str | None = Field(default=None, description="TENANTATLAS_DATABASE_URL; unset = embedded")
    home: str | None = Field(default=None, description="TENANTATLAS_HOME (embedded server data)")

    def get_database(self) -> Database:
        """A migrated Database, built once per process per URL (migrations are checked once).

        Unset fields fall back to the process env at run time, like Database.from_env.
        """
        from ..config import database_url_from_env, home_dir
        from ..db import Database, embedded_url

        url = self.database_url or database_url_from_env()
        if url is None:
            url = embedded_url(Path(self.home).resolve() if self.home else home_dir())
        with _lock:
            db = _databases.get(url)
            if db is None:
                db = Database(url)
                db.migrate()
                _databases[url] = db
        return db


class GraphResource(ConfigurableResource):
    """Microsoft Graph credentials and endpoints; one shared GraphClient per process and settings."""

    client_id: str | None = None
    client_secret: str | None = Field(default=None, description="from TENANTATLAS_CLIENT_SECRET; never shown")
    client_certificate: str | None = None
    authority_host: str | None = None
    graph_url: str | None = None
    ca_bundle: str | None = None
    cloud: str | None = None

    def settings(self) -> GraphSettings:
        """Validated GraphSettings: these fields over the TENANTATLAS_* tuning variables of the env."""
        from ..graph.settings import GraphSettings

        # Unset fields fall back to the process env at run time (a variable set after definitions were
        # loaded, e.g. by `tenantatlas demo` starting the emulator, still counts).
        environ = dict(os.environ)
        for field, var in GRAPH_ENV.items():
            value = getattr(self, field)
            if value:
                environ[var] = value
        return GraphSettings.from_env(environ)

    def get_client(self) -> GraphClient:
        from ..graph.client import GraphClient

        settings = self.settings()
        # A CA bundle rewritten in place (a restarted emulator) needs a new TLS context, hence a new client.
        key = (settings, settings.ca_bundle.stat().st_mtime if settings.ca_bundle else None)
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = GraphClient(settings)
        return client


def close_clients() -> None:
    """Close and forget the process's Graph clients (e.g. when the emulator they talk to stops)."""
    _close_clients()


def _close_clients() -> None:
    with _lock:
        for client in _clients.values():
            with contextlib.suppress(Exception):  # closing at exit is best effort
                client.close()
        _clients.clear()


atexit.register(_close_clients)


def _env_fed(fields: dict[str, str]) -> dict[str, Any]:
    """EnvVar for every variable that is set at load time; unset ones keep the field's default.

    Why not EnvVar unconditionally: an unset EnvVar fails every run with a generic config error, while
    an unset field makes GraphSettings fail with the stable code (auth_missing_credentials) and a
    sentence naming the variable to set, the vocabulary operators already alert on.
    """
    return {field: EnvVar(var) for field, var in fields.items() if os.environ.get(var, "").strip()}


def resources_from_env() -> dict[str, ConfigurableResource]:
    """The resources the definitions bind: `inventory_db` and `graph`."""
    return {
        "inventory_db": InventoryDatabase(**_env_fed(DATABASE_ENV)),
        "graph": GraphResource(**_env_fed(GRAPH_ENV)),
    }
