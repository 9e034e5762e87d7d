"""Assignments: who an Intune object applies to, as Graph serves them.

``GET {collection}/{id}/assignments`` or ``$expand=assignments`` on the list. A target is a group
(include), an exclusion group, all devices or all licensed users ("All users" in the portal), each with an
optional assignment filter (``include`` / ``exclude``; ``none`` with an empty GUID or null means "no
filter"). Apps add ``intent`` (required / available / uninstall). The shape of an object's assignments is
tenant-independent content (the same in every tenant); group and filter ids are the tenant's (`Refs`).
"""

from __future__ import annotations

import random
from typing import Any

from .payloads import Index, Refs, content_digest

Assignment = dict[str, Any]

#: Types whose objects have assignments (graph-facts.md "Content, assignments and references").
ASSIGNABLE = frozenset({
    "deviceConfiguration", "deviceCompliancePolicy", "settingsCatalogPolicy", "groupPolicyConfiguration",
    "endpointSecurityIntent", "deviceManagementScript", "deviceHealthScript", "windowsFeatureUpdateProfile",
    "windowsQualityUpdateProfile", "autopilotDeploymentProfile", "enrollmentConfiguration", "mobileApp",
    "appConfigurationPolicy", "appProtectionPolicy",
})
#: The fixed ids Intune uses in assignment ids for the two virtual targets.
ALL_DEVICES_ID = "adadadad-808e-44e2-905a-0b7873a8a531"
ALL_LICENSED_USERS_ID = "acacacac-9df4-4c7d-9d50-4ef0226f57a9"
EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
TARGET_TYPES = {
    "group": "#microsoft.graph.groupAssignmentTarget",
    "exclude": "#microsoft.graph.exclusionGroupAssignmentTarget",
    "allDevices": "#microsoft.graph.allDevicesAssignmentTarget",
    "allLicensedUsers": "#microsoft.graph.allLicensedUsersAssignmentTarget",
}
INTENTS = ("required", "available", "uninstall")
_ASSIGNMENT_TYPE = {
    "deviceConfiguration": "deviceConfigurationAssignment",
    "deviceCompliancePolicy": "deviceCompliancePolicyAssignment",
    "settingsCatalogPolicy": "deviceManagementConfigurationPolicyAssignment",
    "groupPolicyConfiguration": "groupPolicyConfigurationAssignment",
    "endpointSecurityIntent": "deviceManagementIntentAssignment",
    "deviceManagementScript": "deviceManagementScriptAssignment",
    "deviceHealthScript": "deviceHealthScriptAssignment",
    "windowsFeatureUpdateProfile": "windowsFeatureUpdateProfileAssignment",
    "windowsQualityUpdateProfile": "windowsQualityUpdateProfileAssignment",
    "autopilotDeploymentProfile": "windowsAutopilotDeploymentProfileAssignment",
    "enrollmentConfiguration": "enrollmentConfigurationAssignment",
    "mobileApp": "mobileAppAssignment",
    "appConfigurationPolicy": "managedDeviceMobileAppConfigurationAssignment",
    "appProtectionPolicy": "targetedManagedAppPolicyAssignment",
}


def make_assignment(policy_type: str, object_id: str, kind: str, *, group_id: str | None = None,
                    filter_id: str | None = None, filter_type: str = "none", intent: str | None = None,
                    empty_filter_as_null: bool = False) -> Assignment:
    """One assignment as Graph serves it. `kind`: group | exclude | allDevices | allLicensedUsers."""
    if kind not in TARGET_TYPES:
        raise ValueError(f"assignment kind must be one of {sorted(TARGET_TYPES)}, got {kind!r}")
    if kind in ("group", "exclude") and not group_id:
        raise ValueError(f"a {kind!r} assignment needs a group id")
    if filter_type not in ("include", "exclude", "none"):
        raise ValueError("filter type must be include, exclude or none")
    if filter_type != "none" and not filter_id:
        raise ValueError(f"filter type {filter_type!r} needs a filter id")
    if filter_type == "none":
        filter_id = None if empty_filter_as_null else EMPTY_GUID
    target: dict[str, Any] = {"@odata.type": TARGET_TYPES[kind],
                              "deviceAndAppManagementAssignmentFilterId": filter_id,
                              "deviceAndAppManagementAssignmentFilterType": filter_type}
    if group_id:
        target["groupId"] = group_id
    target_key = group_id or (ALL_DEVICES_ID if kind == "allDevices" else ALL_LICENSED_USERS_ID)
    out: Assignment = {"@odata.type": f"#microsoft.graph.{_ASSIGNMENT_TYPE.get(policy_type, 'assignment')}",
                       "id": f"{object_id}_{target_key}"}
    if policy_type == "mobileApp":
        out.update(intent=intent or "required", source="direct", sourceId=None, settings=None)
    elif policy_type == "settingsCatalogPolicy":
        out.update(source="direct", sourceId=object_id)
    elif intent is not None:
        out["intent"] = intent
    out["target"] = target
    return out


def generate_assignments(seed: int, policy_type: str, index: Index, object_id: str, refs: Refs,
                         assigned_ratio: float) -> list[Assignment]:
    """The assignments of generated object `index` (empty for types without assignments).

    Always the same random draws whatever the tenant, so two tenants get the same shape; an object is
    unassigned with probability ``1 - assigned_ratio``.
    """
    if policy_type not in ASSIGNABLE:
        return []
    r = random.Random(content_digest(seed, policy_type, index, "assignments"))
    roll, n = r.random(), r.choices((1, 2, 3, 4), weights=(40, 30, 20, 10))[0]
    draws = [(r.random(), r.randrange(1 << 16), r.random(), r.randrange(1 << 16), r.random(), r.random())
             for _ in range(n)]
    if roll >= assigned_ratio:
        return []
    out: list[Assignment] = []
    seen: set[str] = set()
    for kind_roll, group_pick, filter_roll, filter_pick, intent_roll, null_roll in draws:
        if kind_roll < 0.55:
            kind = "group"
        elif kind_roll < 0.70:
            kind = "exclude"
        elif kind_roll < 0.85:
            kind = "allDevices"
        else:
            kind = "allLicensedUsers"
        group = refs.group(group_pick) if kind in ("group", "exclude") else None
        key = group or kind
        if key in seen:
            continue
        seen.add(key)
        filter_id = refs.filter(filter_pick)
        filter_type = "none"
        if kind != "exclude" and filter_id is not None and filter_roll < 0.4:  # no filters on exclusions
            filter_type = "include" if filter_roll < 0.25 else "exclude"
        intent = None
        if policy_type == "mobileApp":
            intent = "uninstall" if kind == "exclude" else INTENTS[int(intent_roll * 2.999)]
        out.append(make_assignment(policy_type, object_id, kind, group_id=group,
                                   filter_id=filter_id if filter_type != "none" else None,
                                   filter_type=filter_type, intent=intent,
                                   empty_filter_as_null=null_roll < 0.3))
    return out
