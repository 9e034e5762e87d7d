"""What the normal form needs to know per policy type, beside the policy-type registry.

Kept here rather than on `PolicyType` because only snapshots read it: volatile keys a type adds to the
common list, array paths whose order means something, and secret fields a type has beyond the generic
names. Paths are dotted key paths from the object's root; `[]` is not written (an array path names the
array itself), e.g. `edgeHomepageUrls` or `omaSettings`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Keys that change without a configuration change (DESIGN §6), dropped at every depth.
VOLATILE_KEYS: frozenset[str] = frozenset({
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "modifiedDateTime",
    "version",
    "supportsScopeTags",
    "isAssigned",
    "settingCount",
    "creationSource",
    "priorityMetaData",
    "secretReferenceValueId",
})
# Sync timestamps (lastSyncDateTime, lastSyncedDateTime, deviceStatusLastSyncDateTime, ...).
VOLATILE_PATTERN = re.compile(r"Sync(ed)?DateTime$|^lastSync", re.IGNORECASE)

# Generic secret field names, matched case-insensitively on the whole key or as a camelCase suffix
# (`wiFiPreSharedKey`, `certificatePassword`). Only string values are secrets: `passwordRequired` is
# a boolean and `passwordMinimumLength` a number, and neither matches anyway.
SECRET_NAMES: frozenset[str] = frozenset({
    "password", "secret", "presharedkey", "privatekey", "clientsecret", "sharedsecret", "passphrase",
    "pfxpassword", "certificatepassword",
})
SECRET_SUFFIXES: tuple[str, ...] = ("Password", "Secret", "PreSharedKey", "PrivateKey", "Passphrase")


@dataclass(frozen=True)
class ContentRules:
    """One policy type's additions to the generic normal-form rules."""

    volatile: frozenset[str] = frozenset()
    ordered_paths: frozenset[str] = frozenset()
    secret_keys: frozenset[str] = frozenset()
    # Keys whose value is a large, non-configuration blob (app icons): dropped, never hashed.
    blobs: frozenset[str] = field(default_factory=frozenset)


RULES: dict[str, ContentRules] = {
    # No path is marked ordered today: Intune returns lists in a different order from one read to the
    # next, and an ordered path it re-orders would report drift forever. Mark one only where order is
    # configuration and Graph keeps it stable (tests use `ordered_paths` through their own rules).
    "deviceConfiguration": ContentRules(
        secret_keys=frozenset({"wiFiPreSharedKey", "preSharedKey", "password"}),
    ),
    "mobileApp": ContentRules(
        volatile=frozenset({
            "uploadState", "publishingState", "dependentAppCount", "supersedingAppCount",
            "supersededAppCount", "usedLicenseCount", "totalLicenseCount", "committedContentVersion",
        }),
        blobs=frozenset({"largeIcon"}),
    ),
    "deviceHealthScript": ContentRules(volatile=frozenset({"highestAvailableVersion"})),
    "conditionalAccessPolicy": ContentRules(volatile=frozenset({"deletedDateTime"})),
}

NO_RULES = ContentRules()


def rules_for(policy_type: str | None) -> ContentRules:
    """The type's rules, or none beyond the generic ones (an unknown type still normalises safely)."""
    return RULES.get(policy_type or "", NO_RULES)


def is_volatile(key: str, rules: ContentRules) -> bool:
    """Whether a key is dropped from the normal form wherever it appears."""
    if key in VOLATILE_KEYS or key in rules.volatile or key in rules.blobs:
        return True
    if key.startswith("@odata.") and key != "@odata.type":
        return True
    # Annotations on properties: `assignments@odata.context`, `settings@odata.nextLink`.
    if "@odata." in key and not key.startswith("@"):
        return True
    return bool(VOLATILE_PATTERN.search(key))


def is_secret_key(key: str, rules: ContentRules) -> bool:
    """Whether a string value under this key is a secret."""
    if key in rules.secret_keys or key.lower() in SECRET_NAMES:
        return True
    return key.endswith(SECRET_SUFFIXES)
