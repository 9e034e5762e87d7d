"""The policy-type registry: every Graph collection TenantAtlas inventories, one entry each.

Adding a type is one `PolicyType(...)` entry below; the Graph client, the normaliser, the selection
validator and the emulator all read this table, so nothing else needs to change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

from .errors import ErrorCode, TenantAtlasError


class Kind(StrEnum):
    """How a whitelisted value is normalised (see normalize.py)."""

    TEXT = "text"
    TIMESTAMP = "timestamp"
    BOOL = "bool"
    TEXT_LIST = "text_list"


@dataclass(frozen=True)
class MetaField:
    """One whitelisted metadata key: its normalised name, where Graph puts it, and its kind."""

    key: str
    source: tuple[str, ...]
    kind: Kind


def _f(key: str, source: str, kind: Kind = Kind.TEXT) -> MetaField:
    return MetaField(key, tuple(source.split("/")), kind)  # "/" nests: a/b = item[a][b]


ODATA_TYPE = _f("odata_type", "@odata.type")
CREATED = _f("created_at", "createdDateTime", Kind.TIMESTAMP)
MODIFIED = _f("modified_at", "lastModifiedDateTime", Kind.TIMESTAMP)
VERSION = _f("version", "version")
SCOPE_TAGS = _f("scope_tag_ids", "roleScopeTagIds", Kind.TEXT_LIST)
IS_ASSIGNED = _f("is_assigned", "isAssigned", Kind.BOOL)
COMMON: tuple[MetaField, ...] = (ODATA_TYPE, CREATED, MODIFIED, VERSION, SCOPE_TAGS)

# Client-side filters: objects Graph lists that are not the tenant's own configuration.
ItemFilter = Callable[[Mapping[str, Any]], bool]


def _not_store_catalogue_app(item: Mapping[str, Any]) -> bool:
    # Intune lists Microsoft's store catalogue ("global" availability) in every tenant; only assigned
    # ones are the tenant's choice. The Intune portal uses the same rule in its own $filter.
    return not (item.get("appAvailability") == "global" and not item.get("isAssigned"))


def _not_global_health_script(item: Mapping[str, Any]) -> bool:
    # Microsoft ships read-only "global" remediation scripts into every tenant.
    return not item.get("isGlobalScript")


@dataclass(frozen=True)
class PolicyType:
    """One Graph collection, as the client, normaliser and emulator need to know it."""

    key: str
    path: str
    api_version: str = "beta"
    name_field: str = "displayName"
    whitelist: tuple[MetaField, ...] = COMMON
    # Options added to the first request; nextLinks already repeat them.
    query: Mapping[str, str] = field(default_factory=dict)
    # The page size Graph uses for this collection whatever $top says (reproduced by the emulator).
    page_size: int = 100
    keep: ItemFilter | None = None
    note: str = ""

    @cached_property
    def source_keys(self) -> frozenset[str]:
        """Top-level payload keys that are read (everything else is dropped and counted)."""
        return frozenset({"id", self.name_field, *(f.source[0] for f in self.whitelist)})


REGISTRY: dict[str, PolicyType] = {
    t.key: t
    for t in (
        PolicyType("deviceConfiguration", "deviceManagement/deviceConfigurations", page_size=100),
        PolicyType("deviceCompliancePolicy", "deviceManagement/deviceCompliancePolicies"),
        PolicyType(
            "settingsCatalogPolicy",
            "deviceManagement/configurationPolicies",
            name_field="name",
            whitelist=(
                ODATA_TYPE,
                CREATED,
                MODIFIED,
                SCOPE_TAGS,
                IS_ASSIGNED,
                _f("platforms", "platforms", Kind.TEXT_LIST),
                _f("technologies", "technologies", Kind.TEXT_LIST),
                _f("template_id", "templateReference/templateId"),
                _f("template_family", "templateReference/templateFamily"),
            ),
            page_size=25,
            note="pages of 25 whatever $top says",
        ),
        PolicyType(
            "groupPolicyConfiguration",
            "deviceManagement/groupPolicyConfigurations",
            whitelist=(ODATA_TYPE, CREATED, MODIFIED, SCOPE_TAGS),
            note="most throttled",
        ),
        PolicyType(
            "endpointSecurityIntent",
            "deviceManagement/intents",
            whitelist=(ODATA_TYPE, MODIFIED, SCOPE_TAGS, IS_ASSIGNED, _f("template_id", "templateId")),
            note="no createdDateTime",
        ),
        PolicyType(
            "mobileApp",
            "deviceAppManagement/mobileApps",
            whitelist=(ODATA_TYPE, CREATED, MODIFIED, SCOPE_TAGS, IS_ASSIGNED, _f("publisher", "publisher")),
            page_size=1000,
            keep=_not_store_catalogue_app,
            note="store-catalogue apps filtered out",
        ),
        PolicyType(
            "appProtectionPolicy",
            "deviceAppManagement/managedAppPolicies",
            whitelist=(*COMMON, IS_ASSIGNED),
            note="version is a string",
        ),
        PolicyType("appConfigurationPolicy", "deviceAppManagement/mobileAppConfigurations"),
        PolicyType(
            "enrollmentConfiguration",
            "deviceManagement/deviceEnrollmentConfigurations",
            whitelist=(*COMMON, _f("priority", "priority")),
        ),
        PolicyType(
            "autopilotDeploymentProfile",
            "deviceManagement/windowsAutopilotDeploymentProfiles",
            note="no $filter; nextLink may repeat the same page",
        ),
        PolicyType("deviceManagementScript", "deviceManagement/deviceManagementScripts"),
        PolicyType(
            "deviceHealthScript",
            "deviceManagement/deviceHealthScripts",
            whitelist=(*COMMON, _f("publisher", "publisher")),
            keep=_not_global_health_script,
            note="Microsoft's global scripts filtered out",
        ),
        PolicyType("windowsFeatureUpdateProfile", "deviceManagement/windowsFeatureUpdateProfiles"),
        PolicyType("windowsQualityUpdateProfile", "deviceManagement/windowsQualityUpdateProfiles"),
        PolicyType(
            "roleScopeTag",
            "deviceManagement/roleScopeTags",
            whitelist=(ODATA_TYPE, _f("is_built_in", "isBuiltIn", Kind.BOOL)),
            note="no timestamps",
        ),
        PolicyType(
            "assignmentFilter",
            "deviceManagement/assignmentFilters",
            whitelist=(
                ODATA_TYPE,
                CREATED,
                MODIFIED,
                _f("scope_tag_ids", "roleScopeTags", Kind.TEXT_LIST),
                _f("platforms", "platform", Kind.TEXT_LIST),
            ),
            note="scope tags in roleScopeTags",
        ),
        PolicyType(
            "notificationMessageTemplate",
            "deviceManagement/notificationMessageTemplates",
            whitelist=(ODATA_TYPE, MODIFIED, SCOPE_TAGS),
            note="no createdDateTime",
        ),
        PolicyType("termsAndConditions", "deviceManagement/termsAndConditions"),
        PolicyType(
            "conditionalAccessPolicy",
            "identity/conditionalAccess/policies",
            api_version="v1.0",
            whitelist=(
                ODATA_TYPE,
                CREATED,
                _f("modified_at", "modifiedDateTime", Kind.TIMESTAMP),
                _f("state", "state"),
                _f("template_id", "templateId"),
            ),
            note="v1.0; modifiedDateTime",
        ),
    )
}


def get_policy_type(key: str) -> PolicyType:
    """The registry entry for `key`, or an error naming the unknown type and the known ones."""
    try:
        return REGISTRY[key]
    except KeyError:
        raise TenantAtlasError(
            ErrorCode.UNKNOWN_POLICY_TYPE,
            f"unknown policy type {key!r}; known types: {', '.join(sorted(REGISTRY))}",
        ) from None
