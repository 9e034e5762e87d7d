"""The one TLS trust decision for both Entra (MSAL) and Graph (httpx).

An explicit `ssl.SSLContext` is handed to every connection we make, so environment variables that
silently replace trust in other libraries (`REQUESTS_CA_BUNDLE` wins over `session.verify` in requests,
which MSAL uses by default) cannot undo it. A configured CA bundle is ADDED to the usual trust (the
system store plus certifi's Mozilla bundle), never substituted for it: a corporate TLS-inspecting proxy
CA and Microsoft's public chain must both keep working.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from ..errors import ErrorCode
from .errors import GraphError


def build_ssl_context(ca_bundle: Path | None = None) -> ssl.SSLContext:
    """A verifying client context: system trust + certifi + the optional extra bundle."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    try:
        import certifi  # an httpx dependency: present wherever httpx is

        context.load_verify_locations(cafile=certifi.where())
    except (ImportError, OSError):  # pragma: no cover - system trust alone still verifies
        pass
    if ca_bundle is not None:
        try:
            context.load_verify_locations(cafile=str(ca_bundle))
        except (OSError, ssl.SSLError) as exc:
            raise GraphError(
                ErrorCode.CONFIG_INVALID,
                f"cannot load CA bundle {str(ca_bundle)!r}: {type(exc).__name__}",
            ) from None
    return context
