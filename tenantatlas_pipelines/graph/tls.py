"""The one TLS trust decision for both Entra (MSAL) and Graph (httpx).

An explicit `ssl.SSLContext` is handed to every connection we make, so environment variables that
silently replace trust in other libraries (`REQUESTS_CA_BUNDLE` wins over `session.verify` in requests,
which MSAL uses by default) cannot undo it. A configured CA bundle is ADDED to the usual trust, never
substituted for it: a corporate TLS-inspecting proxy CA and Microsoft's public chain must both keep
working. The usual trust is the system store, and certifi's Mozilla bundle (an httpx dependency) is
added where that store cannot be relied on for the public roots: when it is empty (slim images without
ca-certificates), or when SSL_CERT_FILE / SSL_CERT_DIR replace it (often with just a proxy's CA, while
Microsoft's endpoints are exempt from inspection). In the common case, a populated system store and no
override, certifi is skipped: it would re-parse the same ~150 roots, ~20 ms per run process.
"""

from __future__ import annotations

import functools
import os
import ssl
from pathlib import Path

from ..errors import ErrorCode
from .errors import GraphError


def build_ssl_context(ca_bundle: Path | None = None) -> ssl.SSLContext:
    """A verifying client context: system trust (+ certifi where needed) + the optional extra bundle.

    One context per process for the same trust inputs (the SSL_CERT_* overrides and the bundle file's
    path, size and mtime): loading the stores costs 0.2-0.4 CPU-s, once per Graph client, i.e. per run,
    and a run worker forked from the warm zygote inherits the zygote's context (measured with
    bench/fleet.py). Callers share it read-only: httpx and MSAL only wrap sockets with it.
    """
    paths = ssl.get_default_verify_paths()
    overrides = tuple(os.environ.get(var) for var in (paths.openssl_cafile_env, paths.openssl_capath_env))
    return _cached_context(overrides, ca_bundle, _file_identity(ca_bundle))


def _file_identity(path: Path | None) -> tuple[int, int] | None:
    try:
        stat = os.stat(path) if path is not None else None
    except OSError:
        return None  # loading it fails below with the configuration error
    return None if stat is None else (stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _cached_context(
    overrides: tuple[str | None, ...], ca_bundle: Path | None, _identity: tuple[int, int] | None
) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if any(overrides) or not context.cert_store_stats()["x509_ca"]:
        _add_certifi(context)
    if ca_bundle is not None:
        try:
            context.load_verify_locations(cafile=str(ca_bundle))
        except (OSError, ssl.SSLError) as exc:
            raise GraphError(
                ErrorCode.CONFIG_INVALID,
                f"cannot load the CA bundle TENANTATLAS_CA_BUNDLE names: {type(exc).__name__}",
            ) from None
    return context


def _add_certifi(context: ssl.SSLContext) -> None:
    try:
        import certifi  # an httpx dependency: present wherever httpx is

        context.load_verify_locations(cafile=certifi.where())
    except (ImportError, OSError):  # pragma: no cover - nothing else to fall back to
        pass
