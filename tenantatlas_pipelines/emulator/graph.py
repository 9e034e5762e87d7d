"""Microsoft Graph: the Intune (and conditional access) collections of every registry type.

What a client must survive is reproduced here on purpose: per-type page sizes that ignore ``$top``,
absolute nextLinks that repeat the query and carry ``$skiptoken`` (double-encoded for some types) or
``$skip``, ``@odata.count`` that appears unasked, Graph's error envelope with Intune's JSON-in-the-message
habit, per-tenant throttling with and without Retry-After, and the scripted faults of faults.py.
"""

from __future__ import annotations

import email.utils
import random
import re
import time
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from ..policy_types import REGISTRY, PolicyType
from .content import (
    finish,
    gather,
    parse_expand,
    serve_assignments,
    serve_definition_values,
    serve_object,
    serve_plaintext,
    serve_presentation_values,
    serve_settings,
)
from .core import GRAPH_CT, EmulatorState, Request, Response, json_bytes, new_id
from .data import GdapCustomer
from .directory_api import get_by_ids, get_group
from .entra import verify_token
from .envelope import NOT_INTUNE, base_headers, graph_error, intune_message
from .faults import GRAPH_ERROR_KINDS, PAGE_KINDS, Fault, FaultKind, add_hostile_value, hostile_bytes
from .paging import decode_skiptoken, next_link, options, window
from .present import read_rng
from .rendering import json_text, render

VERSIONS = ("beta", "v1.0")
#: Collections whose page size is fixed by the service whatever $top says.
FIXED_PAGE_SIZE = frozenset({"settingsCatalogPolicy", "mobileApp"})
#: How nextLinks continue: "skiptoken" (default), "skiptoken2" (double-encoded) or "skip" ($skip=N).
PAGING_STYLE: dict[str, str] = {
    "roleScopeTag": "skip", "assignmentFilter": "skip", "termsAndConditions": "skip",
    "groupPolicyConfiguration": "skiptoken2", "deviceHealthScript": "skiptoken2",
}
#: GDAP: the customers of a partner tenant (TenantSpec.customers). Not an Intune type, so it is not in the
#: registry; it is served like one (same auth, rate limit, error faults, skiptoken paging) by _customers.
CUSTOMERS = PolicyType(key="delegatedAdminCustomer", path="tenantRelationships/delegatedAdminCustomers",
                       api_version="v1.0", page_size=100)

#: How faults and errors see the Entra group endpoints (getByIds, groups/{id}).
_GROUP_SCOPE = PolicyType(key="group", path="groups", api_version="v1.0", page_size=100)

_BY_PATH: dict[str, PolicyType] = {t.path.lower(): t for t in REGISTRY.values()}

_SCOPES = {
    "deviceAppManagement": "DeviceManagementApps.Read.All, DeviceManagementApps.ReadWrite.All",
    "roleScopeTag": "DeviceManagementRBAC.Read.All, DeviceManagementRBAC.ReadWrite.All",
    "enrollmentConfiguration": "DeviceManagementServiceConfig.Read.All, "
                               "DeviceManagementServiceConfig.ReadWrite.All",
    "autopilotDeploymentProfile": "DeviceManagementServiceConfig.Read.All, "
                                  "DeviceManagementServiceConfig.ReadWrite.All",
    CUSTOMERS.key: "DelegatedAdminRelationship.Read.All, DelegatedAdminRelationship.ReadWrite.All",
}
def _retry_after_value(spec: str | None) -> str | None:
    if spec is not None and spec.startswith("date+"):
        return email.utils.formatdate(time.time() + float(spec[5:]), usegmt=True)
    return spec


def _fault_response(request: Request, fault: Fault, ptype: PolicyType, **log: Any) -> Response:
    retry_after = _retry_after_value(fault.retry_after)
    intune = ptype.key not in NOT_INTUNE
    if fault.kind == FaultKind.FORBIDDEN:
        if ptype.key == CUSTOMERS.key:
            resp = graph_error(request, 403, "Insufficient privileges to complete the operation. Required "
                               f"scopes: {_SCOPES[CUSTOMERS.key]}.", code="Authorization_RequestDenied",
                               **log)
        elif not intune:
            resp = graph_error(request, 403, "You cannot perform the requested operation, required scopes "
                               "are missing in the token.", code="AccessDenied", **log)
        else:
            area = ptype.path.split("/", 1)[0]
            scopes = _SCOPES.get(ptype.key) or _SCOPES.get(area) or (
                "DeviceManagementConfiguration.Read.All, DeviceManagementConfiguration.ReadWrite.All")
            resp = graph_error(request, 403, "Application is not authorized to perform this operation. "
                               f"Application must have one of the following scopes: {scopes} - Operation ID "
                               f"(for customer support): 00000000-0000-0000-0000-000000000000 - Activity ID: "
                               f"{new_id()} - Url: https://fef.emulator.manage.microsoft.com/"
                               f"{ptype.path}?api-version=5024-05-21 - CustomApiErrorPhrase: ", **log)
    else:
        status = 429 if fault.kind == FaultKind.THROTTLE else int(fault.status or 500)
        if fault.reset:
            return Response(0, reset=True, fault=str(fault.kind), **log)
        texts = {429: "Too many requests", 503: "The service is temporarily unavailable",
                 504: "The operation has timed out", 404: "Resource not found"}
        text = texts.get(status, "An error has occurred")
        message = intune_message(text, new_id(), retry_after) if intune and status >= 429 else text + "."
        resp = graph_error(request, status, message, retry_after=retry_after, **log)
    resp.fault = str(fault.kind)
    return resp


# --- paging ------------------------------------------------------------------------------------------


def _project(item: dict[str, Any], select: list[str]) -> dict[str, Any]:
    keep = {"id", "@odata.type", *select}
    return {k: v for k, v in item.items() if k in keep}


def _page(state: EmulatorState, request: Request, spec_tid: str, ptype: PolicyType,
          opts: dict[str, str], pairs: list[tuple[str, str]], log: dict[str, Any],
          expand: tuple[str, ...] = ()) -> Response:
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
        body = {"@odata.context": context, "value": [],
                "@odata.nextLink": next_link(state, request, pairs, style, start)}
        return Response(200, json_bytes(body), headers=base_headers(request, request_id),
                        content_type=GRAPH_CT, fault=str(FaultKind.EMPTY_PAGES), **log)

    faults = state.faults.all(PAGE_KINDS, spec_tid, ptype.key)
    kinds = {f.kind for f, _ in faults}
    # Generated settings-catalog settings are served from their compiled JSON (rendering.py) unless a
    # fault or $select has to work on the page's objects.
    fast = "settings" in expand and not kinds and "select" not in opts
    without_settings = tuple(k for k in expand if k != "settings")
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
        content_read = bool(expand) or state.volatile_lists
        gathered: list[tuple[Any, Any]] = []
        for slot, p in pairs_page:
            if isinstance(p.get("id"), str) and p["id"] in hidden:
                continue
            template = coll.settings_template(slot) if fast else None
            gathered.append((gather(coll, slot, p, expand=expand if template is None else without_settings,
                                    content_read=content_read), template))
    rng = read_rng()
    gathered = [(finish(state, spec_tid, obj, content_read=content_read, rng=rng), t) for obj, t in gathered]
    if content_read:
        rng.shuffle(gathered)  # within the page only, so paging stays complete
    if fast:
        return _rendered_page(state, request, ptype, context, gathered, total, opts, pairs, style,
                              next_slot, request_id, rng, log)
    items: list[Any] = [obj for obj, _ in gathered]
    if "select" in opts:
        fields = [f.strip() for f in opts["select"].split(",") if f.strip()]
        items = [_project(p, [*fields, *expand]) for p in items]
    if FaultKind.ITEM_WITHOUT_ID in kinds and items:
        items[0] = {k: v for k, v in items[0].items() if k != "id"}
    if FaultKind.NON_OBJECT_ITEM in kinds:
        items = ["unexpected-string-item", *items, 42]

    body: dict[str, Any] = {"@odata.context": context}
    first_page = "skiptoken" not in opts and "skip" not in opts
    if first_page and (opts.get("count", "").lower() == "true" or zlib.crc32(ptype.key.encode()) % 3 == 0):
        body["@odata.count"] = total
    body["value"] = {"@odata.type": "#microsoft.graph.unexpectedObject"} if (
        FaultKind.MALFORMED_PAGE in kinds) else items
    if FaultKind.NEXTLINK_LOOP in kinds:
        body["@odata.nextLink"] = next_link(state, request, pairs, "skiptoken", start)
    elif next_slot is not None:
        body["@odata.nextLink"] = next_link(state, request, pairs, style, next_slot,
                                             empty=FaultKind.EMPTY_PAGES in kinds)
    add_hostile_value(body, kinds)
    raw = hostile_bytes(json_bytes(body), kinds)
    if FaultKind.TRUNCATED_PAGE in kinds:
        raw = raw[: max(1, len(raw) // 2)]
    applied = ",".join(sorted(str(k) for k in kinds)) or None
    log["items"] = sum(1 for i in items if isinstance(i, dict))
    return Response(200, raw, headers=base_headers(request, request_id), content_type=GRAPH_CT,
                    fault=applied, **log)


def _rendered_page(state: EmulatorState, request: Request, ptype: PolicyType, context: str,
                   gathered: list[tuple[Any, Any]], total: int, opts: dict[str, str],
                   pairs: list[tuple[str, str]], style: str, next_slot: int | None, request_id: str,
                   rng: random.Random, log: dict[str, Any]) -> Response:
    """A fault-free content page written as UTF-8 directly: each object serialised without its settings, its
    compiled settings rendered for this read (rendering.py) and put in as its last member. The same
    body `_page` builds from dicts, but for the order of members, which JSON does not keep."""
    texts: list[bytes] = []
    for obj, template in gathered:
        # A lone surrogate (hostile content set through the admin interface) goes out as a JSON escape,
        # as json_bytes writes it: it can only stand inside a JSON string.
        text = json_text(obj).encode("utf-8", "backslashreplace")
        if template is not None:
            comma = b"," if len(text) > 2 else b""
            text = text[:-1] + comma + b'"settings":' + render(template, state.vault, rng) + b"}"
        texts.append(text)
    head: dict[str, Any] = {"@odata.context": context}
    if "skiptoken" not in opts and "skip" not in opts and (
            opts.get("count", "").lower() == "true" or zlib.crc32(ptype.key.encode()) % 3 == 0):
        head["@odata.count"] = total
    parts = [json_text(head)[:-1].encode("utf-8", "backslashreplace"), b',"value":[', b",".join(texts), b"]"]
    if next_slot is not None:
        link = next_link(state, request, pairs, style, next_slot, empty=False)
        parts.append(b',"@odata.nextLink":' + json_text(link).encode("utf-8", "backslashreplace"))
    parts.append(b"}")
    raw = b"".join(parts)
    log["items"] = len(texts)
    return Response(200, raw, headers=base_headers(request, request_id), content_type=GRAPH_CT, **log)


def _customers(state: EmulatorState, request: Request, spec_customers: tuple[GdapCustomer, ...],
               opts: dict[str, str], pairs: list[tuple[str, str]], log: dict[str, Any]) -> Response:
    """One page of the partner's GDAP customers: `id` and `tenantId` are the customer's tenant id."""
    paged = window(request, opts, CUSTOMERS.page_size, log)
    if isinstance(paged, Response):
        return paged
    start, size = paged
    chunk = spec_customers[start:start + size]
    items: list[Any] = [{"@odata.type": "#microsoft.graph.delegatedAdminCustomer", "id": c.tenant_id,
                         "tenantId": c.tenant_id, "displayName": c.display_name} for c in chunk]
    kinds = {f.kind for f, _ in state.faults.all(PAGE_KINDS, log["tenant_id"], CUSTOMERS.key)}
    if FaultKind.NON_OBJECT_ITEM in kinds:
        items = ["unexpected-string-item", *items, 42]
    version = request.path.lstrip("/").split("/", 1)[0]
    body: dict[str, Any] = {"@odata.context": f"{state.base_url}/{version}/$metadata#{CUSTOMERS.path}",
                            "value": {"@odata.type": "#microsoft.graph.unexpectedObject"}
                            if FaultKind.MALFORMED_PAGE in kinds else items}
    if FaultKind.NEXTLINK_LOOP in kinds:
        body["@odata.nextLink"] = next_link(state, request, pairs, "skiptoken", start)
    elif start + size < len(spec_customers):
        body["@odata.nextLink"] = next_link(state, request, pairs, "skiptoken", start + size)
    add_hostile_value(body, kinds)
    raw = hostile_bytes(json_bytes(body), kinds)
    if FaultKind.TRUNCATED_PAGE in kinds:
        raw = raw[: max(1, len(raw) // 2)]
    log["items"] = len(chunk)
    return Response(200, raw, headers=base_headers(request, new_id()), content_type=GRAPH_CT,
                    fault=",".join(sorted(str(k) for k in kinds)) or None, **log)


# --- entry point -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """What a Graph path below the version segment names."""

    kind: str  # list | object | assignments | settings | plaintext | definitionValues | presentationValues
    #            | customers | getByIds | group
    ptype: PolicyType | None = None
    object_id: str | None = None
    extra: str | None = None  # the secretReferenceValueId of a plaintext call

    @property
    def scope(self) -> str | None:
        """The policy-type key faults, rate-limit logging and the request log know this route by."""
        if self.kind in ("getByIds", "group"):
            return "group"
        return self.ptype.key if self.ptype else None

    @property
    def method(self) -> str:
        return "POST" if self.kind == "getByIds" else "GET"


#: App protection policies are listed at managedAppPolicies but addressed per platform type.
_APP_PROTECTION_PATHS = frozenset(f"deviceappmanagement/{p}" for p in (
    "iosmanagedappprotections", "androidmanagedappprotections", "windowsmanagedappprotections",
    "windowsinformationprotectionpolicies", "mdmwindowsinformationprotectionpolicies", "managedapppolicies"))
_PLAINTEXT = re.compile(r"^getOmaSettingPlainTextValue\(secretReferenceValueId='([^']*)'\)$", re.IGNORECASE)
_SUBRESOURCES = {"assignments": "assignments", "settings": "settings"}


def route(rest: str) -> Route | None:
    """The Route of a path below the version segment, or None (400 "Resource not found for the segment")."""
    raw = rest.strip("/")
    key = raw.lower()
    if key in _BY_PATH:
        return Route("list", _BY_PATH[key])
    if key == CUSTOMERS.path.lower():
        return Route("customers", CUSTOMERS)
    if key == "directoryobjects/getbyids":
        return Route("getByIds")
    parts = raw.split("/")
    if len(parts) == 2 and parts[0].lower() == "groups" and parts[1]:
        return Route("group", object_id=unquote(parts[1]))
    for n in (2, 3):  # collection paths have two or three segments
        head = "/".join(parts[:n]).lower()
        ptype = _BY_PATH.get(head) or (REGISTRY["appProtectionPolicy"] if head in _APP_PROTECTION_PATHS
                                       else None)
        if ptype is None or len(parts) <= n or not parts[n]:
            continue
        object_id, tail = unquote(parts[n]), parts[n + 1:]
        if not tail:
            return Route("object", ptype, object_id)
        if len(tail) == 1 and tail[0].lower() in _SUBRESOURCES:
            return Route(_SUBRESOURCES[tail[0].lower()], ptype, object_id)
        m = _PLAINTEXT.match(unquote(tail[0])) if len(tail) == 1 else None
        if m:
            return Route("plaintext", ptype, object_id, m.group(1))
        if len(tail) == 1 and tail[0].lower() == "definitionvalues":
            return Route("definitionValues", ptype, object_id)
        nested = (tail[0].lower(), tail[2].lower()) if len(tail) == 3 else None
        if nested == ("definitionvalues", "presentationvalues"):
            return Route("presentationValues", ptype, object_id, unquote(tail[1]))
    return None


def handle_graph(state: EmulatorState, request: Request) -> Response:
    version, _, rest = request.path.lstrip("/").partition("/")
    if version not in VERSIONS:
        return graph_error(request, 400, f"Invalid version: {version[:40]}", code="BadRequest")
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    claims, problem = verify_token(state, token)
    if claims is None:
        return graph_error(request, 401, problem)
    if rest.strip("/").lower() == "$batch":
        from .batch import handle_batch  # batch re-enters serve() for every inner request

        return handle_batch(state, request, claims, version)
    return serve(state, request, claims, version, rest)


def serve(state: EmulatorState, request: Request, claims: dict[str, Any], version: str, rest: str,
          batch: str | None = None) -> Response:
    """Answer one authenticated Graph request (a plain one, or one inner request of a $batch).

    Order of checks: route, method, rate limit, error faults, licence, then the endpoint (and its page
    faults). Every request that reaches the rate limiter counts against the tenant's window.
    """
    tid, client_id = claims["tid"], claims.get("appid")
    target = route(rest)
    log: dict[str, Any] = {"endpoint": "graph", "tenant_id": tid, "client_id": client_id,
                           "policy_type": target.scope if target else None, "batch": batch}
    if target is None:
        segment = rest.strip("/").split("/")[-1] or rest
        return graph_error(request, 400, f"Resource not found for the segment '{segment[:80]}'.", **log)
    if request.method != target.method:
        return graph_error(request, 405, "The requested method is not supported by the emulator.", **log)
    spec = state.tenants.get(tid)
    if spec is None:
        return graph_error(request, 401, "Access token validation failure. Invalid issuer.", **log)

    limited, wait, send_header = state.rate_limited(spec)
    if limited:
        retry_after = f"{wait:.3f}".rstrip("0").rstrip(".") if send_header else None
        msg = intune_message("Too many requests", new_id(), None)
        resp = graph_error(request, 429, msg, retry_after=retry_after, **log)
        resp.fault = "rate_limit"
        return resp
    fault = state.faults.first(GRAPH_ERROR_KINDS, tid, target.scope)
    if fault is not None:
        return _fault_response(request, fault, target.ptype or _GROUP_SCOPE, **log)
    if not spec.licensed and target.scope not in NOT_INTUNE:
        return graph_error(request, 400, "Request not applicable to target tenant.", **log)

    pairs, opts = options(request.query)
    if target.kind == "customers":
        return _customers(state, request, spec.customers, opts, pairs, log)
    if target.kind == "getByIds":
        return get_by_ids(state, request, tid, opts, version, log)
    if target.kind == "group":
        return get_group(state, request, tid, target.object_id or "", opts, version, log)
    ptype, object_id = target.ptype, target.object_id or ""
    assert ptype is not None
    if target.kind == "object":
        return serve_object(state, request, tid, ptype, object_id, opts, version, log)
    if target.kind == "assignments":
        return serve_assignments(state, request, tid, ptype, object_id, version, log)
    if target.kind == "settings":
        return serve_settings(state, request, tid, ptype, object_id, opts, pairs, version, log)
    if target.kind == "plaintext":
        return serve_plaintext(state, request, tid, ptype, object_id, target.extra or "", log)
    if target.kind == "definitionValues":
        return serve_definition_values(state, request, tid, ptype, object_id, opts, version, log)
    if target.kind == "presentationValues":
        return serve_presentation_values(state, request, tid, ptype, object_id, target.extra or "", opts,
                                         version, log)
    if "filter" in opts and ptype.key == "autopilotDeploymentProfile":
        return graph_error(request, 400, intune_message("Filtering is not supported on this resource",
                                                        new_id()), **log)
    expand, problem = parse_expand(opts, ptype)
    if problem:
        return graph_error(request, 400, problem, **log)
    return _page(state, request, tid, ptype, opts, pairs, log, expand)
