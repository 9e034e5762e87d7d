"""Deterministic, realistic Graph list payloads for every registry type.

Each object is a pure function of ``(seed, tenant_id, policy_type, index)``: the same seed gives the same
ids and payloads in every process, so a ``tenantatlas emulator serve`` process and a test agree without
talking to each other. Payloads look like what Graph really lists — including the parts a careful
pipeline must *not* keep: unknown fields, large base64 blobs and secret-looking values (all secrets start
with ``SECRET-`` so tests can grep a database for leaks).
"""

from __future__ import annotations

import base64
import hashlib
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from ..policy_types import REGISTRY

Payload = dict[str, Any]
Index = int | str  # int: a generated object; str: an object added later ("added-3")

_EPOCH = datetime(2021, 1, 4, 8, 0, 0, tzinfo=UTC)
SECRET_PREFIX = "SECRET-"

_WORDS = (
    "Baseline",
    "Sécurité",
    "BitLocker",
    "Kiosk",
    "Wi\u2011Fi",
    "東京オフィス",
    "Zürich",
    "Ελληνικά",
    "Ünïcødé",
    "Edge",
    "Defender",
    "Firewall",
    "VPN",
    "Update ring",
    "Compliance",
    "São Paulo",
    "Kraków",
    "Пилот",
    "🚀 Pilot",
    "Finance",
    "HR",
    "Frontline",
    "Executives",
    "Shared devices",
    "Contractors",
    "Ring 0",
)
_PREFIXES = ("WIN", "iOS", "AND", "macOS", "W365", "GLOBAL", "EU", "US")
_LONG = "Very long policy name that somebody pasted from a change ticket with all its context "


def object_digest(seed: int, tenant_id: str, policy_type: str, index: Index) -> bytes:
    """The 32 bytes every property of one object is derived from (stable across processes)."""
    return hashlib.sha256(f"{seed}|{tenant_id}|{policy_type}|{index}".encode()).digest()


def _guid(digest: bytes) -> str:
    return str(uuid.UUID(bytes=digest[:16], version=4))


def object_id(seed: int, tenant_id: str, policy_type: str, index: Index) -> str:
    """The Graph `id` of one object. Scope tags have small numeric ids, as in real Intune."""
    digest = object_digest(seed, tenant_id, policy_type, index)
    if policy_type == "roleScopeTag":
        return str(index) if isinstance(index, int) else str(1000 + int.from_bytes(digest[:3], "big"))
    if policy_type == "enrollmentConfiguration" and index in (0, 1, 2):
        suffix = ("DefaultPlatformRestrictions", "DefaultLimit", "DefaultWindowsHelloForBusiness")[index]
        return f"{_guid(digest)}_{suffix}"
    return _guid(digest)


@lru_cache(maxsize=8)
def blob(n_bytes: int, salt: str = "icon") -> str:
    """A deterministic base64 blob (app icons, script bodies): large, useless, must never be stored."""
    raw = random.Random(f"{salt}:{n_bytes}").randbytes(n_bytes)
    return base64.b64encode(raw).decode("ascii")


def _ts(r: random.Random, after: datetime | None = None) -> datetime:
    start = after or _EPOCH
    return start + timedelta(seconds=r.randrange(0, 3 * 365 * 86400), microseconds=r.randrange(10**6))


def _iso(dt: datetime) -> str:
    # Graph writes 7 fractional digits; the 7th is always 0 here, which real data also shows.
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _name(r: random.Random, index: Index) -> str:
    roll = r.random()
    base = f"{r.choice(_PREFIXES)} - {r.choice(_WORDS)} {r.choice(_WORDS)}"
    if roll < 0.04:
        return (base + " \u2013 " + _LONG * 4)[:256]
    return f"{base} {index}" if isinstance(index, int) else f"{base} ({index})"


def _scope_tags(r: random.Random) -> list[str]:
    return ["0"] if r.random() < 0.7 else sorted({"0", str(r.randrange(1, 6))})


def _times(r: random.Random) -> tuple[str, str]:
    created = _ts(r)
    return _iso(created), _iso(_ts(r, created) if r.random() < 0.8 else created)


# --- per-type builders: (rng, base payload) -> payload -------------------------------------------------


def _device_configuration(r: random.Random, p: Payload) -> Payload:
    kind = r.choice(("custom", "wifi", "general", "vpn", "macos"))
    created, modified = _times(r)
    p.update(
        createdDateTime=created,
        lastModifiedDateTime=modified,
        version=r.randrange(1, 40),
        roleScopeTagIds=_scope_tags(r),
        supportsScopeTags=True,
        description="",
        deviceManagementApplicabilityRuleOsEdition=None,
    )
    if kind == "custom":
        p["@odata.type"] = "#microsoft.graph.windows10CustomConfiguration"
        p["omaSettings"] = [
            {
                "@odata.type": "#microsoft.graph.omaSettingString",
                "displayName": f"Setting {i}",
                "description": None,
                "omaUri": f"./Device/Vendor/MSFT/Policy/Config/Custom/Setting{i}",
                "secretReferenceValueId": None,
                "isEncrypted": False,
                "value": f"{SECRET_PREFIX}OMA-{r.getrandbits(64):016x}",
            }
            for i in range(r.randrange(1, 4))
        ]
    elif kind == "wifi":
        p["@odata.type"] = "#microsoft.graph.androidDeviceOwnerWiFiConfiguration"
        p.update(
            networkName=f"corp-{r.randrange(100)}",
            ssid="CORP",
            wiFiSecurityType="wpaPersonal",
            preSharedKey=f"{SECRET_PREFIX}PSK-{r.getrandbits(48):012x}",
            preSharedKeyIsSet=True,
        )
    elif kind == "vpn":
        p["@odata.type"] = "#microsoft.graph.windows10VpnConfiguration"
        p.update(
            connectionName="Corp VPN",
            servers=[{"address": "vpn.example.com", "isDefaultServer": True}],
            password=f"{SECRET_PREFIX}PWD-{r.getrandbits(48):012x}",
            userName="vpnsvc",
        )
    elif kind == "macos":
        p["@odata.type"] = "#microsoft.graph.macOSCustomConfiguration"
        p.update(
            payloadName="profile.mobileconfig",
            payloadFileName="profile.mobileconfig",
            payload=blob(3000, "mobileconfig"),
        )
    else:
        p["@odata.type"] = "#microsoft.graph.windows10GeneralConfiguration"
        p.update(
            passwordRequired=r.random() < 0.5,
            defenderScanType="userDefined",
            edgeBlockPopups=True,
            experienceBlockDeviceDiscovery=False,
            futureSettingX17=None,
        )
    return p


def _compliance(r: random.Random, p: Payload) -> Payload:
    created, modified = _times(r)
    p.update(
        {
            "@odata.type": r.choice(
                (
                    "#microsoft.graph.windows10CompliancePolicy",
                    "#microsoft.graph.iosCompliancePolicy",
                    "#microsoft.graph.androidWorkProfileCompliancePolicy",
                )
            ),
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "version": r.randrange(1, 20),
            "roleScopeTagIds": _scope_tags(r),
            "description": None,
            "passwordRequired": True,
            "passwordMinimumLength": r.choice((6, 8, 12)),
            "osMinimumVersion": "10.0.19045",
        }
    )
    return p


def _settings_catalog(r: random.Random, p: Payload) -> Payload:
    created, modified = _times(r)
    family = r.choice(("none", "endpointSecurityAntivirus", "baseline", "endpointSecurityFirewall"))
    p.update(
        {
            "@odata.type": "#microsoft.graph.deviceManagementConfigurationPolicy",
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "description": "",
            "platforms": r.choice(("windows10", "macOS", "iOS", "windows10, macOS")),
            "technologies": r.choice(("mdm", "mdm,microsoftSense", "configManager")),
            "settingCount": r.randrange(1, 200),
            "creationSource": None,
            "isAssigned": r.random() < 0.6,
            "roleScopeTagIds": _scope_tags(r),
            "priorityMetaData": None,
            "templateReference": {
                "templateId": "" if family == "none" else f"{_guid(r.randbytes(16))}_1",
                "templateFamily": family,
                "templateDisplayName": None,
                "templateDisplayVersion": None,
            },
        }
    )
    return p


def _group_policy(r: random.Random, p: Payload) -> Payload:
    created, modified = _times(r)
    p.update(
        {
            "@odata.type": "#microsoft.graph.groupPolicyConfiguration",
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "roleScopeTagIds": _scope_tags(r),
            "description": "",
            "policyConfigurationIngestionType": r.choice(("builtIn", "custom", "mixed")),
        }
    )
    return p


def _intent(r: random.Random, p: Payload) -> Payload:
    p.update(
        {
            "@odata.type": "#microsoft.graph.deviceManagementIntent",
            "description": "",
            "isAssigned": r.random() < 0.5,
            "isMigratingToConfigurationPolicy": False,
            "lastModifiedDateTime": _iso(_ts(r)),
            "templateId": _guid(r.randbytes(16)),
            "roleScopeTagIds": _scope_tags(r),
        }
    )
    return p


_CATALOGUE = (
    "Microsoft Outlook",
    "Microsoft Teams",
    "Microsoft Edge",
    "Microsoft Authenticator",
    "Microsoft OneDrive",
    "Microsoft Word",
    "Microsoft Excel",
    "Company Portal",
)


def _mobile_app(r: random.Random, p: Payload) -> Payload:
    created, modified = _times(r)
    p.update(
        createdDateTime=created,
        lastModifiedDateTime=modified,
        description="",
        developer="",
        owner="",
        notes="",
        privacyInformationUrl=None,
        informationUrl=None,
        isFeatured=False,
        publishingState="published",
        roleScopeTagIds=_scope_tags(r),
        dependentAppCount=0,
        supersedingAppCount=0,
        supersededAppCount=0,
        uploadState=1,
        largeIcon=None,
    )
    if r.random() < 0.2:  # Microsoft's store catalogue, listed in every tenant
        p["@odata.type"] = r.choice(
            ("#microsoft.graph.managedIOSStoreApp", "#microsoft.graph.managedAndroidStoreApp")
        )
        p.update(
            displayName=r.choice(_CATALOGUE),
            publisher="Microsoft Corporation",
            appAvailability="global",
            isAssigned=r.random() < 0.25,
            version="1.0",
        )
    else:
        p["@odata.type"] = r.choice(
            (
                "#microsoft.graph.win32LobApp",
                "#microsoft.graph.iosVppApp",
                "#microsoft.graph.winGetApp",
                "#microsoft.graph.webApp",
                "#microsoft.graph.androidManagedStoreApp",
                "#microsoft.graph.officeSuiteApp",
            )
        )
        p.update(
            publisher=r.choice(("Contoso IT", "Adobe Inc.", "Zoom", "7-Zip", "Notepad++ Team")),
            appAvailability="lineOfBusiness",
            isAssigned=r.random() < 0.7,
        )
    if r.random() < 0.1:
        p["largeIcon"] = {"type": "image/png", "value": blob(20_000)}
    return p


def _app_protection(r: random.Random, p: Payload) -> Payload:
    created, modified = _times(r)
    p.update(
        {
            "@odata.type": r.choice(
                (
                    "#microsoft.graph.iosManagedAppProtection",
                    "#microsoft.graph.androidManagedAppProtection",
                    "#microsoft.graph.windowsInformationProtectionPolicy",
                )
            ),
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "description": "",
            "roleScopeTagIds": _scope_tags(r),
            "isAssigned": r.random() < 0.8,
            # A string, as Graph sends it: an ETag-like value, not a number.
            "version": f'"{_guid(r.randbytes(16))[:8]}-0000-0d00-0000-{r.getrandbits(48):012x}"',
            "periodOfflineBeforeAccessCheck": "PT12H",
            "pinRequired": True,
            "minimumPinLength": 4,
        }
    )
    return p


def _app_configuration(r: random.Random, p: Payload) -> Payload:
    created, modified = _times(r)
    p.update(
        {
            "@odata.type": r.choice(
                (
                    "#microsoft.graph.iosMobileAppConfiguration",
                    "#microsoft.graph.androidManagedStoreAppConfiguration",
                )
            ),
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "version": r.randrange(1, 9),
            "roleScopeTagIds": _scope_tags(r),
            "targetedMobileApps": [_guid(r.randbytes(16))],
            "settings": [
                {
                    "appConfigKey": "clientSecret",
                    "appConfigKeyType": "stringType",
                    "appConfigKeyValue": f"{SECRET_PREFIX}APPCFG-{r.getrandbits(48):012x}",
                }
            ],
            "clientSecret": f"{SECRET_PREFIX}CS-{r.getrandbits(64):016x}",
        }
    )
    return p


def _enrollment(r: random.Random, p: Payload) -> Payload:
    created, modified = _times(r)
    p.update(
        {
            "@odata.type": r.choice(
                (
                    "#microsoft.graph.deviceEnrollmentLimitConfiguration",
                    "#microsoft.graph.windows10EnrollmentCompletionPageConfiguration",
                    "#microsoft.graph.deviceEnrollmentPlatformRestrictionsConfiguration",
                )
            ),
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "version": r.randrange(1, 9),
            "priority": r.randrange(0, 20),
            "roleScopeTagIds": _scope_tags(r),
            "description": "",
            "deviceEnrollmentConfigurationType": "limit",
        }
    )
    return p


def _autopilot(r: random.Random, p: Payload) -> Payload:
    created, modified = _times(r)
    p.update(
        {
            "@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile",
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "roleScopeTagIds": _scope_tags(r),
            "language": "os-default",
            "deviceNameTemplate": "CORP-%SERIAL%",
            "deviceType": "windowsPc",
            "enableWhiteGlove": True,
            "extractHardwareHash": False,
        }
    )
    return p


def _script(r: random.Random, p: Payload) -> Payload:
    created, modified = _times(r)
    p.update(
        {
            "@odata.type": "#microsoft.graph.deviceManagementScript",
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "roleScopeTagIds": _scope_tags(r),
            "runAsAccount": "system",
            "fileName": f"script{r.randrange(100)}.ps1",
            "enforceSignatureCheck": False,
            "runAs32Bit": False,
            "scriptContent": blob(4000, "ps1"),
        }
    )
    return p


def _health_script(r: random.Random, p: Payload) -> Payload:
    created, modified = _times(r)
    is_global = r.random() < 0.25  # Microsoft's read-only scripts, present in every tenant
    p.update(
        {
            "@odata.type": "#microsoft.graph.deviceHealthScript",
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "roleScopeTagIds": _scope_tags(r),
            "version": "1",
            "publisher": "Microsoft" if is_global else "Contoso IT",
            "isGlobalScript": is_global,
            "runAsAccount": "system",
            "deviceHealthScriptType": "deviceHealthScript",
            "detectionScriptContent": blob(1500, "detect"),
            "remediationScriptContent": blob(1500, "fix"),
            "highestAvailableVersion": None,
        }
    )
    return p


def _feature_update(r: random.Random, p: Payload) -> Payload:
    created, modified = _times(r)
    p.update(
        {
            "@odata.type": "#microsoft.graph.windowsFeatureUpdateProfile",
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "roleScopeTagIds": _scope_tags(r),
            "description": "",
            "featureUpdateVersion": r.choice(("Windows 11, version 23H2", "Windows 10, version 22H2")),
            "deployableContentDisplayName": "Windows 11, version 23H2",
            "endOfSupportDate": None,
        }
    )
    return p


def _quality_update(r: random.Random, p: Payload) -> Payload:
    created, modified = _times(r)
    p.update(
        {
            "@odata.type": "#microsoft.graph.windowsQualityUpdateProfile",
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "roleScopeTagIds": _scope_tags(r),
            "description": "",
            "releaseDateDisplayName": "March 2024",
            "deployableContentDisplayName": "2024.03 B",
            "expeditedUpdateSettings": {
                "qualityUpdateRelease": "2024-03-12T00:00:00Z",
                "daysUntilForcedReboot": 1,
            },
        }
    )
    return p


def _scope_tag(r: random.Random, p: Payload) -> Payload:
    built_in = p["id"] == "0"
    p.update({"@odata.type": "#microsoft.graph.roleScopeTag", "description": "", "isBuiltIn": built_in})
    if built_in:
        p["displayName"] = "Default"
    return p


def _assignment_filter(r: random.Random, p: Payload) -> Payload:
    created, modified = _times(r)
    p.update(
        {
            "@odata.type": "#microsoft.graph.deviceAndAppManagementAssignmentFilter",
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "description": "",
            "platform": r.choice(("windows10AndLater", "iOS", "androidForWork", "macOS")),
            "rule": '(device.osVersion -startsWith "10.0")',
            "roleScopeTags": _scope_tags(r),
            "assignmentFilterManagementType": "devices",
            "payloads": [],
        }
    )
    return p


def _notification(r: random.Random, p: Payload) -> Payload:
    p.update(
        {
            "@odata.type": "#microsoft.graph.notificationMessageTemplate",
            "lastModifiedDateTime": _iso(_ts(r)),
            "defaultLocale": "en-us",
            "brandingOptions": "none",
            "roleScopeTagIds": _scope_tags(r),
            "description": None,
        }
    )
    return p


def _terms(r: random.Random, p: Payload) -> Payload:
    created, modified = _times(r)
    p.update(
        {
            "@odata.type": "#microsoft.graph.termsAndConditions",
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "version": r.randrange(1, 5),
            "roleScopeTagIds": ["0"],
            "title": "Company terms",
            "bodyText": "You agree to …",
            "acceptanceStatement": "I accept",
        }
    )
    return p


def _conditional_access(r: random.Random, p: Payload) -> Payload:
    created = _ts(r)
    p.update(
        {
            "@odata.type": "#microsoft.graph.conditionalAccessPolicy",
            "createdDateTime": _iso(created),
            # Never-edited policies have a null modifiedDateTime, as in real tenants.
            "modifiedDateTime": _iso(_ts(r, created)) if r.random() < 0.7 else None,
            "state": r.choice(("enabled", "disabled", "enabledForReportingButNotEnforced")),
            "templateId": None if r.random() < 0.8 else _guid(r.randbytes(16)),
            "sessionControls": None,
            "partialEnablementStrategy": None,
            "conditions": {
                "users": {"includeUsers": ["All"], "excludeGroups": [_guid(r.randbytes(16))]},
                "applications": {"includeApplications": ["All"]},
                "clientAppTypes": ["all"],
                "platforms": None,
                "locations": None,
            },
            "grantControls": {
                "operator": "OR",
                "builtInControls": ["mfa"],
                "customAuthenticationFactors": [],
                "termsOfUse": [],
            },
        }
    )
    return p


BUILDERS: dict[str, Callable[[random.Random, Payload], Payload]] = {
    "deviceConfiguration": _device_configuration,
    "deviceCompliancePolicy": _compliance,
    "settingsCatalogPolicy": _settings_catalog,
    "groupPolicyConfiguration": _group_policy,
    "endpointSecurityIntent": _intent,
    "mobileApp": _mobile_app,
    "appProtectionPolicy": _app_protection,
    "appConfigurationPolicy": _app_configuration,
    "enrollmentConfiguration": _enrollment,
    "autopilotDeploymentProfile": _autopilot,
    "deviceManagementScript": _script,
    "deviceHealthScript": _health_script,
    "windowsFeatureUpdateProfile": _feature_update,
    "windowsQualityUpdateProfile": _quality_update,
    "roleScopeTag": _scope_tag,
    "assignmentFilter": _assignment_filter,
    "notificationMessageTemplate": _notification,
    "termsAndConditions": _terms,
    "conditionalAccessPolicy": _conditional_access,
}
assert set(BUILDERS) == set(REGISTRY), "every registry type needs a payload builder"


def generate(seed: int, tenant_id: str, policy_type: str, index: Index) -> Payload:
    """The full list payload of one object, as Graph would send it in a collection page."""
    digest = object_digest(seed, tenant_id, policy_type, index)
    r = random.Random(digest)
    name_field = REGISTRY[policy_type].name_field
    payload: Payload = {
        "@odata.type": "",
        "id": object_id(seed, tenant_id, policy_type, index),
        name_field: _name(r, index),
    }
    return BUILDERS[policy_type](r, payload)
