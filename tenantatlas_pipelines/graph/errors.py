"""Turning Graph answers, Entra/MSAL failures and transport errors into stable error codes.

Everything here is pure (no I/O): the client hands in a status code and a body, or an MSAL result or
exception, and gets back a `GraphError` whose code the sync engine records per policy type. Messages are
built only from identifiers, statuses and the service's own error text (never request data), and every
message passes through `redact` so a secret cannot leak even if a service echoes it back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import ErrorCode, TenantAtlasError

# Statuses retried with backoff. 500 and 502 are retried too, but only a few times (see
# SERVER_ERROR_ATTEMPTS): Intune answers some permanent conditions with a 500, so they must fail soon.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
SHORT_RETRY_STATUSES = frozenset({500, 502})
SERVER_ERROR_ATTEMPTS = 3

_NOT_LICENSED_MARKERS = ("request not applicable to target tenant",)
_AADSTS = re.compile(r"AADSTS(\d{5,})")
_AADSTS_CODES: dict[int, ErrorCode] = {
    7000215: ErrorCode.AUTH_INVALID_CLIENT,  # invalid client secret
    7000222: ErrorCode.AUTH_INVALID_CLIENT,  # client secret expired
    700027: ErrorCode.AUTH_INVALID_CLIENT,  # client assertion (certificate) failed validation
    700016: ErrorCode.AUTH_APP_NOT_CONSENTED,  # application not found in the directory
    90002: ErrorCode.AUTH_TENANT_NOT_FOUND,  # tenant not found
    90023: ErrorCode.AUTH_TENANT_NOT_FOUND,  # invalid tenant name/format (a stronger "not found")
}
_MAX_DETAIL = 300


class GraphError(TenantAtlasError):
    """A failure talking to Entra or Graph: a stable code, a safe message, the HTTP status if any.

    `retryable` says whether trying again later may help (throttling, 5xx, network) as opposed to a
    condition a person must fix (credentials, consent, licence, permissions).
    """

    def __init__(
        self, code: ErrorCode, message: str, status: int | None = None, retryable: bool = False
    ) -> None:
        super().__init__(code, message)
        self.status = status
        self.retryable = retryable

    def __reduce__(self):  # keep pickling faithful to the constructor (Dagster, multiprocessing)
        return (type(self), (self.code, self.message, self.status, self.retryable))

    def with_message(self, message: str) -> GraphError:
        """The same error with a longer story (e.g. how many attempts were made)."""
        return type(self)(self.code, message, self.status, self.retryable)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every non-trivial secret replaced, as a last line of defence for messages."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def safe_url(url: str) -> str:
    """The URL without query string, fragment or user info: nextLinks carry skiptokens and URLs may
    carry anything a caller put there, so errors and logs only ever show scheme, host and path."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _shorten(text: str, limit: int = _MAX_DETAIL) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_graph_error(body: bytes | str | None) -> tuple[str, str]:
    """`(code, message)` from a Graph error envelope, tolerating anything.

    Intune often puts a whole JSON document inside `error.message` (sometimes with its own nested
    `Message`); that inner text is unwrapped so that markers like "Request not applicable to target
    tenant" are found wherever they are.
    """
    if body is None:
        return "", ""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    try:
        doc: Any = json.loads(body)
    except ValueError:
        return "", _shorten(body)
    error = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(error, dict):
        return "", _shorten(body)
    code = error.get("code") if isinstance(error.get("code"), str) else ""
    message = error.get("message")
    message = message if isinstance(message, str) else ""
    return code, _unwrap_nested_message(message)


def _unwrap_nested_message(message: str, depth: int = 0) -> str:
    stripped = message.strip()
    if depth > 3 or not stripped.startswith("{"):
        return message
    try:
        inner = json.loads(stripped)
    except ValueError:
        return message
    if not isinstance(inner, dict):
        return message
    for key in ("Message", "message", "error_description"):
        value = inner.get(key)
        if isinstance(value, str):
            return _unwrap_nested_message(value, depth + 1)
        if isinstance(value, dict):  # {"error": {"message": ...}} shapes
            return _unwrap_nested_message(json.dumps(value), depth + 1)
    nested_error = inner.get("error")
    if isinstance(nested_error, dict) and isinstance(nested_error.get("message"), str):
        return _unwrap_nested_message(nested_error["message"], depth + 1)
    return message


def is_invalid_token(status: int, body: bytes | str | None) -> bool:
    """True for a 401 that a fresh token may cure (Graph says InvalidAuthenticationToken, or nothing)."""
    if status != 401:
        return False
    code, _ = parse_graph_error(body)
    return code in ("", "InvalidAuthenticationToken")


def error_for_response(status: int, body: bytes | str | None, method: str, url: str) -> GraphError:
    """The `GraphError` for a non-2xx Graph answer (the caller decides about retrying it)."""
    graph_code, graph_message = parse_graph_error(body)
    detail = ": ".join(p for p in (graph_code, _shorten(graph_message)) if p)
    where = f"{method} {safe_url(url)} answered HTTP {status}"
    message = f"{where} ({detail})" if detail else where
    if status == 400 and any(m in graph_message.lower() for m in _NOT_LICENSED_MARKERS):
        return GraphError(
            ErrorCode.GRAPH_TENANT_NOT_LICENSED,
            f"tenant has no Intune licence for this request; {message}",
            status,
        )
    if status == 400:
        return GraphError(ErrorCode.GRAPH_BAD_REQUEST, message, status)
    if status == 401:
        return GraphError(ErrorCode.GRAPH_UNAUTHORIZED, message, status)
    if status == 403:
        return GraphError(
            ErrorCode.GRAPH_FORBIDDEN,
            f"{message}; grant the app the Graph application permission this type needs",
            status,
        )
    if status == 404:
        return GraphError(ErrorCode.GRAPH_NOT_FOUND, message, status)
    if status == 429:
        return GraphError(ErrorCode.GRAPH_THROTTLED, message, status, retryable=True)
    if status >= 500:
        return GraphError(ErrorCode.GRAPH_SERVER_ERROR, message, status, retryable=True)
    # Anything else (3xx without Location handling, 405, 409, 412, ...) is a request we got wrong.
    return GraphError(ErrorCode.GRAPH_BAD_REQUEST, message, status)


def aadsts_codes(*texts: object) -> list[int]:
    """Every AADSTSnnnn code found in the given texts, in order of appearance."""
    found: list[int] = []
    for text in texts:
        if text is not None:
            found.extend(int(m) for m in _AADSTS.findall(str(text)))
    return found


def _code_for_aadsts(codes: Iterable[int]) -> ErrorCode | None:
    for code in codes:
        if code in _AADSTS_CODES:
            return _AADSTS_CODES[code]
    return None


def error_for_auth_result(
    result: Mapping[str, Any], tenant_id: str, secrets: Iterable[str | None] = ()
) -> GraphError:
    """The `GraphError` for a failed MSAL `acquire_token_*` result dict."""
    raw_codes = result.get("error_codes")
    codes = [c for c in raw_codes if isinstance(c, int)] if isinstance(raw_codes, list) else []
    description = str(result.get("error_description") or "")
    codes += aadsts_codes(description)
    code = _code_for_aadsts(codes) or ErrorCode.AUTH_FAILED
    first_line = description.splitlines()[0] if description else ""
    detail = _shorten(f"{result.get('error', 'error')}: {first_line}".strip(": "))
    message = redact(f"token request for tenant {tenant_id} failed ({detail})", secrets)
    hint = _AUTH_HINTS.get(code)
    return GraphError(code, f"{message}; {hint}" if hint else message)


_AUTH_HINTS: dict[ErrorCode, str] = {
    ErrorCode.AUTH_INVALID_CLIENT: "check TENANTATLAS_CLIENT_SECRET / the certificate (expired or wrong?)",
    ErrorCode.AUTH_APP_NOT_CONSENTED: "an administrator of the tenant must consent to the app",
    ErrorCode.AUTH_TENANT_NOT_FOUND: "check the tenant id and the cloud (TENANTATLAS_CLOUD)",
}


def error_for_auth_exception(
    exc: BaseException, tenant_id: str, secrets: Iterable[str | None] = ()
) -> GraphError:
    """The `GraphError` for an exception raised while MSAL built its client or requested a token.

    MSAL reports a failed OIDC discovery (unknown tenant) as a ValueError whose context holds the
    endpoint's answer; a 5xx from Entra surfaces as an HTTP status error from the transport; network
    failures surface as the transport's own exceptions.
    """
    import httpx  # local: keep this module importable for pure tests without touching httpx state

    if isinstance(exc, GraphError):
        return exc
    chain = _exception_chain(exc)
    texts = [str(e) for e in chain]
    if any(isinstance(e, httpx.TimeoutException) for e in chain):
        return GraphError(
            ErrorCode.GRAPH_TIMEOUT,
            f"timed out talking to the token endpoint for tenant {tenant_id}",
            retryable=True,
        )
    if any(isinstance(e, httpx.TransportError) for e in chain):
        kind = next(type(e).__name__ for e in chain if isinstance(e, httpx.TransportError))
        return GraphError(
            ErrorCode.GRAPH_NETWORK,
            f"could not reach the token endpoint for tenant {tenant_id} ({kind})",
            retryable=True,
        )
    status_error = next((e for e in chain if isinstance(e, httpx.HTTPStatusError)), None)
    found = aadsts_codes(*texts)
    code = _code_for_aadsts(found)
    if (
        code is None
        and isinstance(exc, ValueError)
        and any("authority configuration" in t or "OIDC Discovery failed" in t for t in texts)
    ):
        code = ErrorCode.AUTH_TENANT_NOT_FOUND
    if code is not None:
        hint = _AUTH_HINTS.get(code, "")
        reason = f" (AADSTS{found[0]})" if found else " (OIDC discovery of the tenant failed)"
        return GraphError(
            code, redact(f"authentication for tenant {tenant_id} failed{reason}; {hint}", secrets)
        )
    status = status_error.response.status_code if status_error is not None else _msal_http_status(texts)
    if status is not None:
        return GraphError(
            ErrorCode.AUTH_FAILED,
            f"token endpoint for tenant {tenant_id} answered HTTP {status}",
            status,
            retryable=status >= 500 or status == 429,
        )
    detail = _shorten(redact(str(exc), secrets), 200)
    return GraphError(
        ErrorCode.AUTH_FAILED,
        f"authentication for tenant {tenant_id} failed ({type(exc).__name__}: {detail})",
    )


_MSAL_HTTP_ERROR = re.compile(r"^HTTP Error: (\d{3})\b")


def _msal_http_status(texts: Iterable[str]) -> int | None:
    # MSAL wraps every response; its raise_for_status() raises MsalServiceError("HTTP Error: 503").
    for text in texts:
        match = _MSAL_HTTP_ERROR.match(text)
        if match:
            return int(match.group(1))
    return None


def _exception_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain
