"""References a policy uses (groups, assignment filters, scope tags), resolved to names at capture time.

A snapshot records each reference once with what it resolved to; a reference that no longer resolves
(a removed group) is kept with `resolved = False` — dangling, never "deleted". Pure functions: the
snapshot run fetches the names, these decide what is referenced and how it is represented.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class RefKind(StrEnum):
    GROUP = "group"
    ASSIGNMENT_FILTER = "assignment_filter"
    SCOPE_TAG = "scope_tag"


class GroupType(StrEnum):
    SECURITY = "security"
    MICROSOFT365 = "microsoft365"
    DYNAMIC = "dynamic"


@dataclass(frozen=True)
class Reference:
    """One referenced object as the snapshot saw it."""

    kind: RefKind
    ref_id: str
    name: str | None = None
    group_type: GroupType | None = None
    resolved: bool = True

    @property
    def label(self) -> str:
        """How people read it: the name, or the id marked as unresolved."""
        return self.name if self.resolved and self.name else f"unresolved {self.kind} {self.ref_id}"


def group_type_of(group: Mapping[str, Any]) -> GroupType:
    """security / microsoft365 / dynamic from a Graph group's `groupTypes`.

    Dynamic membership wins over Unified: for "what uses this group" the question that matters is
    whether membership is computed by a rule.
    """
    types = {str(t) for t in group.get("groupTypes") or []}
    if "DynamicMembership" in types or group.get("membershipRule"):
        return GroupType.DYNAMIC
    if "Unified" in types:
        return GroupType.MICROSOFT365
    return GroupType.SECURITY


def group_reference(group_id: str, group: Mapping[str, Any] | None) -> Reference:
    """A group id and what Graph returned for it (None: it did not resolve)."""
    if group is None:
        return Reference(RefKind.GROUP, group_id, resolved=False)
    return Reference(RefKind.GROUP, group_id, str(group.get("displayName") or ""), group_type_of(group))


def named_reference(kind: RefKind, ref_id: str, names: Mapping[str, str]) -> Reference:
    """A filter or scope tag resolved against the names read from the tenant."""
    name = names.get(ref_id)
    return Reference(kind, ref_id, name, resolved=name is not None)


def conditional_access_groups(document: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(included, excluded) group ids of a conditional access policy's user conditions: it targets
    groups there, not through assignments (empty for every other type)."""
    conditions = document.get("conditions")
    users = conditions.get("users") if isinstance(conditions, Mapping) else None
    if not isinstance(users, Mapping):
        return [], []
    return ([str(g) for g in users.get("includeGroups") or []],
            [str(g) for g in users.get("excludeGroups") or []])


def references_in(document: Mapping[str, Any]) -> set[tuple[RefKind, str]]:
    """Every (kind, id) a version document refers to: assignment groups and filters, conditional
    access groups, scope tags."""
    refs: set[tuple[RefKind, str]] = set()
    for ids in conditional_access_groups(document):
        refs.update((RefKind.GROUP, group_id) for group_id in ids)
    for assignment in document.get("assignments") or []:
        if assignment.get("group_id"):
            refs.add((RefKind.GROUP, str(assignment["group_id"])))
        if assignment.get("filter_id"):
            refs.add((RefKind.ASSIGNMENT_FILTER, str(assignment["filter_id"])))
    # Objects carry roleScopeTagIds; assignment filters carry roleScopeTags.
    for key in ("roleScopeTagIds", "roleScopeTags"):
        for tag in document.get(key) or []:
            refs.add((RefKind.SCOPE_TAG, str(tag)))
    return refs


class ReferenceIndex:
    """The references of one snapshot, looked up by (kind, id)."""

    def __init__(self, references: Iterable[Reference]) -> None:
        self._by_key = {(r.kind, r.ref_id): r for r in references}

    def get(self, kind: RefKind, ref_id: str) -> Reference | None:
        return self._by_key.get((kind, ref_id))

    def name(self, kind: RefKind, ref_id: str) -> str | None:
        """The resolved name, or None when unknown or dangling."""
        ref = self.get(kind, ref_id)
        return ref.name if ref and ref.resolved else None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)
