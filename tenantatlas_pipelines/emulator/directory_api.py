"""Graph endpoints for Entra groups: ``POST directoryObjects/getByIds`` and ``GET groups/{id}``.

getByIds takes at most 1,000 ids (more is a 400); ids that do not resolve (never existed, removed, or
not of the requested ``types``) are simply absent from the answer, which comes back in no particular
order. ``groups/{id}`` answers 404 ``Request_ResourceNotFound`` for a group that no longer exists.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .core import EmulatorState, Request, Response
from .envelope import graph_error, graph_ok
from .present import read_rng

MAX_IDS = 1000
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _select(item: dict[str, Any], opts: dict[str, str]) -> dict[str, Any]:
    if "select" not in opts:
        return item
    keep = {"id", "@odata.type", *(f.strip() for f in opts["select"].split(","))}
    return {k: v for k, v in item.items() if k in keep}


def get_by_ids(state: EmulatorState, request: Request, tenant_id: str, opts: dict[str, str], version: str,
               log: dict[str, Any]) -> Response:
    try:
        body = json.loads(request.body.decode("utf-8") or "null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return graph_error(request, 400, "Invalid JSON in the request body.", code="Request_BadRequest",
                           **log)
    ids = body.get("ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return graph_error(request, 400, "The request body must have an 'ids' array of strings.",
                           code="Request_BadRequest", **log)
    if len(ids) > MAX_IDS:
        return graph_error(request, 400, f"Too many ids in the request: {len(ids)}; the maximum is "
                           f"{MAX_IDS}.", code="Request_BadRequest", **log)
    bad = next((i for i in ids if not _GUID.match(i)), None)
    if bad is not None:
        return graph_error(request, 400, f"Invalid object identifier '{bad[:60]}'.",
                           code="Request_BadRequest", **log)
    types = body.get("types")
    if types is not None and (not isinstance(types, list) or not all(isinstance(t, str) for t in types)):
        return graph_error(request, 400, "'types' must be an array of strings.", code="Request_BadRequest",
                           **log)
    found: list[dict[str, Any]] = []
    if types is None or "group" in {t.lower().removeprefix("microsoft.graph.") for t in types}:
        with state.lock:
            directory = state.directory(tenant_id)
            seen: set[str] = set()
            for gid in ids:
                key = gid.lower()
                group = directory.get(key) if key not in seen else None
                seen.add(key)
                if group is not None:
                    found.append(_select(group, opts))
    read_rng().shuffle(found)
    log["items"] = len(found)
    return graph_ok(request, {"@odata.context": f"{state.base_url}/{version}/$metadata#directoryObjects",
                              "value": found}, **log)


def get_group(state: EmulatorState, request: Request, tenant_id: str, group_id: str, opts: dict[str, str],
              version: str, log: dict[str, Any]) -> Response:
    with state.lock:
        group = state.directory(tenant_id).get(group_id)
    if group is None:
        return graph_error(request, 404, f"Resource '{group_id[:80]}' does not exist or one of its queried "
                                         "reference-property objects are not present.",
                           code="Request_ResourceNotFound", **log)
    item = {"@odata.context": f"{state.base_url}/{version}/$metadata#groups/$entity", **_select(group, opts)}
    log["items"] = 1
    return graph_ok(request, item, **log)
