"""App-only tokens per tenant through MSAL, with our own TLS trust and without leaking the credential.

Why it looks like this:
- one `ConfidentialClientApplication` per tenant authority, built lazily and cached, because building
  one runs OIDC discovery and each carries the token cache that makes `acquire_token_for_client` answer
  from memory until shortly before expiry (one token request per tenant per hour, not per page);
- MSAL gets an httpx-backed `http_client` with an explicit SSL context, so `REQUESTS_CA_BUNDLE` /
  `SSL_CERT_FILE` in the environment cannot override the configured trust;
- MSAL caches identical failed token requests for 60 s (and discovery for 24 h) inside the application
  object, so after any failure the object is dropped: a credential fixed in Entra works on the next try.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Mapping
from typing import Any

import httpx
import msal

from ..errors import ErrorCode
from .errors import GraphError, error_for_auth_exception, error_for_auth_result
from .settings import GraphSettings

log = logging.getLogger(__name__)

USER_AGENT = "tenantatlas-pipelines/0.1"


class MsalHttpClient:
    """The minimal HTTP interface MSAL expects (`msal.oauth2cli.http.HttpClient`), on httpx.

    httpx responses already offer what MSAL reads: `status_code`, `text`, `headers`,
    `raise_for_status()`. Transport errors propagate and are mapped by the token provider.
    """

    def __init__(self, ssl_context: ssl.SSLContext, timeout: httpx.Timeout) -> None:
        self._http = httpx.Client(
            verify=ssl_context,
            timeout=timeout,
            headers={"User-Agent": USER_AGENT},
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
            follow_redirects=False,
        )

    def post(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        **_ignored: Any,
    ) -> httpx.Response:
        if isinstance(data, str | bytes):
            return self._http.post(url, params=params, content=data, headers=headers)
        return self._http.post(url, params=params, data=_form(data), headers=headers)

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **_ignored: Any,
    ) -> httpx.Response:
        return self._http.get(url, params=params, headers=headers)

    def close(self) -> None:
        self._http.close()


def _form(data: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Form fields as requests would encode them: MSAL hands the client assertion over as bytes, which
    httpx would otherwise send as the text "b'...'"."""
    if data is None:
        return None
    return {k: v.decode("utf-8") if isinstance(v, bytes) else v for k, v in data.items()}


class TokenProvider:
    """Bearer tokens for Graph per tenant; thread-safe; one instance per process is enough."""

    def __init__(self, settings: GraphSettings, ssl_context: ssl.SSLContext) -> None:
        self._settings = settings
        self._http = MsalHttpClient(
            ssl_context,
            httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
        )
        # Read now, so a broken certificate file fails when the client is built, not mid-run.
        self._credential: str | dict[str, str] = (
            settings.client_secret if settings.client_secret else _certificate_credential(settings)
        )
        self._apps: dict[str, msal.ConfidentialClientApplication] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    # -- public ---------------------------------------------------------------------------------
    def token(self, tenant_id: str, *, force_refresh: bool = False) -> str:
        """A valid access token for `tenant_id` (from MSAL's cache when possible).

        `force_refresh` drops the cached token first: used once after Graph rejects a token (401).
        Raises GraphError with an auth_* code (or graph_network / graph_timeout) on failure.
        """
        with self._tenant_lock(tenant_id):
            try:
                app = self._app(tenant_id)
                if force_refresh:
                    app.remove_tokens_for_client()
                result = app.acquire_token_for_client(scopes=[self._settings.scope])
            except GraphError:
                self._forget(tenant_id)
                raise
            except Exception as exc:
                self._forget(tenant_id)
                raise error_for_auth_exception(exc, tenant_id, self._secrets()) from None
            if not isinstance(result, dict) or "access_token" not in result:
                self._forget(tenant_id)
                raise error_for_auth_result(
                    result if isinstance(result, dict) else {}, tenant_id, self._secrets()
                )
            return str(result["access_token"])

    def close(self) -> None:
        with self._guard:
            self._apps.clear()
        self._http.close()

    # -- internals ------------------------------------------------------------------------------
    def _tenant_lock(self, tenant_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(tenant_id, threading.Lock())

    def _forget(self, tenant_id: str) -> None:
        with self._guard:
            self._apps.pop(tenant_id, None)

    def _secrets(self) -> tuple[str | None, ...]:
        return (self._settings.client_secret,)

    def _app(self, tenant_id: str) -> msal.ConfidentialClientApplication:
        with self._guard:
            app = self._apps.get(tenant_id)
        if app is not None:
            return app
        settings = self._settings
        log.debug("building MSAL client for tenant %s at %s", tenant_id, settings.authority_host)
        app = msal.ConfidentialClientApplication(
            settings.client_id,
            client_credential=self._credential,
            authority=settings.authority(tenant_id),
            http_client=self._http,
            # None lets MSAL decide for Microsoft's hosts; False for every other host.
            instance_discovery=None if settings.instance_discovery else False,
            token_cache=msal.TokenCache(),
        )
        with self._guard:
            self._apps[tenant_id] = app
        return app


def _certificate_credential(settings: GraphSettings) -> dict[str, str]:
    """MSAL's certificate credential from a PEM file holding the private key and the certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    path = settings.certificate_path
    assert path is not None
    try:
        pem = path.read_bytes()
        key = serialization.load_pem_private_key(pem, password=None)
        cert = x509.load_pem_x509_certificate(pem)
    except (OSError, ValueError, TypeError) as exc:
        raise GraphError(
            ErrorCode.CONFIG_INVALID,
            f"cannot read the client certificate {str(path)!r} as an unencrypted PEM with a private "
            f"key and a certificate ({type(exc).__name__})",
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise GraphError(
            ErrorCode.CONFIG_INVALID,
            f"the client certificate {str(path)!r} has a {type(key).__name__}; Entra needs an RSA key",
        )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    # Entra identifies the certificate by its SHA-1 thumbprint (the JWT's x5t header).
    thumbprint = settings.certificate_thumbprint or cert.fingerprint(hashes.SHA1()).hex().upper()
    return {"private_key": key_pem, "thumbprint": thumbprint.replace(":", "")}
