"""Selection identity: canonical JSON and its sha256, the key that ties runs into one lineage.

Same meaning, same hash: keys sorted, no insignificant whitespace, UTF-8, and every array treated as a
set (de-duplicated, sorted). Validation happens before hashing so a typo never silently starts a new
lineage of runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .canonical import canonical_dumps, canonical_sha256
from .errors import ErrorCode, TenantAtlasError
from .policy_types import REGISTRY

ALLOWED_KEYS = frozenset({"policy_types"})


def _canonical_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _canonical_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_canonical_value(v) for v in value]
        unique = {canonical_dumps(v): v for v in items}
        return [unique[k] for k in sorted(unique)]
    return value


def validate_selection(payload: Any) -> dict[str, Any]:
    """The payload in canonical form, or INVALID_SELECTION / UNKNOWN_POLICY_TYPE naming what is wrong."""
    if not isinstance(payload, Mapping):
        raise TenantAtlasError(ErrorCode.INVALID_SELECTION, "a selection must be a JSON object")
    unknown_keys = sorted(set(map(str, payload)) - ALLOWED_KEYS)
    if unknown_keys:
        raise TenantAtlasError(
            ErrorCode.INVALID_SELECTION,
            f"unknown selection key(s) {unknown_keys}; allowed: {sorted(ALLOWED_KEYS)}",
        )
    types = payload.get("policy_types")
    if not isinstance(types, list | tuple | set | frozenset) or not types:
        raise TenantAtlasError(
            ErrorCode.INVALID_SELECTION, "a selection needs a non-empty 'policy_types' array"
        )
    if not all(isinstance(t, str) for t in types):
        raise TenantAtlasError(ErrorCode.INVALID_SELECTION, "'policy_types' must contain only strings")
    unknown = sorted(set(types) - set(REGISTRY))
    if unknown:
        raise TenantAtlasError(
            ErrorCode.UNKNOWN_POLICY_TYPE,
            f"unknown policy type(s) {unknown}; known types: {', '.join(sorted(REGISTRY))}",
        )
    return _canonical_value(payload)


def canonical_json(payload: Any) -> str:
    """The canonical text of a valid selection (validation included)."""
    return canonical_dumps(validate_selection(payload))


def selection_hash(payload: Any) -> str:
    """sha256 hex of the canonical JSON, UTF-8 encoded."""
    return canonical_sha256(validate_selection(payload))


DEFAULT_SELECTIONS: dict[str, tuple[str, ...]] = {
    "all": tuple(sorted(REGISTRY)),
    "compliance": ("deviceCompliancePolicy", "conditionalAccessPolicy"),
    "configuration": (
        "deviceConfiguration",
        "settingsCatalogPolicy",
        "groupPolicyConfiguration",
        "enrollmentConfiguration",
        "autopilotDeploymentProfile",
        "deviceManagementScript",
        "deviceHealthScript",
        "windowsFeatureUpdateProfile",
        "windowsQualityUpdateProfile",
        "roleScopeTag",
        "assignmentFilter",
        "notificationMessageTemplate",
        "termsAndConditions",
    ),
    "apps": ("mobileApp", "appProtectionPolicy", "appConfigurationPolicy"),
    "security": ("endpointSecurityIntent", "conditionalAccessPolicy", "deviceCompliancePolicy"),
}
