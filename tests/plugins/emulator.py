"""Pytest fixtures for the Microsoft Graph + Entra emulator (tenantatlas_pipelines.emulator).

Enable with ``pytest_plugins = ["tests.plugins.emulator"]`` in tests/conftest.py.

Fixtures
--------
``emulator``          function scope. A fresh, started `Emulator` with `small_tenants()` — the
                      DEMO_TENANTS GUIDs and keys (contoso, fabrikam, northwind, tailspin-unlicensed) with a
                      handful of objects per type (settings catalog 30, i.e. two pages). State dir in
                      tmp_path. Faults, mutations and the request log never leak between tests.
``emulator_session``  session scope. One started `Emulator` with the full DEMO_TENANTS (a few thousand
                      objects). Shared: do not mutate it, or use ``emulator_demo``.
``emulator_demo``     function scope. ``emulator_session`` with its faults and request log cleared
                      before and after the test (object mutations are still yours to undo).
``emulator_ssl``      function scope. An `ssl.SSLContext` trusting the ``emulator`` CA, for httpx.
``emulator_token``    function scope. ``emulator_token(tenant_id) -> str``: an access token for the
                      ``emulator`` fetched with a plain client-credentials POST (no MSAL, no cache).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tenantatlas_pipelines.emulator import DEMO_TENANTS, Emulator, small_tenants


def emulator_ssl_context(emu: Emulator) -> ssl.SSLContext:
    """An SSL context that trusts exactly the emulator's CA (not the system store)."""
    return ssl.create_default_context(cafile=str(emu.ca_path))


def fetch_token(emu: Emulator, tenant_id: str, secret: str | None = None) -> str:
    """A Graph access token for `tenant_id` from the emulator's token endpoint."""
    with httpx.Client(verify=emulator_ssl_context(emu), timeout=10) as http:
        resp = http.post(
            f"{emu.authority_host}/{tenant_id}/oauth2/v2.0/token",
            data={
                "client_id": emu.client_id,
                "client_secret": secret or emu.client_secret,
                "scope": f"{emu.graph_url}/.default",
                "grant_type": "client_credentials",
            },
        )
    resp.raise_for_status()
    return resp.json()["access_token"]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    with Emulator(state_dir=tmp_path / "emulator", tenants=small_tenants()) as emu:
        yield emu


@pytest.fixture(scope="session")
def emulator_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(state_dir=tmp_path_factory.mktemp("emulator-session"), tenants=DEMO_TENANTS) as emu:
        yield emu


@pytest.fixture
def emulator_demo(emulator_session: Emulator) -> Iterator[Emulator]:
    emulator_session.clear_faults()
    emulator_session.clear_log()
    yield emulator_session
    emulator_session.clear_faults()
    emulator_session.clear_log()


@pytest.fixture
def emulator_ssl(emulator: Emulator) -> ssl.SSLContext:
    return emulator_ssl_context(emulator)


@pytest.fixture
def emulator_token(emulator: Emulator) -> Callable[[str], str]:
    return lambda tenant_id: fetch_token(emulator, tenant_id)
