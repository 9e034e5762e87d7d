"""Resolving a snapshot's references through graph/: groups in bulk, filters and scope tags by listing.

Groups: `directoryObjects/getByIds` with up to 1,000 ids a call; an id that is not in the answer does not
resolve (removed group) and is recorded `resolved = false`. Filters and scope tags: their collections are
listed once per snapshot. One resolver per snapshot run, shared by its type workers (each id is asked
for once); a failure to look (throttled, forbidden) raises — "could not look" never becomes "dangling".
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .references import Reference, RefKind, group_reference, named_reference

if TYPE_CHECKING:
    from ..graph.client import GraphClient, RequestStats

GET_BY_IDS_LIMIT = 1000
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_LISTED = {RefKind.ASSIGNMENT_FILTER: "assignmentFilter", RefKind.SCOPE_TAG: "roleScopeTag"}


class ReferenceResolver:
    """Names for the references of one tenant, fetched on first need and cached for the run."""

    def __init__(self, graph: GraphClient, tenant_id: str) -> None:
        self._graph, self._tenant_id = graph, tenant_id
        self._groups: dict[str, Reference] = {}
        self._names: dict[RefKind, dict[str, str]] = {}
        self._lock = threading.Lock()
        self.group_calls = 0

    def resolve(self, wanted: Iterable[tuple[RefKind, str]], stats: RequestStats) -> list[Reference]:
        """The references asked for, each resolved or marked unresolved."""
        wanted = sorted(set(wanted))
        with self._lock:
            groups = [i for k, i in wanted if k is RefKind.GROUP and i not in self._groups]
            self._resolve_groups(groups, stats)
            for kind, policy_type in _LISTED.items():
                if kind not in self._names and any(k is kind for k, _ in wanted):
                    self._names[kind] = self._list_names(policy_type, stats)
        out = []
        for kind, ref_id in wanted:
            if kind is RefKind.GROUP:
                out.append(self._groups[ref_id])
            else:
                out.append(named_reference(kind, ref_id, self._names[kind]))
        return out

    def _resolve_groups(self, ids: list[str], stats: RequestStats) -> None:
        asked = [i for i in ids if _GUID.match(i)]
        for bad in set(ids) - set(asked):  # not a GUID: Graph would refuse the whole call
            self._groups[bad] = group_reference(bad, None)
        for start in range(0, len(asked), GET_BY_IDS_LIMIT):
            chunk = asked[start : start + GET_BY_IDS_LIMIT]
            self.group_calls += 1
            found = self._graph.post_page(
                self._tenant_id, "directoryObjects/getByIds", {"ids": chunk, "types": ["group"]},
                stats=stats,
            )
            by_id = {str(g.get("id", "")).lower(): g for g in found if isinstance(g, dict)}
            for group_id in chunk:
                self._groups[group_id] = group_reference(group_id, by_id.get(group_id.lower()))

    def _list_names(self, policy_type: str, stats: RequestStats) -> dict[str, str]:
        names: dict[str, str] = {}
        for page in self._graph.iter_pages(self._tenant_id, policy_type, stats=stats):
            for item in page.items:
                if isinstance(item, dict) and item.get("id") is not None:
                    names[str(item["id"])] = str(item.get("displayName") or "")
        return names
