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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from ..policy_types import REGISTRY

Payload = dict[str, Any]
Index = int | str  # int: a generated object; str: an object added later ("added-3")

_EPOCH = datetime(2021, 1, 4, 8, 0, 0, tzinfo=UTC)
SECRET_PREFIX = "SECRET-"

_WORDS = (
    "Baseline", "Sécurité", "BitLocker", "Kiosk", "Wi\u2011Fi", "東京オフィス", "Zürich", "Ελληνικά",
    "Ünïcødé",
    "Edge", "Defender", "Firewall", "VPN", "Update ring", "Compliance", "São Paulo", "Kraków", "Пилот",
    "🚀 Pilot", "Finance", "HR", "Frontline", "Executives", "Shared devices", "Contractors", "Ring 0",
)
_PREFIXES = ("WIN", "iOS", "AND", "macOS", "W365", "GLOBAL", "EU", "US")
_LONG = "Very long policy name that somebody pasted from a change ticket with all its context "


def object_digest(seed: int, tenant_id: str, policy_type: str, index: Index) -> bytes:
    """The 32 bytes an object's *ids* are derived from: tenant-specific (stable across processes)."""
    return hashlib.sha256(f"{seed}|{tenant_id}|{policy_type}|{index}".encode()).digest()


def content_digest(seed: int, policy_type: str, index: Index, part: str = "") -> bytes:
    """The 32 bytes an object's *content* is derived from: the same in every tenant.

    Names, settings and the shape of assignments do not depend on the tenant while every id does, so
    two tenants of the same sizes look like one baseline deployed twice (what cross-tenant compare needs).
    """
    return hashlib.sha256(f"{seed}|{policy_type}|{index}|{part}".encode()).digest()


def _guid(digest: bytes) -> str:
    return str(uuid.UUID(bytes=digest[:16], version=4))


def scope_tag_id(seed: int, tenant_id: str, index: Index) -> str:
    """Scope tags have small numeric ids, as in real Intune: "0" is the built-in Default in every
    tenant; the others are numbered from a per-tenant base, so the same tag differs by id across tenants."""
    if index == 0:
        return "0"
    if isinstance(index, int):
        base = 100 * (1 + int.from_bytes(object_digest(seed, tenant_id, "roleScopeTag", "base")[:2], "big")
                      % 9000)
        return str(base + index)
    return str(1_000_000 + int.from_bytes(object_digest(seed, tenant_id, "roleScopeTag", index)[:3], "big"))


def object_id(seed: int, tenant_id: str, policy_type: str, index: Index) -> str:
    """The Graph `id` of one object. Scope tags have small numeric ids, as in real Intune."""
    if policy_type == "roleScopeTag":
        return scope_tag_id(seed, tenant_id, index)
    digest = object_digest(seed, tenant_id, policy_type, index)
    if policy_type == "enrollmentConfiguration" and index in (0, 1, 2):
        suffix = ("DefaultPlatformRestrictions", "DefaultLimit", "DefaultWindowsHelloForBusiness")[index]
        return f"{_guid(digest)}_{suffix}"
    return _guid(digest)


def group_id(seed: int, tenant_id: str, index: Index) -> str:
    """The Entra object id of a generated group (tenant-specific, like every id)."""
    return _guid(object_digest(seed, tenant_id, "group", index))


@dataclass(frozen=True)
class Refs:
    """What an object may reference in its tenant: how many generated scope tags, assignment filters,
    groups and apps there are. Content picks references by index (the same in every tenant); this turns
    an index into the tenant's id. Counts are the generated sizes, so removing a referenced object leaves
    a dangling reference, as deleting it in Intune would."""

    seed: int
    tenant_id: str
    scope_tags: int = 5
    filters: int = 10
    groups: int = 40
    apps: int = 90

    def scope_tag(self, pick: int) -> str:
        return scope_tag_id(self.seed, self.tenant_id, 1 + pick % max(1, self.scope_tags - 1))

    def filter(self, pick: int) -> str | None:
        if self.filters < 1:
            return None
        return object_id(self.seed, self.tenant_id, "assignmentFilter", pick % self.filters)

    def group(self, pick: int) -> str:
        return group_id(self.seed, self.tenant_id, pick % max(1, self.groups))

    def app(self, pick: int) -> str:
        return object_id(self.seed, self.tenant_id, "mobileApp", pick % max(1, self.apps))


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


def _scope_tags(r: random.Random, refs: Refs) -> list[str]:
    # Always the same two draws, whatever the tenant's size: content stays identical across tenants.
    roll, pick = r.random(), r.randrange(1 << 16)
    if roll < 0.7 or refs.scope_tags <= 1:
        return ["0"]
    return ["0", refs.scope_tag(pick)]


def _times(r: random.Random) -> tuple[str, str]:
    created = _ts(r)
    return _iso(created), _iso(_ts(r, created) if r.random() < 0.8 else created)


# --- per-type builders: (rng, base payload, tenant refs) -> payload -------------------------------------

_OMA_AREAS = ("Defender", "Browser", "DeviceLock", "Update", "Experience", "Privacy", "Start", "WiFi")


def _oma_setting(r: random.Random, i: int, encrypted: bool = False) -> Payload:
    """One OMA-URI setting. An encrypted one holds its secret in plain text here; graph.py serves it as
    ciphertext with a fresh secretReferenceValueId on every read, as Intune re-encrypts it."""
    area = r.choice(_OMA_AREAS)
    uri = f"./Device/Vendor/MSFT/Policy/Config/{area}/Custom{i}"
    if encrypted or r.random() < 0.25:
        return {"@odata.type": "#microsoft.graph.omaSettingString", "displayName": f"{area} secret {i}",
                "description": None, "omaUri": uri, "secretReferenceValueId": None, "isEncrypted": True,
                "value": f"{SECRET_PREFIX}OMA-{r.getrandbits(64):016x}"}
    kind = r.choice(("string", "integer", "boolean"))
    value: Any = {"string": f"<enabled/><data id=\"{area}\" value=\"{r.randrange(1000)}\"/>",
                  "integer": r.randrange(0, 3600), "boolean": r.random() < 0.5}[kind]
    return {"@odata.type": f"#microsoft.graph.omaSetting{kind.capitalize()}", "displayName": f"{area} {i}",
            "description": None, "omaUri": uri, "secretReferenceValueId": None, "isEncrypted": False,
            "value": value}



def _device_configuration(r: random.Random, p: Payload, refs: Refs) -> Payload:
    kind = r.choice(("custom", "wifi", "general", "vpn", "macos"))
    created, modified = _times(r)
    p.update(createdDateTime=created, lastModifiedDateTime=modified, version=r.randrange(1, 40),
             roleScopeTagIds=_scope_tags(r, refs), supportsScopeTags=True, description="",
             deviceManagementApplicabilityRuleOsEdition=None)
    if kind == "custom":
        p["@odata.type"] = "#microsoft.graph.windows10CustomConfiguration"
        p["omaSettings"] = [_oma_setting(r, i) for i in range(r.randrange(2, 6))]
        if not any(o["isEncrypted"] for o in p["omaSettings"]) and r.random() < 0.5:
            p["omaSettings"].append(_oma_setting(r, 9, encrypted=True))
    elif kind == "wifi":
        p["@odata.type"] = "#microsoft.graph.androidDeviceOwnerWiFiConfiguration"
        p.update(networkName=f"corp-{r.randrange(100)}", ssid="CORP", wiFiSecurityType="wpaPersonal",
                 connectAutomatically=True, connectWhenNetworkNameIsHidden=r.random() < 0.3,
                 proxySettings="none", preSharedKey=f"{SECRET_PREFIX}PSK-{r.getrandbits(48):012x}",
                 preSharedKeyIsSet=True)
    elif kind == "vpn":
        p["@odata.type"] = "#microsoft.graph.windows10VpnConfiguration"
        p.update(connectionName="Corp VPN", connectionType=r.choice(("ciscoAnyConnect", "pulseSecure",
                                                                     "microsoftAlwaysOn")),
                 servers=[{"address": f"vpn{i}.example.com", "description": f"Gateway {i}",
                           "isDefaultServer": i == 0} for i in range(r.randrange(1, 4))],
                 dnsSuffixes=["corp.example.com", "example.local"][: r.randrange(1, 3)],
                 enableSplitTunneling=r.random() < 0.5, rememberUserCredentials=True,
                 password=f"{SECRET_PREFIX}PWD-{r.getrandbits(48):012x}", userName="vpnsvc")
    elif kind == "macos":
        p["@odata.type"] = "#microsoft.graph.macOSCustomConfiguration"
        p.update(payloadName="profile.mobileconfig", payloadFileName="profile.mobileconfig",
                 payload=blob(3000, "mobileconfig"))
    else:
        p["@odata.type"] = "#microsoft.graph.windows10GeneralConfiguration"
        p.update(passwordRequired=r.random() < 0.5, passwordMinimumLength=r.choice((6, 8, 12, 14)),
                 defenderScanType="userDefined", defenderScheduledScanTime=r.choice(("02:00:00", "12:00:00")),
                 defenderFileExtensionsToExclude=r.sample(("tmp", "log", "bak", "iso", "vhdx"), 2),
                 edgeHomepageUrls=["https://intranet.example.com", "https://portal.example.com"],
                 edgeBlockPopups=True, experienceBlockDeviceDiscovery=False, futureSettingX17=None)
    return p


def _compliance(r: random.Random, p: Payload, refs: Refs) -> Payload:
    created, modified = _times(r)
    p.update({"@odata.type": r.choice(("#microsoft.graph.windows10CompliancePolicy",
                                       "#microsoft.graph.iosCompliancePolicy",
                                       "#microsoft.graph.androidWorkProfileCompliancePolicy")),
              "createdDateTime": created, "lastModifiedDateTime": modified, "version": r.randrange(1, 20),
              "roleScopeTagIds": _scope_tags(r, refs), "description": None, "passwordRequired": True,
              "passwordMinimumLength": r.choice((6, 8, 12)), "osMinimumVersion": "10.0.19045"})
    return p


def _settings_catalog(r: random.Random, p: Payload, refs: Refs) -> Payload:
    created, modified = _times(r)
    family = r.choice(("none", "endpointSecurityAntivirus", "baseline", "endpointSecurityFirewall"))
    p.update({"@odata.type": "#microsoft.graph.deviceManagementConfigurationPolicy",
              "createdDateTime": created, "lastModifiedDateTime": modified, "description": "",
              "platforms": r.choice(("windows10", "macOS", "iOS", "windows10, macOS")),
              "technologies": r.choice(("mdm", "mdm,microsoftSense", "configManager")),
              "settingCount": r.randrange(1, 200), "creationSource": None, "isAssigned": r.random() < 0.6,
              "roleScopeTagIds": _scope_tags(r, refs), "priorityMetaData": None,
              "templateReference": {
                  "templateId": "" if family == "none" else f"{_guid(r.randbytes(16))}_1",
                  "templateFamily": family, "templateDisplayName": None, "templateDisplayVersion": None}})
    return p


def _group_policy(r: random.Random, p: Payload, refs: Refs) -> Payload:
    created, modified = _times(r)
    p.update({"@odata.type": "#microsoft.graph.groupPolicyConfiguration", "createdDateTime": created,
              "lastModifiedDateTime": modified, "roleScopeTagIds": _scope_tags(r, refs), "description": "",
              "policyConfigurationIngestionType": r.choice(("builtIn", "custom", "mixed"))})
    return p


def _intent(r: random.Random, p: Payload, refs: Refs) -> Payload:
    p.update({"@odata.type": "#microsoft.graph.deviceManagementIntent", "description": "",
              "isAssigned": r.random() < 0.5, "isMigratingToConfigurationPolicy": False,
              "lastModifiedDateTime": _iso(_ts(r)), "templateId": _guid(r.randbytes(16)),
              "roleScopeTagIds": _scope_tags(r, refs)})
    return p


_CATALOGUE = ("Microsoft Outlook", "Microsoft Teams", "Microsoft Edge", "Microsoft Authenticator",
              "Microsoft OneDrive", "Microsoft Word", "Microsoft Excel", "Company Portal")


def _mobile_app(r: random.Random, p: Payload, refs: Refs) -> Payload:
    created, modified = _times(r)
    p.update(createdDateTime=created, lastModifiedDateTime=modified, description="", developer="",
             owner="", notes="", privacyInformationUrl=None, informationUrl=None, isFeatured=False,
             publishingState="published", roleScopeTagIds=_scope_tags(r, refs), dependentAppCount=0,
             supersedingAppCount=0, supersededAppCount=0, uploadState=1, largeIcon=None)
    if r.random() < 0.2:  # Microsoft's store catalogue, listed in every tenant
        p["@odata.type"] = r.choice(("#microsoft.graph.managedIOSStoreApp",
                                     "#microsoft.graph.managedAndroidStoreApp"))
        p.update(displayName=r.choice(_CATALOGUE), publisher="Microsoft Corporation",
                 appAvailability="global", isAssigned=r.random() < 0.25, version="1.0")
    else:
        p["@odata.type"] = r.choice(("#microsoft.graph.win32LobApp", "#microsoft.graph.iosVppApp",
                                     "#microsoft.graph.winGetApp", "#microsoft.graph.webApp",
                                     "#microsoft.graph.androidManagedStoreApp",
                                     "#microsoft.graph.officeSuiteApp"))
        p.update(publisher=r.choice(("Contoso IT", "Adobe Inc.", "Zoom", "7-Zip", "Notepad++ Team")),
                 appAvailability="lineOfBusiness", isAssigned=r.random() < 0.7)
    if r.random() < 0.1:
        p["largeIcon"] = {"type": "image/png", "value": blob(20_000)}
    return p


def _app_protection(r: random.Random, p: Payload, refs: Refs) -> Payload:
    created, modified = _times(r)
    p.update({"@odata.type": r.choice(("#microsoft.graph.iosManagedAppProtection",
                                       "#microsoft.graph.androidManagedAppProtection",
                                       "#microsoft.graph.windowsInformationProtectionPolicy")),
              "createdDateTime": created, "lastModifiedDateTime": modified, "description": "",
              "roleScopeTagIds": _scope_tags(r, refs), "isAssigned": r.random() < 0.8,
              # A string, as Graph sends it: an ETag-like value, not a number.
              "version": f'"{_guid(r.randbytes(16))[:8]}-0000-0d00-0000-{r.getrandbits(48):012x}"',
              "periodOfflineBeforeAccessCheck": "PT12H", "pinRequired": True, "minimumPinLength": 4})
    return p


def _app_configuration(r: random.Random, p: Payload, refs: Refs) -> Payload:
    created, modified = _times(r)
    p.update({"@odata.type": r.choice(("#microsoft.graph.iosMobileAppConfiguration",
                                       "#microsoft.graph.androidManagedStoreAppConfiguration")),
              "createdDateTime": created, "lastModifiedDateTime": modified, "version": r.randrange(1, 9),
              "roleScopeTagIds": _scope_tags(r, refs), "targetedMobileApps": [refs.app(r.randrange(1 << 16))],
              "settings": [{"appConfigKey": "clientSecret", "appConfigKeyType": "stringType",
                            "appConfigKeyValue": f"{SECRET_PREFIX}APPCFG-{r.getrandbits(48):012x}"},
                           {"appConfigKey": "AllowedTenantIds", "appConfigKeyType": "stringType",
                            "appConfigKeyValue": refs.tenant_id},
                           {"appConfigKey": "SyncIntervalMinutes", "appConfigKeyType": "integerType",
                            "appConfigKeyValue": str(r.choice((15, 30, 60)))}],
              "clientSecret": f"{SECRET_PREFIX}CS-{r.getrandbits(64):016x}"})
    return p


def _enrollment(r: random.Random, p: Payload, refs: Refs) -> Payload:
    created, modified = _times(r)
    p.update({"@odata.type": r.choice(("#microsoft.graph.deviceEnrollmentLimitConfiguration",
                                       "#microsoft.graph.windows10EnrollmentCompletionPageConfiguration",
                                       "#microsoft.graph.deviceEnrollmentPlatformRestrictionsConfiguration")),
              "createdDateTime": created, "lastModifiedDateTime": modified, "version": r.randrange(1, 9),
              "priority": r.randrange(0, 20), "roleScopeTagIds": _scope_tags(r, refs), "description": "",
              "deviceEnrollmentConfigurationType": "limit"})
    return p


def _autopilot(r: random.Random, p: Payload, refs: Refs) -> Payload:
    created, modified = _times(r)
    p.update({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile",
              "createdDateTime": created, "lastModifiedDateTime": modified,
              "roleScopeTagIds": _scope_tags(r, refs), "language": "os-default",
              "deviceNameTemplate": "CORP-%SERIAL%", "deviceType": "windowsPc",
              "enableWhiteGlove": True, "extractHardwareHash": False})
    return p


def _script(r: random.Random, p: Payload, refs: Refs) -> Payload:
    created, modified = _times(r)
    p.update({"@odata.type": "#microsoft.graph.deviceManagementScript", "createdDateTime": created,
              "lastModifiedDateTime": modified, "roleScopeTagIds": _scope_tags(r, refs),
              "runAsAccount": "system",
              "fileName": f"script{r.randrange(100)}.ps1", "enforceSignatureCheck": False,
              "runAs32Bit": False, "scriptContent": blob(4000, "ps1")})
    return p


def _health_script(r: random.Random, p: Payload, refs: Refs) -> Payload:
    created, modified = _times(r)
    is_global = r.random() < 0.25  # Microsoft's read-only scripts, present in every tenant
    p.update({"@odata.type": "#microsoft.graph.deviceHealthScript", "createdDateTime": created,
              "lastModifiedDateTime": modified, "roleScopeTagIds": _scope_tags(r, refs), "version": "1",
              "publisher": "Microsoft" if is_global else "Contoso IT", "isGlobalScript": is_global,
              "runAsAccount": "system", "deviceHealthScriptType": "deviceHealthScript",
              "detectionScriptContent": blob(1500, "detect"), "remediationScriptContent": blob(1500, "fix"),
              "highestAvailableVersion": None})
    return p


def _feature_update(r: random.Random, p: Payload, refs: Refs) -> Payload:
    created, modified = _times(r)
    p.update({"@odata.type": "#microsoft.graph.windowsFeatureUpdateProfile", "createdDateTime": created,
              "lastModifiedDateTime": modified, "roleScopeTagIds": _scope_tags(r, refs), "description": "",
              "featureUpdateVersion": r.choice(("Windows 11, version 23H2", "Windows 10, version 22H2")),
              "deployableContentDisplayName": "Windows 11, version 23H2", "endOfSupportDate": None})
    return p


def _quality_update(r: random.Random, p: Payload, refs: Refs) -> Payload:
    created, modified = _times(r)
    p.update({"@odata.type": "#microsoft.graph.windowsQualityUpdateProfile", "createdDateTime": created,
              "lastModifiedDateTime": modified, "roleScopeTagIds": _scope_tags(r, refs), "description": "",
              "releaseDateDisplayName": "March 2024", "deployableContentDisplayName": "2024.03 B",
              "expeditedUpdateSettings": {"qualityUpdateRelease": "2024-03-12T00:00:00Z",
                                          "daysUntilForcedReboot": 1}})
    return p


def _scope_tag(r: random.Random, p: Payload, refs: Refs) -> Payload:
    built_in = p["id"] == "0"
    p.update({"@odata.type": "#microsoft.graph.roleScopeTag", "description": "",
              "isBuiltIn": built_in})
    if built_in:
        p["displayName"] = "Default"
    return p


_FILTER_RULES = {
    "windows10AndLater": ('(device.osVersion -startsWith "10.0.2")',
                          '(device.deviceOwnership -eq "Corporate")',
                          '(device.manufacturer -eq "Microsoft") or (device.model -contains "Surface")'),
    "iOS": ('(device.osVersion -startsWith "17")', '(device.deviceCategory -eq "Kiosk")'),
    "androidForWork": ('(device.manufacturer -in ["Samsung", "Google"])',),
    "macOS": ('(device.osVersion -startsWith "14")', '(device.enrollmentProfileName -eq "DEP")'),
}


def _assignment_filter(r: random.Random, p: Payload, refs: Refs) -> Payload:
    created, modified = _times(r)
    p.update({"@odata.type": "#microsoft.graph.deviceAndAppManagementAssignmentFilter",
              "createdDateTime": created, "lastModifiedDateTime": modified, "description": "",
              "platform": (platform := r.choice(("windows10AndLater", "iOS", "androidForWork", "macOS"))),
              "rule": _FILTER_RULES[platform][r.randrange(len(_FILTER_RULES[platform]))],
              "roleScopeTags": _scope_tags(r, refs),
              "assignmentFilterManagementType": "devices", "payloads": []})
    return p


def _notification(r: random.Random, p: Payload, refs: Refs) -> Payload:
    p.update({"@odata.type": "#microsoft.graph.notificationMessageTemplate",
              "lastModifiedDateTime": _iso(_ts(r)), "defaultLocale": "en-us", "brandingOptions": "none",
              "roleScopeTagIds": _scope_tags(r, refs), "description": None})
    return p


def _terms(r: random.Random, p: Payload, refs: Refs) -> Payload:
    created, modified = _times(r)
    p.update({"@odata.type": "#microsoft.graph.termsAndConditions", "createdDateTime": created,
              "lastModifiedDateTime": modified, "version": r.randrange(1, 5), "roleScopeTagIds": ["0"],
              "title": "Company terms", "bodyText": "You agree to …", "acceptanceStatement": "I accept"})
    return p


def _conditional_access(r: random.Random, p: Payload, refs: Refs) -> Payload:
    created = _ts(r)
    p.update({"@odata.type": "#microsoft.graph.conditionalAccessPolicy", "createdDateTime": _iso(created),
              # Never-edited policies have a null modifiedDateTime, as in real tenants.
              "modifiedDateTime": _iso(_ts(r, created)) if r.random() < 0.7 else None,
              "state": r.choice(("enabled", "disabled", "enabledForReportingButNotEnforced")),
              "templateId": None if r.random() < 0.8 else _guid(r.randbytes(16)),
              "sessionControls": None, "partialEnablementStrategy": None,
              "conditions": {"users": {"includeUsers": ["All"], "excludeUsers": [],
                                       "includeGroups": [],
                                       "excludeGroups": [refs.group(r.randrange(1 << 16))]},
                             "applications": {"includeApplications": ["All"]},
                             "clientAppTypes": ["all"], "platforms": None, "locations": None},
              "grantControls": {"operator": "OR", "builtInControls": ["mfa"],
                                "customAuthenticationFactors": [], "termsOfUse": []}})
    return p


BUILDERS: dict[str, Callable[[random.Random, Payload, Refs], Payload]] = {
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


#: Settings per settings-catalog policy (inclusive range): what a real baseline-sized policy carries.
SETTINGS_PER_POLICY = (20, 60)


def setting_count(seed: int, index: Index) -> int:
    """How many top-level settings settings-catalog policy `index` has (catalog.py builds them)."""
    lo, hi = SETTINGS_PER_POLICY
    return random.Random(content_digest(seed, "settingsCatalogPolicy", index, "settings")).randint(lo, hi)


def generate(seed: int, tenant_id: str, policy_type: str, index: Index, refs: Refs | None = None) -> Payload:
    """The full list payload of one object, as Graph would send it in a collection page.

    `refs` sizes the tenant's scope tags, filters, groups and apps the object may reference (default:
    DEFAULT_SIZES-like counts); pass the tenant's (`data.refs_of`) to get what the emulator serves.
    """
    refs = refs or Refs(seed, tenant_id)
    r = random.Random(content_digest(seed, policy_type, index))
    name_field = REGISTRY[policy_type].name_field
    payload: Payload = {"@odata.type": "", "id": object_id(seed, tenant_id, policy_type, index),
                        name_field: _name(r, index)}
    payload = BUILDERS[policy_type](r, payload, refs)
    if policy_type == "settingsCatalogPolicy":
        payload["settingCount"] = setting_count(seed, index)
    return payload
