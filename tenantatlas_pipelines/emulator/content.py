"""Graph endpoints for full object content: one object, its assignments, its settings, secrets.

``GET {collection}/{id}[?$expand=assignments,settings]``, ``GET {collection}/{id}/assignments``,
``GET configurationPolicies/{id}/settings`` (paged, 25 per page), ``$expand`` on list calls (through
`present`, which graph.py's pager calls per item) and
``GET deviceConfigurations/{id}/getOmaSettingPlainTextValue(secretReferenceValueId='...')``.
"""

from __future__ import annotations

import random
import re
from typing import Any

from ..policy_types import PolicyType
from .assignments import ASSIGNABLE
from .core import EmulatorState, Request, Response, new_id
from .data import Collection
from .envelope import NOT_INTUNE, graph_error, graph_ok, intune_message
from .paging import next_link, window
from .present import encrypt_secrets, encrypt_settings, read_rng, shuffle_arrays, vary

#: Settings per page of ``configurationPolicies/{id}/settings`` (a larger $top is ignored).
SETTINGS_PAGE_SIZE = 25
#: $expand-able navigation properties: lower-cased name -> (property, the types that have it).
_EXPANDABLE = {"assignments": ("assignments", ASSIGNABLE),
               "settings": ("settings", frozenset({"settingsCatalogPolicy", "endpointSecurityIntent"})),
               "definitionvalues": ("definitionValues", frozenset({"groupPolicyConfiguration"}))}
_ODATA_TYPE_NAME = {"settingsCatalogPolicy": "deviceManagementConfigurationPolicy"}


def parse_expand(opts: dict[str, str], ptype: PolicyType) -> tuple[tuple[str, ...], str | None]:
    """(navigation properties to expand, or an error message). Accepts ``a,b`` and ``a($select=...)``."""
    raw = opts.get("expand")
    if raw is None:
        return (), None
    names: list[str] = []
    for part in re.split(r",(?![^(]*\))", raw):
        name = part.split("(", 1)[0].strip()
        if not name:
            continue
        prop, types = _EXPANDABLE.get(name.lower(), ("", frozenset()))
        if ptype.key not in types:
            type_name = _ODATA_TYPE_NAME.get(ptype.key, ptype.path.rsplit("/", 1)[-1].rstrip("s"))
            return (), f"Could not find a property named '{name[:60]}' on type 'microsoft.graph.{type_name}'."
        if prop not in names:
            names.append(prop)
    return tuple(names), None


def gather(coll: Collection, slot: int, payload: dict[str, Any], *, expand: tuple[str, ...],
           content_read: bool) -> dict[str, Any]:
    """The part of a read that needs the state lock: the object with its expanded navigation properties
    (the caller holds the lock). `payload` is the private copy `Collection.payload_at` / `page` give, so
    it is changed in place; `content_read` is the caller's (kept for the symmetry with `finish`)."""
    obj = payload
    for key in expand:
        obj[key] = coll.nav_at(slot, key)
    return obj


def finish(state: EmulatorState, tenant_id: str, obj: dict[str, Any], *, content_read: bool,
           rng: random.Random) -> dict[str, Any]:
    """The rest of a read, on the private copy and without the lock: secrets re-encrypted and, on a
    content read, volatile fields moved and arrays reordered."""
    encrypt_secrets(obj, state.vault, tenant_id)
    if isinstance(obj.get("settings"), list):
        encrypt_settings(obj["settings"], state.vault, rng if content_read else None)
    if content_read:
        vary(obj, rng)
    return obj


def present(state: EmulatorState, tenant_id: str, coll: Collection, slot: int, payload: dict[str, Any], *,
            expand: tuple[str, ...], content_read: bool, rng: random.Random) -> dict[str, Any]:
    """One object as one read returns it (caller holds the lock): `gather` then `finish`."""
    obj = gather(coll, slot, payload, expand=expand, content_read=content_read)
    return finish(state, tenant_id, obj, content_read=content_read, rng=rng)


def _locate(state: EmulatorState, tenant_id: str, ptype: PolicyType,
            object_id: str) -> tuple[Collection, int | None]:
    coll = state.collection(tenant_id, ptype.key)
    return coll, coll.slot_of(object_id)


def not_found(request: Request, ptype: PolicyType, **log: Any) -> Response:
    return graph_error(request, 404, intune_message("Resource not found", new_id())
                       if ptype.key not in NOT_INTUNE else "Resource not found.", **log)


def serve_object(state: EmulatorState, request: Request, tenant_id: str, ptype: PolicyType, object_id: str,
                 opts: dict[str, str], version: str, log: dict[str, Any]) -> Response:
    expand, problem = parse_expand(opts, ptype)
    if problem:
        return graph_error(request, 400, problem, **log)
    with state.lock:
        coll, slot = _locate(state, tenant_id, ptype, object_id)
        payload = coll.payload_at(slot) if slot is not None else None
        if payload is None or slot is None:
            return not_found(request, ptype, **log)
        item = present(state, tenant_id, coll, slot, payload, expand=expand, content_read=True,
                       rng=read_rng())
    if "select" in opts:
        keep = {"id", "@odata.type", *expand, *(f.strip() for f in opts["select"].split(","))}
        item = {k: v for k, v in item.items() if k in keep}
    item = {"@odata.context": f"{state.base_url}/{version}/$metadata#{ptype.path}/$entity", **item}
    log["items"] = 1
    return graph_ok(request, item, **log)


def _nav(state: EmulatorState, request: Request, tenant_id: str, ptype: PolicyType, object_id: str,
         key: str, types: frozenset[str], log: dict[str, Any]) -> list[dict[str, Any]] | Response:
    """An object's navigation property `key` (a private copy), or the 400 / 404 Graph answers when
    the type has no such property or the object does not exist."""
    if ptype.key not in types:
        return graph_error(request, 400, f"Resource not found for the segment '{key}'.", **log)
    with state.lock:
        coll, slot = _locate(state, tenant_id, ptype, object_id)
        if slot is None:
            return not_found(request, ptype, **log)
        return coll.nav_at(slot, key)


def serve_assignments(state: EmulatorState, request: Request, tenant_id: str, ptype: PolicyType,
                      object_id: str, version: str, log: dict[str, Any]) -> Response:
    items = _nav(state, request, tenant_id, ptype, object_id, "assignments", ASSIGNABLE, log)
    if isinstance(items, Response):
        return items
    shuffle_arrays(items, read_rng())
    log["items"] = len(items)
    return graph_ok(request, {"@odata.context": f"{state.base_url}/{version}/$metadata#{ptype.path}"
                                                f"('{object_id}')/assignments", "value": items}, **log)


def serve_settings(state: EmulatorState, request: Request, tenant_id: str, ptype: PolicyType,
                   object_id: str, opts: dict[str, str], pairs: list[tuple[str, str]], version: str,
                   log: dict[str, Any]) -> Response:
    """One page of a policy's settings. Pages are stable slices (so paging is complete); the order
    inside a page and inside every setting tree varies per read."""
    paged = window(request, opts, SETTINGS_PAGE_SIZE, log)
    if isinstance(paged, Response):
        return paged
    start, size = paged
    settings = _nav(state, request, tenant_id, ptype, object_id, "settings", _EXPANDABLE["settings"][1], log)
    if isinstance(settings, Response):
        return settings
    chunk = settings[start:start + size]
    encrypt_settings(chunk, state.vault, read_rng())  # re-encrypts and reorders within the page
    body: dict[str, Any] = {"@odata.context": f"{state.base_url}/{version}/$metadata#{ptype.path}"
                                              f"('{object_id}')/settings", "value": chunk}
    if start == 0 and "skiptoken" not in opts:
        body["@odata.count"] = len(settings)
    if start + size < len(settings):
        body["@odata.nextLink"] = next_link(state, request, pairs, "skiptoken", start + size)
    log["items"] = len(chunk)
    return graph_ok(request, body, **log)


def serve_plaintext(state: EmulatorState, request: Request, tenant_id: str, ptype: PolicyType,
                    object_id: str, reference: str, log: dict[str, Any]) -> Response:
    """``getOmaSettingPlainTextValue``: the clear value behind a secretReferenceValueId this tenant was
    served for this object (what lets a client HMAC a secret that is re-encrypted on every read)."""
    if ptype.key != "deviceConfiguration":
        return graph_error(request, 400, "Resource not found for the segment "
                                         "'getOmaSettingPlainTextValue'.", **log)
    plain = state.vault.plaintext(tenant_id, object_id, reference)
    if plain is None:
        return not_found(request, ptype, **log)
    log["items"] = 1
    return graph_ok(request, {"@odata.context": f"{state.base_url}/beta/$metadata#Edm.String",
                              "value": plain}, **log)


def _nested_read(items: list[dict[str, Any]], expandable: str, opts: dict[str, str],
                 drop: str | None = None) -> list[dict[str, Any]]:
    """Nested entities as one read returns them (in place): `expandable` only with ``$expand``, `drop`
    never, volatile fields moved, order varied."""
    expand = expandable in opts.get("expand", "").lower()
    rng = read_rng()
    for item in items:
        item.pop(drop or "", None)
        if not expand:
            item.pop(expandable, None)
        vary(item, rng)
        item.pop("@odata.etag", None)
    rng.shuffle(items)
    return items


def serve_definition_values(state: EmulatorState, request: Request, tenant_id: str, ptype: PolicyType,
                            object_id: str, opts: dict[str, str], version: str,
                            log: dict[str, Any]) -> Response:
    """``groupPolicyConfigurations/{id}/definitionValues[?$expand=definition]``: one page, any order,
    ``lastModifiedDateTime`` moving per read; presentation values are one level further down."""
    values = _nav(state, request, tenant_id, ptype, object_id, "definitionValues",
                  frozenset({"groupPolicyConfiguration"}), log)
    if isinstance(values, Response):
        return values
    items = _nested_read(values, "definition", opts, drop="presentationValues")
    log["items"] = len(items)
    return graph_ok(request, {"@odata.context": f"{state.base_url}/{version}/$metadata#{ptype.path}"
                                                f"('{object_id}')/definitionValues", "value": items}, **log)


def serve_presentation_values(state: EmulatorState, request: Request, tenant_id: str, ptype: PolicyType,
                              object_id: str, value_id: str, opts: dict[str, str], version: str,
                              log: dict[str, Any]) -> Response:
    """``.../definitionValues/{valueId}/presentationValues[?$expand=presentation]``."""
    if ptype.key != "groupPolicyConfiguration":
        return graph_error(request, 400, "Resource not found for the segment 'presentationValues'.", **log)
    with state.lock:
        coll, slot = _locate(state, tenant_id, ptype, object_id)
        values = coll.nav_at(slot, "definitionValues") if slot is not None else []
    value = next((v for v in values if str(v.get("id", "")).lower() == value_id.lower()), None)
    if value is None:
        return not_found(request, ptype, **log)
    items = _nested_read(list(value.get("presentationValues") or []), "presentation", opts)
    log["items"] = len(items)
    context = (f"{state.base_url}/{version}/$metadata#{ptype.path}('{object_id}')/definitionValues"
               f"('{value_id}')/presentationValues")
    return graph_ok(request, {"@odata.context": context, "value": items}, **log)
