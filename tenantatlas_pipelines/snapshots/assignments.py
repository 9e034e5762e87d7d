"""Assignments in their captured form: one flat record per assignment, names resolved at capture time.

A record: `target_kind` (`group`, `exclusion_group`, `all_devices`, `all_licensed_users`, or the
Graph target type in snake case for anything newer), `group_id` + `group_name`, `filter_id` +
`filter_name` + `filter_mode` (`include`/`exclude`; absent when there is no filter), `intent` (apps),
`settings` (app assignment settings, normal form). Absent values are omitted, like everywhere in the
normal form; a group that did not resolve has a `group_id` and no `group_name`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .normal_form import as_set, normalize_value
from .references import ReferenceIndex, RefKind
from .rules import rules_for

_NO_FILTER_ID = "00000000-0000-0000-0000-000000000000"
_TARGET = re.compile(r"^#?(microsoft\.graph\.)?(?P<name>[A-Za-z]+?)(AssignmentTarget)?$")


def target_kind(odata_type: str) -> str:
    """`#microsoft.graph.exclusionGroupAssignmentTarget` -> `exclusion_group`."""
    match = _TARGET.match(odata_type or "")
    name = match.group("name") if match else (odata_type or "unknown")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def assignment_record(
    raw: Mapping[str, Any], refs: ReferenceIndex | None, policy_type: str | None = None
) -> dict[str, Any]:
    """One Graph assignment as a flat record (see the module docstring)."""
    target = raw.get("target") or {}
    record: dict[str, Any] = {"target_kind": target_kind(str(target.get("@odata.type") or ""))}
    group_id = target.get("groupId")
    if group_id:
        record["group_id"] = str(group_id)
        name = refs.name(RefKind.GROUP, str(group_id)) if refs else None
        if name:
            record["group_name"] = name
    filter_id = target.get("deviceAndAppManagementAssignmentFilterId")
    filter_mode = str(target.get("deviceAndAppManagementAssignmentFilterType") or "none").lower()
    if filter_id and filter_id != _NO_FILTER_ID and filter_mode != "none":
        record["filter_id"] = str(filter_id)
        record["filter_mode"] = filter_mode
        name = refs.name(RefKind.ASSIGNMENT_FILTER, str(filter_id)) if refs else None
        if name:
            record["filter_name"] = name
    if raw.get("intent"):
        record["intent"] = str(raw["intent"])
    settings = normalize_value(raw.get("settings"), rules_for(policy_type), None, "assignments.settings")
    if settings:
        record["settings"] = settings
    return record


def assignment_records(
    raw: Iterable[Mapping[str, Any]], refs: ReferenceIndex | None, policy_type: str | None = None
) -> list[dict[str, Any]]:
    """All of an object's assignments, as a set (sorted canonically, duplicates removed)."""
    return as_set([assignment_record(a, refs, policy_type) for a in raw if isinstance(a, Mapping)])


def referenced_ids(raw: Iterable[Mapping[str, Any]]) -> set[tuple[RefKind, str]]:
    """Groups and filters raw Graph assignments refer to (what the run must resolve)."""
    out: set[tuple[RefKind, str]] = set()
    for a in raw:
        record = assignment_record(a, None)
        if record.get("group_id"):
            out.add((RefKind.GROUP, record["group_id"]))
        if record.get("filter_id"):
            out.add((RefKind.ASSIGNMENT_FILTER, record["filter_id"]))
    return out
