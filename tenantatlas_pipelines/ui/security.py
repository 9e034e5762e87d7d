"""Who may open the UI and what the browser is allowed to do with its pages.

- Bind: loopback by default; any other address only with an access token configured
  (TENANTATLAS_UI_TOKEN), because the pages show every tenant's inventory.
- Token: when configured it is required on every request, whatever the bind: `Authorization: Bearer`,
  or `?token=` once (answered with an HttpOnly, SameSite=Strict cookie and a redirect that drops it from
  the address bar and history). The cookie holds an HMAC of the token, never the token.
- Host: on a loopback bind only loopback Host headers are served (a DNS-rebinding page cannot read it).
- Headers on every answer: a strict Content-Security-Policy (no script at all, styles and images from
  the UI itself, no framing), nosniff, no referrer, no caching of tenant data.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ErrorCode, TenantAtlasError

TOKEN_ENV = "TENANTATLAS_UI_TOKEN"
COOKIE = "tenantatlas_ui"
MIN_TOKEN_LENGTH = 16
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'none'; "
    "connect-src 'none'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name or a wildcard (0.0.0.0 is not loopback either)


def check_bind(host: str, token: str | None) -> None:
    """CONFIG_INVALID for a non-loopback bind without a token, or a token too short to be one."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise TenantAtlasError(
            ErrorCode.CONFIG_INVALID,
            f"{TOKEN_ENV} is too short: use at least {MIN_TOKEN_LENGTH} random characters "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)",
        )
    if not is_loopback(host) and token is None:
        raise TenantAtlasError(
            ErrorCode.CONFIG_INVALID,
            f"refusing to serve the UI on {host}: it shows every tenant's inventory, so an address other "
            f"than 127.0.0.1 needs an access token in {TOKEN_ENV}",
        )


def allowed_hosts(host: str, token: str | None) -> list[str]:
    """Host headers to serve: loopback names on a loopback bind; anything when a token guards it."""
    if token is not None and not is_loopback(host):
        return ["*"]
    return sorted({*LOOPBACK_HOSTS, host})


def cookie_value(token: str) -> str:
    return hmac.new(token.encode(), b"tenantatlas-ui-session", hashlib.sha256).hexdigest()


class SecurityMiddleware:
    """Token check (when configured) and the security headers, as plain ASGI around the app."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token
        self.cookie = cookie_value(token) if token is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [
                    *[(k, v) for k, v in message["headers"] if k.lower() not in _HEADER_NAMES],
                    *SECURITY_HEADERS,
                ]
            await send(message)

        if self.token is None:
            await self.app(scope, receive, send_with_headers)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        offered = dict(query).get("token")
        if offered is not None and hmac.compare_digest(offered.encode(), self.token.encode()):
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            location = scope.get("root_path", "") + scope["path"] + (f"?{rest}" if rest else "")
            await _respond(
                send_with_headers,
                303,
                b"",
                [
                    (b"location", location.encode("latin-1", "replace")),
                    (
                        b"set-cookie",
                        f"{COOKIE}={self.cookie}; HttpOnly; SameSite=Strict; Path=/".encode(),
                    ),
                ],
            )
            return
        if self._authorised(headers):
            await self.app(scope, receive, send_with_headers)
            return
        await _respond(
            send_with_headers,
            401,
            b"<!doctype html><title>TenantAtlas: access token required</title>"
            b"<h1>Access token required</h1><p>This TenantAtlas UI requires its access token: open it "
            b"once as <code>/?token=&lt;token&gt;</code>, or send <code>Authorization: Bearer "
            b"&lt;token&gt;</code>. Ask whoever runs it for the token.</p>",
            [(b"content-type", b"text/html; charset=utf-8"), (b"www-authenticate", b"Bearer")],
        )

    def _authorised(self, headers: dict[str, str]) -> bool:
        assert self.token is not None and self.cookie is not None
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer " and hmac.compare_digest(
            auth[7:].strip().encode(), self.token.encode()
        ):
            return True
        jar = SimpleCookie()
        try:
            jar.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is simply no credential
            return False
        morsel = jar.get(COOKIE)
        return morsel is not None and hmac.compare_digest(morsel.value.encode(), self.cookie.encode())


_HEADER_NAMES = {name for name, _ in SECURITY_HEADERS}


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
