"""The one TLS trust decision for both Entra (MSAL) and Graph (httpx).

An explicit `ssl.SSLContext` is handed to every connection we make, so environment variables that
silently replace trust in other libraries (`REQUESTS_CA_BUNDLE` wins over `session.verify` in requests,
which MSAL uses by default) cannot undo it. A configured CA bundle is ADDED to the usual trust, never
substituted for it: a corporate TLS-inspecting proxy CA and Microsoft's public chain must both keep
working. The usual trust is the system store; certifi's Mozilla bundle (an httpx dependency) stands in
only where the system store is empty (slim images without ca-certificates). Loading both would parse the
same ~150 roots twice, which costs every run process ~20 ms for nothing.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from ..errors import ErrorCode
from .errors import GraphError


def build_ssl_context(ca_bundle: Path | None = None) -> ssl.SSLContext:
    """A verifying client context: system trust (else certifi) + the optional extra bundle."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if not context.cert_store_stats()["x509_ca"]:
        _add_certifi(context)
    if ca_bundle is not None:
        try:
            context.load_verify_locations(cafile=str(ca_bundle))
        except (OSError, ssl.SSLError) as exc:
            raise GraphError(
                ErrorCode.CONFIG_INVALID,
                f"cannot load CA bundle {str(ca_bundle)!r}: {type(exc).__name__}",
            ) from None
    return context


def _add_certifi(context: ssl.SSLContext) -> None:
    try:
        import certifi  # an httpx dependency: present wherever httpx is

        context.load_verify_locations(cafile=certifi.where())
    except (ImportError, OSError):  # pragma: no cover - nothing else to fall back to
        pass
