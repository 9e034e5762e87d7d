"""Microsoft Graph: the Intune (and conditional access) collections of every registry type.

What a client must survive is reproduced here on purpose: per-type page sizes that ignore ``$top``,
absolute nextLinks that repeat the query and carry ``$skiptoken`` (double-encoded for some types) or
``$skip``, ``@odata.count`` that appears unasked, Graph's error envelope with Intune's JSON-in-the-message
habit, per-tenant throttling with and without Retry-After, and the scripted faults of faults.py.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import json
import struct
import time
import zlib
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from ..policy_types import REGISTRY, PolicyType
from .core import GRAPH_CT, EmulatorState, Request, Response, json_bytes, new_id, utc_now
from .data import GdapCustomer
from .entra import verify_token
from .faults import GRAPH_ERROR_KINDS, PAGE_KINDS, Fault, FaultKind

VERSIONS = ("beta", "v1.0")
#: Collections whose page size is fixed by the service whatever $top says.
FIXED_PAGE_SIZE = frozenset({"settingsCatalogPolicy", "mobileApp"})
#: How nextLinks continue: "skiptoken" (default), "skiptoken2" (double-encoded) or "skip" ($skip=N).
PAGING_STYLE: dict[str, str] = {
    "roleScopeTag": "skip",
    "assignmentFilter": "skip",
    "termsAndConditions": "skip",
    "groupPolicyConfiguration": "skiptoken2",
    "deviceHealthScript": "skiptoken2",
}
#: GDAP: the customers of a partner tenant (TenantSpec.customers). Not an Intune type, so it is not in the
#: registry; it is served like one (same auth, rate limit, error faults, skiptoken paging) by _customers.
CUSTOMERS = PolicyType(
    key="delegatedAdminCustomer",
    path="tenantRelationships/delegatedAdminCustomers",
    api_version="v1.0",
    page_size=100,
)
#: Entra and partner-centre collections: unaffected by a missing Intune licence, Graph-style messages.
NOT_INTUNE = frozenset({"conditionalAccessPolicy", CUSTOMERS.key})

_BY_PATH: dict[str, PolicyType] = {t.path.lower(): t for t in REGISTRY.values()}
_TOKEN_MAGIC = b"RDSp"

_SCOPES = {
    "deviceAppManagement": "DeviceManagementApps.Read.All, DeviceManagementApps.ReadWrite.All",
    "roleScopeTag": "DeviceManagementRBAC.Read.All, DeviceManagementRBAC.ReadWrite.All",
    "enrollmentConfiguration": "DeviceManagementServiceConfig.Read.All, "
    "DeviceManagementServiceConfig.ReadWrite.All",
    "autopilotDeploymentProfile": "DeviceManagementServiceConfig.Read.All, "
    "DeviceManagementServiceConfig.ReadWrite.All",
    CUSTOMERS.key: "DelegatedAdminRelationship.Read.All, DelegatedAdminRelationship.ReadWrite.All",
}
_CODES = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "Forbidden",
    404: "ResourceNotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


# --- envelopes ---------------------------------------------------------------------------------------


def _base_headers(request: Request, request_id: str) -> list[tuple[str, str]]:
    return [
        ("request-id", request_id),
        ("client-request-id", request.headers.get("client-request-id") or request_id),
        (
            "x-ms-ags-diagnostic",
            '{"ServerInfo":{"DataCenter":"Emulator","Slice":"E","Ring":"0",'
            '"ScaleUnit":"000","RoleInstance":"EMU000000000000"}}',
        ),
        ("Strict-Transport-Security", "max-age=31536000"),
        ("Cache-Control", "no-cache"),
        ("OData-Version", "4.0"),
    ]


def _intune_message(text: str, request_id: str, retry_after: str | None = None) -> str:
    """Intune's habit: a JSON document (with CRLF indentation) inside the error `message` string."""
    doc = {
        "_version": 3,
        "Message": f"{text} - Operation ID (for customer support): "
        f"00000000-0000-0000-0000-000000000000 - Activity ID: {request_id} - "
        f"Url: https://fef.emulator.manage.microsoft.com/StatelessFEService",
        "CustomApiErrorPhrase": "",
        "RetryAfter": retry_after,
        "ErrorSourceService": "",
        "HttpHeaders": "{}",
    }
    return json.dumps(doc, indent=2).replace("\n", "\r\n")


def graph_error(
    request: Request,
    status: int,
    message: str,
    *,
    code: str | None = None,
    retry_after: str | None = None,
    **log: Any,
) -> Response:
    """Graph's error envelope; `log` fills the request-log fields of the Response."""
    request_id = new_id()
    body = {
        "error": {
            "code": code or _CODES.get(status, "UnknownError"),
            "message": message,
            "innerError": {
                "date": utc_now().strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": request.headers.get("client-request-id") or request_id,
            },
        }
    }
    headers = _base_headers(request, request_id)
    if retry_after is not None:
        headers.append(("Retry-After", retry_after))
    if status == 401:
        headers.append(
            (
                "WWW-Authenticate",
                'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/'
                'authorize", client_id="00000003-0000-0000-c000-000000000000"',
            )
        )
    log.setdefault("endpoint", "graph")
    return Response(status, json_bytes(body), headers=headers, content_type=GRAPH_CT, **log)


def _retry_after_value(spec: str | None) -> str | None:
    if spec is not None and spec.startswith("date+"):
        return email.utils.formatdate(time.time() + float(spec[5:]), usegmt=True)
    return spec


def _fault_response(request: Request, fault: Fault, ptype: PolicyType, **log: Any) -> Response:
    retry_after = _retry_after_value(fault.retry_after)
    intune = ptype.key not in NOT_INTUNE
    if fault.kind == FaultKind.FORBIDDEN:
        if ptype.key == CUSTOMERS.key:
            resp = graph_error(
                request,
                403,
                "Insufficient privileges to complete the operation. Required "
                f"scopes: {_SCOPES[CUSTOMERS.key]}.",
                code="Authorization_RequestDenied",
                **log,
            )
        elif not intune:
            resp = graph_error(
                request,
                403,
                "You cannot perform the requested operation, required scopes are missing in the token.",
                code="AccessDenied",
                **log,
            )
        else:
            area = ptype.path.split("/", 1)[0]
            scopes = (
                _SCOPES.get(ptype.key)
                or _SCOPES.get(area)
                or ("DeviceManagementConfiguration.Read.All, DeviceManagementConfiguration.ReadWrite.All")
            )
            resp = graph_error(
                request,
                403,
                "Application is not authorized to perform this operation. "
                f"Application must have one of the following scopes: {scopes} - Operation ID "
                f"(for customer support): 00000000-0000-0000-0000-000000000000 - Activity ID: "
                f"{new_id()} - Url: https://fef.emulator.manage.microsoft.com/"
                f"{ptype.path}?api-version=5024-05-21 - CustomApiErrorPhrase: ",
                **log,
            )
    else:
        status = 429 if fault.kind == FaultKind.THROTTLE else int(fault.status or 500)
        if fault.reset:
            return Response(0, reset=True, fault=str(fault.kind), **log)
        texts = {
            429: "Too many requests",
            503: "The service is temporarily unavailable",
            504: "The operation has timed out",
            404: "Resource not found",
        }
        text = texts.get(status, "An error has occurred")
        message = _intune_message(text, new_id(), retry_after) if intune and status >= 429 else text + "."
        resp = graph_error(request, status, message, retry_after=retry_after, **log)
    resp.fault = str(fault.kind)
    return resp


# --- paging ------------------------------------------------------------------------------------------


def encode_skiptoken(slot: int, empty: bool = False) -> str:
    # Looks like Graph's opaque tokens and contains '=' (and often '+' or '/'): clients must not rebuild it.
    return base64.b64encode(_TOKEN_MAGIC + struct.pack(">IBB", slot, int(empty), 0x7E)).decode("ascii")


def decode_skiptoken(token: str) -> tuple[int, bool] | None:
    for _ in range(3):  # tolerate double (and triple) encoding, as Graph itself does
        if "%" not in token:
            break
        token = unquote(token)
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 10 or not raw.startswith(_TOKEN_MAGIC):
        return None
    slot, empty, _ = struct.unpack(">IBB", raw[4:])
    return slot, bool(empty)


def _options(query: str) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Raw pairs and a dict keyed by option name without `$`, lower-cased (beta accepts `top=`)."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return pairs, {k.lstrip("$").lower(): v for k, v in pairs}


def _next_link(
    state: EmulatorState,
    request: Request,
    pairs: list[tuple[str, str]],
    style: str,
    slot: int,
    empty: bool = False,
) -> str:
    kept = [(k, v) for k, v in pairs if k.lstrip("$").lower() not in ("skip", "skiptoken")]
    parts = [f"{quote(k, safe='$')}={quote(v, safe='$,()')}" for k, v in kept]
    if style == "skip" and not empty:
        parts.append(f"$skip={slot}")
    else:
        token = quote(encode_skiptoken(slot, empty), safe="")
        parts.append(f"$skiptoken={quote(token, safe='') if style == 'skiptoken2' else token}")
    return f"{state.base_url}{request.path}?{'&'.join(parts)}"


def _project(item: dict[str, Any], select: list[str]) -> dict[str, Any]:
    keep = {"id", "@odata.type", *select}
    return {k: v for k, v in item.items() if k in keep}


def _page(
    state: EmulatorState,
    request: Request,
    spec_tid: str,
    ptype: PolicyType,
    opts: dict[str, str],
    pairs: list[tuple[str, str]],
    log: dict[str, Any],
) -> Response:
    style = PAGING_STYLE.get(ptype.key, "skiptoken")
    start, empty = 0, False
    if "skiptoken" in opts:
        decoded = decode_skiptoken(opts["skiptoken"])
        if decoded is None:
            return graph_error(request, 400, "Invalid $skiptoken value.", **log)
        start, empty = decoded
    elif "skip" in opts:
        if not opts["skip"].isdigit():
            return graph_error(request, 400, f"Invalid $skip value '{opts['skip'][:40]}'.", **log)
        start = int(opts["skip"])
    size = ptype.page_size
    if "top" in opts and ptype.key not in FIXED_PAGE_SIZE:
        if not opts["top"].isdigit() or int(opts["top"]) < 1:
            return graph_error(request, 400, f"Invalid $top value '{opts['top'][:40]}'.", **log)
        size = min(size, int(opts["top"]))
    request_id = new_id()
    context = f"{state.base_url}/{request.path.split('/')[1]}/$metadata#{ptype.path}"
    if empty:  # the continuation of an empty_pages fault: an empty page that points back at the data
        body = {
            "@odata.context": context,
            "value": [],
            "@odata.nextLink": _next_link(state, request, pairs, style, start),
        }
        return Response(
            200,
            json_bytes(body),
            headers=_base_headers(request, request_id),
            content_type=GRAPH_CT,
            fault=str(FaultKind.EMPTY_PAGES),
            **log,
        )

    faults = state.faults.all(PAGE_KINDS, spec_tid, ptype.key)
    kinds = {f.kind for f, _ in faults}
    with state.lock:
        coll = state.collection(spec_tid, ptype.key)
        hidden: set[str] = set()
        for fault, memo in faults:
            if fault.kind == FaultKind.DROP_ONE:
                if fault.external_id:
                    hidden.add(fault.external_id)
                else:
                    if "id" not in memo:
                        first = coll.first_live_slot()
                        memo["id"] = coll.payload_at(first)["id"] if first is not None else None  # type: ignore[index]
                    if memo["id"]:
                        hidden.add(memo["id"])
        pairs_page, next_slot = coll.page(start, size)
        total = coll.count()
    items: list[Any] = [p for _, p in pairs_page if not (isinstance(p.get("id"), str) and p["id"] in hidden)]
    if "select" in opts:
        fields = [f.strip() for f in opts["select"].split(",") if f.strip()]
        items = [_project(p, fields) for p in items]
    if FaultKind.ITEM_WITHOUT_ID in kinds and items:
        items[0] = {k: v for k, v in items[0].items() if k != "id"}
    if FaultKind.NON_OBJECT_ITEM in kinds:
        items = ["unexpected-string-item", *items, 42]

    body: dict[str, Any] = {"@odata.context": context}
    first_page = "skiptoken" not in opts and "skip" not in opts
    if first_page and (opts.get("count", "").lower() == "true" or zlib.crc32(ptype.key.encode()) % 3 == 0):
        body["@odata.count"] = total
    body["value"] = (
        {"@odata.type": "#microsoft.graph.unexpectedObject"} if (FaultKind.MALFORMED_PAGE in kinds) else items
    )
    if FaultKind.NEXTLINK_LOOP in kinds:
        body["@odata.nextLink"] = _next_link(state, request, pairs, "skiptoken", start)
    elif next_slot is not None:
        body["@odata.nextLink"] = _next_link(
            state, request, pairs, style, next_slot, empty=FaultKind.EMPTY_PAGES in kinds
        )
    raw = json_bytes(body)
    if FaultKind.TRUNCATED_PAGE in kinds:
        raw = raw[: max(1, len(raw) // 2)]
    applied = ",".join(sorted(str(k) for k in kinds)) or None
    log["items"] = sum(1 for i in items if isinstance(i, dict))
    return Response(
        200, raw, headers=_base_headers(request, request_id), content_type=GRAPH_CT, fault=applied, **log
    )


def _customers(
    state: EmulatorState,
    request: Request,
    spec_customers: tuple[GdapCustomer, ...],
    opts: dict[str, str],
    pairs: list[tuple[str, str]],
    log: dict[str, Any],
) -> Response:
    """One page of the partner's GDAP customers: `id` and `tenantId` are the customer's tenant id."""
    start = 0
    if "skiptoken" in opts:
        decoded = decode_skiptoken(opts["skiptoken"])
        if decoded is None:
            return graph_error(request, 400, "Invalid $skiptoken value.", **log)
        start = decoded[0]
    size = CUSTOMERS.page_size
    if "top" in opts:
        if not opts["top"].isdigit() or int(opts["top"]) < 1:
            return graph_error(request, 400, f"Invalid $top value '{opts['top'][:40]}'.", **log)
        size = min(size, int(opts["top"]))
    chunk = spec_customers[start : start + size]
    items: list[Any] = [
        {
            "@odata.type": "#microsoft.graph.delegatedAdminCustomer",
            "id": c.tenant_id,
            "tenantId": c.tenant_id,
            "displayName": c.display_name,
        }
        for c in chunk
    ]
    kinds = {f.kind for f, _ in state.faults.all(PAGE_KINDS, log["tenant_id"], CUSTOMERS.key)}
    if FaultKind.NON_OBJECT_ITEM in kinds:
        items = ["unexpected-string-item", *items, 42]
    version = request.path.lstrip("/").split("/", 1)[0]
    body: dict[str, Any] = {
        "@odata.context": f"{state.base_url}/{version}/$metadata#{CUSTOMERS.path}",
        "value": {"@odata.type": "#microsoft.graph.unexpectedObject"}
        if FaultKind.MALFORMED_PAGE in kinds
        else items,
    }
    if FaultKind.NEXTLINK_LOOP in kinds:
        body["@odata.nextLink"] = _next_link(state, request, pairs, "skiptoken", start)
    elif start + size < len(spec_customers):
        body["@odata.nextLink"] = _next_link(state, request, pairs, "skiptoken", start + size)
    raw = json_bytes(body)
    if FaultKind.TRUNCATED_PAGE in kinds:
        raw = raw[: max(1, len(raw) // 2)]
    log["items"] = len(chunk)
    return Response(
        200,
        raw,
        headers=_base_headers(request, new_id()),
        content_type=GRAPH_CT,
        fault=",".join(sorted(str(k) for k in kinds)) or None,
        **log,
    )


# --- entry point -------------------------------------------------------------------------------------


def _resolve(rest: str) -> tuple[PolicyType | None, str | None]:
    """(type, object id or None) for a path below the version segment."""
    key = rest.strip("/").lower()
    if key in _BY_PATH:
        return _BY_PATH[key], None
    if key == CUSTOMERS.path.lower():
        return CUSTOMERS, None
    head, _, tail = key.rpartition("/")
    if head in _BY_PATH and tail:
        original_tail = rest.strip("/").rpartition("/")[2]
        return _BY_PATH[head], unquote(original_tail)
    return None, None


def handle_graph(state: EmulatorState, request: Request) -> Response:
    version, _, rest = request.path.lstrip("/").partition("/")
    if version not in VERSIONS:
        return graph_error(request, 400, f"Invalid version: {version[:40]}", code="BadRequest")
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    claims, problem = verify_token(state, token)
    if claims is None:
        return graph_error(request, 401, problem)
    tid, client_id = claims["tid"], claims.get("appid")
    ptype, object_id = _resolve(rest)
    log: dict[str, Any] = {
        "endpoint": "graph",
        "tenant_id": tid,
        "client_id": client_id,
        "policy_type": ptype.key if ptype else None,
    }
    if ptype is None:
        segment = rest.strip("/").split("/")[-1] or rest
        return graph_error(request, 400, f"Resource not found for the segment '{segment[:80]}'.", **log)
    if request.method != "GET":
        return graph_error(request, 405, "The requested method is not supported by the emulator.", **log)
    spec = state.tenants.get(tid)
    if spec is None:
        return graph_error(request, 401, "Access token validation failure. Invalid issuer.", **log)

    limited, wait, send_header = state.rate_limited(spec)
    if limited:
        retry_after = f"{wait:.3f}".rstrip("0").rstrip(".") if send_header else None
        msg = _intune_message("Too many requests", new_id(), None)
        resp = graph_error(request, 429, msg, retry_after=retry_after, **log)
        resp.fault = "rate_limit"
        return resp
    fault = state.faults.first(GRAPH_ERROR_KINDS, tid, ptype.key)
    if fault is not None:
        return _fault_response(request, fault, ptype, **log)
    if not spec.licensed and ptype.key not in NOT_INTUNE:
        return graph_error(request, 400, "Request not applicable to target tenant.", **log)

    pairs, opts = _options(request.query)
    if ptype is CUSTOMERS:
        return _customers(state, request, spec.customers, opts, pairs, log)
    if object_id is not None:
        with state.lock:
            coll = state.collection(tid, ptype.key)
            slot = coll.slot_of(object_id)
            item = coll.payload_at(slot) if slot is not None else None
        if item is None:
            return graph_error(
                request,
                404,
                _intune_message("Resource not found", new_id())
                if ptype.key not in NOT_INTUNE
                else "Resource not found.",
                **log,
            )
        item["@odata.context"] = f"{state.base_url}/{version}/$metadata#{ptype.path}/$entity"
        log["items"] = 1
        return Response(
            200, json_bytes(item), headers=_base_headers(request, new_id()), content_type=GRAPH_CT, **log
        )
    if "filter" in opts and ptype.key == "autopilotDeploymentProfile":
        return graph_error(
            request, 400, _intune_message("Filtering is not supported on this resource", new_id()), **log
        )
    return _page(state, request, tid, ptype, opts, pairs, log)
