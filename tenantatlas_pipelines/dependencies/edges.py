"""Dependency edges of one snapshot: what each object uses (groups, virtual targets, filters, scope tags).

Pure functions over the snapshot contract (docs/snapshots.md): a version document's `assignments`
records, its scope tags and conditional access' user conditions, named from the same snapshot's
references (`ReferenceIndex`). No I/O. Why edges carry the names resolved at capture time: "what uses
group Sales" must answer by the name people know, and a group that no longer resolves stays an edge with
`resolved = False` (dangling, never "deleted"). `resolved = None` means the snapshot could not look (its
type's references were not recorded, e.g. the type failed), which is not the same as "gone".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..snapshots.references import ReferenceIndex, RefKind, conditional_access_groups


class Relation(StrEnum):
    INCLUDE = "include"
    EXCLUDE = "exclude"
    FILTER = "filter"
    SCOPE_TAG = "scope_tag"


class TargetType(StrEnum):
    GROUP = "group"
    ALL_USERS = "all_users"
    ALL_DEVICES = "all_devices"
    ALL_LICENSED_USERS = "all_licensed_users"
    ASSIGNMENT_FILTER = "assignment_filter"
    SCOPE_TAG = "scope_tag"


# Virtual targets have no id in Graph's assignment model: the target type is their id and name source.
VIRTUAL_NAMES = {
    TargetType.ALL_USERS: "All users",
    TargetType.ALL_DEVICES: "All devices",
    TargetType.ALL_LICENSED_USERS: "All licensed users",
}
# Captured assignment `target_kind` -> (relation, target type).
_ASSIGNMENT_TARGETS = {
    "group": (Relation.INCLUDE, TargetType.GROUP),
    "exclusion_group": (Relation.EXCLUDE, TargetType.GROUP),
    "all_devices": (Relation.INCLUDE, TargetType.ALL_DEVICES),
    "all_licensed_users": (Relation.INCLUDE, TargetType.ALL_LICENSED_USERS),
}
_REF_KIND = {
    TargetType.GROUP: RefKind.GROUP,
    TargetType.ASSIGNMENT_FILTER: RefKind.ASSIGNMENT_FILTER,
    TargetType.SCOPE_TAG: RefKind.SCOPE_TAG,
}


@dataclass(frozen=True)
class Edge:
    """One object -> one thing it uses, as one snapshot saw it.

    `via_target_type` / `via_target_id`: for a filter edge, the assignment target the filter narrows
    (a filter is always attached to one assignment). `filter_mode` only on filter edges; `intent` on the
    edges of an app assignment; `group_type` on group edges that resolved."""

    policy_type: str
    external_id: str
    display_name: str | None
    relation: Relation
    target_type: TargetType
    target_id: str
    target_name: str | None = None
    group_type: str | None = None
    filter_mode: str | None = None
    intent: str | None = None
    via_target_type: str | None = None
    via_target_id: str | None = None
    resolved: bool | None = True

    @property
    def key(self) -> tuple[str, ...]:
        """Identity within a snapshot (an object uses a target once per relation and assignment)."""
        return (self.policy_type, self.external_id, self.relation, self.target_type, self.target_id,
                self.via_target_type or "", self.via_target_id or "")


@dataclass(frozen=True)
class ObjectEdges:
    """Edges of one object plus the assignment targets it had that no edge kind covers (counted, so a
    new Graph target type shows up in metadata instead of vanishing)."""

    edges: tuple[Edge, ...]
    unknown_targets: int = 0


def _target(
    target_type: TargetType, target_id: str, refs: ReferenceIndex
) -> tuple[str | None, str | None, bool | None]:
    """(name, group type, resolved) of a target from the snapshot's references."""
    if target_type in VIRTUAL_NAMES:
        return VIRTUAL_NAMES[target_type], None, True
    ref = refs.get(_REF_KIND[target_type], target_id)
    if ref is None:  # the snapshot did not record it: it could not look, which is not "gone"
        return None, None, None
    group_type = str(ref.group_type) if ref.group_type and ref.resolved else None
    return (ref.name if ref.resolved else None), group_type, ref.resolved


def edges_of_object(
    policy_type: str, external_id: str, display_name: str | None, document: Mapping[str, Any],
    refs: ReferenceIndex,
) -> ObjectEdges:
    """Every edge of one object from its stored (id-only) version document."""
    out: dict[tuple[str, ...], Edge] = {}
    unknown = 0

    def add(relation: Relation, target_type: TargetType, target_id: str, **extra: Any) -> None:
        name, group_type, resolved = _target(target_type, target_id, refs)
        edge = Edge(policy_type, external_id, display_name, relation, target_type, target_id, name,
                    group_type, resolved=resolved, **extra)
        out.setdefault(edge.key, edge)

    for record in document.get("assignments") or []:
        kind = record.get("target_kind")
        if kind not in _ASSIGNMENT_TARGETS:
            unknown += 1
            continue
        relation, target_type = _ASSIGNMENT_TARGETS[kind]
        target_id = str(record["group_id"]) if target_type is TargetType.GROUP else str(target_type)
        if target_type is TargetType.GROUP and not record.get("group_id"):
            unknown += 1
            continue
        intent = record.get("intent")
        add(relation, target_type, target_id, intent=intent)
        if record.get("filter_id"):
            add(Relation.FILTER, TargetType.ASSIGNMENT_FILTER, str(record["filter_id"]),
                filter_mode=record.get("filter_mode"), intent=intent,
                via_target_type=str(target_type), via_target_id=target_id)
    # Conditional access targets users and groups in its conditions rather than assignments.
    users = ((document.get("conditions") or {}).get("users") or {})
    if "All" in (users.get("includeUsers") or []):
        add(Relation.INCLUDE, TargetType.ALL_USERS, str(TargetType.ALL_USERS))
    included, excluded = conditional_access_groups(document)
    for group_id in included:
        add(Relation.INCLUDE, TargetType.GROUP, group_id)
    for group_id in excluded:
        add(Relation.EXCLUDE, TargetType.GROUP, group_id)
    # Objects carry roleScopeTagIds; assignment filters carry roleScopeTags.
    for key in ("roleScopeTagIds", "roleScopeTags"):
        for tag in document.get(key) or []:
            add(Relation.SCOPE_TAG, TargetType.SCOPE_TAG, str(tag))
    return ObjectEdges(tuple(out.values()), unknown)


@dataclass(frozen=True)
class SnapshotEdges:
    """All edges of one snapshot, with the counts a materialization reports."""

    edges: tuple[Edge, ...]
    objects: int
    unknown_targets: int

    @property
    def dangling(self) -> int:
        return sum(e.resolved is False for e in self.edges)

    @property
    def unverified(self) -> int:
        return sum(e.resolved is None for e in self.edges)

    def count_by(self, field: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for edge in self.edges:
            value = str(getattr(edge, field))
            counts[value] = counts.get(value, 0) + 1
        return dict(sorted(counts.items()))


def edges_of_snapshot(
    objects: Iterable[tuple[str, str, str | None, Mapping[str, Any]]], refs: ReferenceIndex
) -> SnapshotEdges:
    """Edges of every (policy_type, external_id, display_name, document) a snapshot saw."""
    edges: list[Edge] = []
    unknown = n = 0
    for policy_type, external_id, display_name, document in objects:
        n += 1
        found = edges_of_object(policy_type, external_id, display_name, document, refs)
        edges.extend(found.edges)
        unknown += found.unknown_targets
    return SnapshotEdges(tuple(edges), n, unknown)
