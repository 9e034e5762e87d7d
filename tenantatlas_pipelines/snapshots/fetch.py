"""How a snapshot reads full content through graph/: the fetch strategy (measured in bench/snapshot.py).

`expand` (default): each collection is listed with `$expand=assignments` (and `settings` for the
settings catalog) where Graph allows it, so one list page carries complete objects; an object whose
expansion is missing or incomplete (`settings@odata.nextLink`) is read again on its own, through `$batch`.
`batch`: plain list pages, then every assignable object's details through `$batch`, 20 per call.
Types Graph cannot expand (scope tags, filters, conditional access, ...) carry their full content in the
list page under both strategies. Administrative templates (groupPolicyConfiguration) keep their content
below the object, as Graph does: `definitionValues?$expand=definition` per policy, then
`presentationValues?$expand=presentation` per value, both through `$batch`.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..errors import ErrorCode, TenantAtlasError
from ..graph.errors import error_for_response
from ..normalize import InventoryRecord, ItemRejected, normalize_item
from ..policy_types import get_policy_type

if TYPE_CHECKING:
    from ..graph.client import GraphClient, RequestStats

FETCH_ENV = "TENANTATLAS_SNAPSHOT_FETCH"

# Types whose assignments Graph returns with `$expand=assignments` and at `{id}/assignments`.
ASSIGNABLE: frozenset[str] = frozenset({
    "deviceConfiguration", "deviceCompliancePolicy", "settingsCatalogPolicy", "groupPolicyConfiguration",
    "endpointSecurityIntent", "deviceManagementScript", "deviceHealthScript", "windowsFeatureUpdateProfile",
    "windowsQualityUpdateProfile", "autopilotDeploymentProfile", "enrollmentConfiguration", "mobileApp",
    "appConfigurationPolicy", "appProtectionPolicy",
})
WITH_SETTINGS: frozenset[str] = frozenset({"settingsCatalogPolicy"})


class Strategy(StrEnum):
    EXPAND = "expand"
    BATCH = "batch"


def strategy_from_env() -> Strategy:
    """TENANTATLAS_SNAPSHOT_FETCH (`expand` by default, or `batch`); CONFIG_INVALID otherwise."""
    value = os.environ.get(FETCH_ENV, "").strip() or Strategy.EXPAND
    try:
        return Strategy(value)
    except ValueError:
        raise TenantAtlasError(
            ErrorCode.CONFIG_INVALID, f"{FETCH_ENV} must be 'expand' or 'batch', not {value[:40]!r}"
        ) from None


def expand_for(policy_type: str) -> str | None:
    """The `$expand` that makes an object of this type complete, or None (nothing to expand)."""
    if policy_type in WITH_SETTINGS:
        return "assignments,settings"
    return "assignments" if policy_type in ASSIGNABLE else None


def needs_details(policy_type: str, raw: Mapping[str, Any], strategy: Strategy) -> bool:
    """Whether a listed object must be read on its own to be complete."""
    if expand_for(policy_type) is None:
        return False
    if strategy is Strategy.BATCH or "assignments" not in raw or "assignments@odata.nextLink" in raw:
        return True
    return policy_type in WITH_SETTINGS and ("settings" not in raw or "settings@odata.nextLink" in raw)


def detail_url(policy_type: str, external_id: str) -> str:
    """The `$batch` URL (relative to the version) of one complete object."""
    entry = get_policy_type(policy_type)
    return f"/{entry.path.strip('/')}/{quote(external_id, safe='')}?$expand={expand_for(policy_type)}"


ADMX_TYPE = "groupPolicyConfiguration"


def _batched(
    graph: GraphClient, tenant_id: str, api_version: str, urls: Sequence[str], stats: RequestStats
) -> list[Any]:
    """Bodies of GETs through `$batch` (20 per call), in order; None for a 404; anything else fails."""
    from ..graph.client import BATCH_LIMIT  # httpx and MSAL load only where Graph is called

    out: list[Any] = []
    for start in range(0, len(urls), BATCH_LIMIT):
        chunk = list(urls[start : start + BATCH_LIMIT])
        for url, (status, body) in zip(
            chunk, graph.batch_get(tenant_id, chunk, api_version, stats=stats), strict=True
        ):
            if 200 <= status < 300 and isinstance(body, dict):
                out.append(body)
            elif status == 404:
                out.append(None)
            else:
                raise error_for_response(status, json.dumps(body) if body is not None else None, "GET", url)
    return out


def _page_items(body: Any, url: str) -> list[Any]:
    """The items of a one-page answer; a second page would make the object incomplete: fail loudly."""
    if body is None:
        return []
    if body.get("@odata.nextLink"):
        raise TenantAtlasError(ErrorCode.GRAPH_INVALID_RESPONSE,
                               f"GET {url.split('?')[0]} answered more than one page; not read completely")
    items = body.get("value")
    if not isinstance(items, list):
        raise TenantAtlasError(
            ErrorCode.GRAPH_INVALID_RESPONSE, f"GET {url.split('?')[0]} has no 'value' list"
        )
    return [i for i in items if isinstance(i, dict)]


def fetch_definition_values(
    graph: GraphClient, tenant_id: str, ids: Sequence[str], stats: RequestStats
) -> dict[str, list[dict[str, Any]]]:
    """Administrative-template content by policy id: definition values with their `definition` and
    `presentationValues` (each with its `presentation`)."""
    base = f"/{get_policy_type(ADMX_TYPE).path}"
    value_urls = [f"{base}/{quote(i, safe='')}/definitionValues?$expand=definition" for i in ids]
    bodies = _batched(graph, tenant_id, "beta", value_urls, stats)
    values = {i: _page_items(body, url) for i, url, body in zip(ids, value_urls, bodies, strict=True)}
    wanted = [(i, v) for i in ids for v in values[i] if v.get("id") is not None]
    presentation_urls = [
        f"{base}/{quote(i, safe='')}/definitionValues/{quote(str(v['id']), safe='')}"
        "/presentationValues?$expand=presentation" for i, v in wanted
    ]
    bodies = _batched(graph, tenant_id, "beta", presentation_urls, stats)
    for (_, value), url, body in zip(wanted, presentation_urls, bodies, strict=True):
        value["presentationValues"] = _page_items(body, url)
    return values


@dataclass(frozen=True)
class ObjectPage:
    """One list page, made complete: raw objects keyed by their clean id, and what was rejected."""

    objects: list[tuple[str, dict[str, Any]]]
    rejected: list[ItemRejected]
    gone: int  # listed, then 404 when read on its own: deleted meanwhile, not in this snapshot


def fetch_details(
    graph: GraphClient, tenant_id: str, policy_type: str, ids: Sequence[str], stats: RequestStats
) -> dict[str, dict[str, Any] | None]:
    """Complete objects by id through `$batch` (20 per call); None for an object that is gone (404).
    Any other failure, after the client's retries of inner 429/5xx, fails the read (the type)."""
    entry = get_policy_type(policy_type)
    urls = [detail_url(policy_type, i) for i in ids]
    return dict(zip(ids, _batched(graph, tenant_id, entry.api_version, urls, stats), strict=True))


_DONE = object()


def prefetched(pages: Iterable[ObjectPage], depth: int = 1) -> Iterator[ObjectPage]:
    """The same pages, read up to `depth` pages ahead on a thread while the caller stores the current
    one: a collection's pages come one after the other (each needs the previous nextLink), so reading
    the next while normalising and writing this one takes the store off the critical path. Memory stays
    bounded (`depth` + 2 pages); an error of the reader is raised here, where the page would have been;
    closing this generator early stops the reader at its next page."""
    box: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for page in pages:
                if not put(page):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised in its thread
            put(exc)

    reader = threading.Thread(target=read, name="snapshot-prefetch", daemon=True)
    reader.start()
    try:
        while True:
            item = box.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=30)


def iter_object_pages(
    graph: GraphClient, tenant_id: str, policy_type: str, stats: RequestStats, strategy: Strategy
) -> Iterator[ObjectPage]:
    """Every page of the type's collection with complete objects, read one page ahead (`prefetched`);
    raises GraphError when the type cannot be read completely (pages already yielded stay valid)."""
    return prefetched(_object_pages(graph, tenant_id, policy_type, stats, strategy))


def _object_pages(
    graph: GraphClient, tenant_id: str, policy_type: str, stats: RequestStats, strategy: Strategy
) -> Iterator[ObjectPage]:
    entry = get_policy_type(policy_type)
    expand = expand_for(policy_type)
    query = {"$expand": expand} if expand and strategy is Strategy.EXPAND else None
    for page in graph.iter_pages(tenant_id, policy_type, stats=stats, query=query, full_strings=True,
                                 read_ahead=True):
        objects: list[tuple[str, dict[str, Any]]] = []
        rejected: list[ItemRejected] = []
        for item in page.items:
            checked = normalize_item(entry, item)  # the inventory's identity and filter rules
            if isinstance(checked, InventoryRecord):
                objects.append((checked.external_id, item))
            elif isinstance(checked, ItemRejected):
                rejected.append(checked)
        del page
        wanted = [i for i, raw in objects if needs_details(policy_type, raw, strategy)]
        gone = 0
        if wanted:
            details = fetch_details(graph, tenant_id, policy_type, wanted, stats)
            complete = []
            for external_id, raw in objects:
                if external_id in details:
                    detail = details[external_id]
                    if detail is None:
                        gone += 1
                        continue
                    raw = detail
                complete.append((external_id, raw))
            objects = complete
        if policy_type == ADMX_TYPE and objects:
            content = fetch_definition_values(graph, tenant_id, [i for i, _ in objects], stats)
            objects = [(i, {**raw, "definitionValues": content[i]}) for i, raw in objects]
        yield ObjectPage(objects, rejected, gone)
