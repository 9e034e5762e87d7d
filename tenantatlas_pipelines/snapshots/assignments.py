"""Assignments in their captured form: one flat record per assignment.

A record: `target_kind` (`group`, `exclusion_group`, `all_devices`, `all_licensed_users`, or the
Graph target type in snake case for anything newer), `group_id`, `filter_id` + `filter_mode`
(`include`/`exclude`; absent when there is no filter), `intent` (apps), `settings` (app assignment
settings, normal form). Absent values are omitted, like everywhere in the normal form.

What is hashed and stored in a version carries ids only; the names (`group_name`, `filter_name`) are
the snapshot's own resolved references (snapshot_references, captured in the same snapshot) and are
joined in on read by `with_reference_names`. So a group rename does not make a new version of every
policy that uses the group, and a reference that no longer resolves reads as a `group_id` without a
`group_name` (plus `resolved = false` in the snapshot's references).
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


def assignment_record(raw: Mapping[str, Any], policy_type: str | None = None) -> dict[str, Any]:
    """One Graph assignment as a flat record of ids (see the module docstring)."""
    target = raw.get("target") or {}
    record: dict[str, Any] = {"target_kind": target_kind(str(target.get("@odata.type") or ""))}
    group_id = target.get("groupId")
    if group_id:
        record["group_id"] = str(group_id)
    filter_id = target.get("deviceAndAppManagementAssignmentFilterId")
    filter_mode = str(target.get("deviceAndAppManagementAssignmentFilterType") or "none").lower()
    if filter_id and filter_id != _NO_FILTER_ID and filter_mode != "none":
        record["filter_id"] = str(filter_id)
        record["filter_mode"] = filter_mode
    if raw.get("intent"):
        record["intent"] = str(raw["intent"])
    settings = normalize_value(raw.get("settings"), rules_for(policy_type), None, "assignments.settings")
    if settings:
        record["settings"] = settings
    return record


def assignment_records(
    raw: Iterable[Mapping[str, Any]], policy_type: str | None = None
) -> list[dict[str, Any]]:
    """All of an object's assignments, as a set (sorted canonically, duplicates removed)."""
    return as_set([assignment_record(a, policy_type) for a in raw if isinstance(a, Mapping)])


def with_reference_names(document: Mapping[str, Any], refs: ReferenceIndex) -> dict[str, Any]:
    """A stored document with `group_name` / `filter_name` added to its assignments from the snapshot's
    resolved references (names of references that did not resolve stay absent)."""
    doc = dict(document)
    records = []
    for record in doc.get("assignments") or []:
        record = dict(record)
        group = refs.name(RefKind.GROUP, record["group_id"]) if record.get("group_id") else None
        if group:
            record["group_name"] = group
        flt = refs.name(RefKind.ASSIGNMENT_FILTER, record["filter_id"]) if record.get("filter_id") else None
        if flt:
            record["filter_name"] = flt
        records.append(record)
    if records:
        doc["assignments"] = records
    return doc
