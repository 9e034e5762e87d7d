"""Graph's answer envelopes: response headers, the error body, and Intune's JSON-in-the-message habit.

Shared by every Graph endpoint module (graph.py, content.py, directory_api.py, batch.py).
"""

from __future__ import annotations

import json
from typing import Any

from .core import GRAPH_CT, Request, Response, json_bytes, new_id, utc_now

#: Entra and partner-centre collections (and groups): unaffected by a missing Intune licence, Graph-style
#: error messages rather than Intune's JSON-in-the-message.
NOT_INTUNE = frozenset({"conditionalAccessPolicy", "delegatedAdminCustomer", "group"})

_CODES = {400: "BadRequest", 401: "InvalidAuthenticationToken", 403: "Forbidden", 404: "ResourceNotFound",
          405: "MethodNotAllowed", 409: "Conflict", 429: "TooManyRequests", 500: "InternalServerError",
          502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}


def base_headers(request: Request, request_id: str) -> list[tuple[str, str]]:
    return [("request-id", request_id),
            ("client-request-id", request.headers.get("client-request-id") or request_id),
            ("x-ms-ags-diagnostic", '{"ServerInfo":{"DataCenter":"Emulator","Slice":"E","Ring":"0",'
                                    '"ScaleUnit":"000","RoleInstance":"EMU000000000000"}}'),
            ("Strict-Transport-Security", "max-age=31536000"), ("Cache-Control", "no-cache"),
            ("OData-Version", "4.0")]


def intune_message(text: str, request_id: str, retry_after: str | None = None) -> str:
    """Intune's habit: a JSON document (with CRLF indentation) inside the error `message` string."""
    doc = {"_version": 3, "Message": f"{text} - Operation ID (for customer support): "
                                     f"00000000-0000-0000-0000-000000000000 - Activity ID: {request_id} - "
                                     f"Url: https://fef.emulator.manage.microsoft.com/StatelessFEService",
           "CustomApiErrorPhrase": "", "RetryAfter": retry_after, "ErrorSourceService": "",
           "HttpHeaders": "{}"}
    return json.dumps(doc, indent=2).replace("\n", "\r\n")


def graph_error(request: Request, status: int, message: str, *, code: str | None = None,
                retry_after: str | None = None, **log: Any) -> Response:
    """Graph's error envelope; `log` fills the request-log fields of the Response."""
    request_id = new_id()
    body = {"error": {"code": code or _CODES.get(status, "UnknownError"), "message": message,
                      "innerError": {"date": utc_now().strftime("%Y-%m-%dT%H:%M:%S"),
                                     "request-id": request_id,
                                     "client-request-id": request.headers.get("client-request-id")
                                     or request_id}}}
    headers = base_headers(request, request_id)
    if retry_after is not None:
        headers.append(("Retry-After", retry_after))
    if status == 401:
        headers.append(("WWW-Authenticate",
                        'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/'
                        'authorize", client_id="00000003-0000-0000-c000-000000000000"'))
    log.setdefault("endpoint", "graph")
    return Response(status, json_bytes(body), headers=headers, content_type=GRAPH_CT, **log)


def graph_ok(request: Request, body: Any, **log: Any) -> Response:
    """A 200 with a JSON body and Graph's headers; `log` fills the request-log fields."""
    log.setdefault("endpoint", "graph")
    return Response(200, json_bytes(body), headers=base_headers(request, new_id()), content_type=GRAPH_CT,
                    **log)
