"""Shared scenario for the drift tests: one selection, two tenants, objects that exercise every source
of false positives, and helpers to store snapshots of them (the snapshot store's synthetic helper)."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from tenantatlas_pipelines.snapshots import GroupType, Reference, RefKind
from tenantatlas_pipelines.snapshots.synthetic import SyntheticObject, group_assignment, insert_snapshot
from tenantatlas_pipelines.store.scope import TenantScope
from tenantatlas_pipelines.store.selections import Selection

TYPES = ["deviceConfiguration", "settingsCatalogPolicy"]
KEY = b"drift-test-key"

SALES = Reference(RefKind.GROUP, "g-sales", "Sales", GroupType.SECURITY)
FINANCE = Reference(RefKind.GROUP, "g-fin", "Finance", GroupType.SECURITY)
WIN = Reference(RefKind.ASSIGNMENT_FILTER, "f-win", "Windows only")
MAC = Reference(RefKind.ASSIGNMENT_FILTER, "f-mac", "Macs")
DEFAULT_TAG = Reference(RefKind.SCOPE_TAG, "0", "Default")
EU_TAG = Reference(RefKind.SCOPE_TAG, "1", "EU")
REFERENCES = [SALES, FINANCE, WIN, MAC, DEFAULT_TAG, EU_TAG]


def _setting(definition: str, value: str, children: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"value": value}
    if children:
        choice["children"] = children
    return {
        "settingDefinitionId": definition,
        "choiceSettingValue": choice,
        "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance",
    }


def baseline_content() -> dict[str, dict[str, Any]]:
    """Raw Graph-shaped content per object id (as a first read returns it)."""
    return {
        "wifi": {
            "@odata.type": "#microsoft.graph.windowsWifiConfiguration",
            "displayName": "Corp Wi-Fi",
            "ssid": "corp",
            "description": "",
            "roleScopeTagIds": ["0", "1"],
            "version": 3,
            "lastModifiedDateTime": "2026-11-01T00:00:00Z",
            "createdDateTime": "2026-01-01T00:00:00Z",
            "preSharedKey": "hunter2",
            "maxClients": 10.0,
            "notes": None,
            "proxyExclusions": [],
            "omaSettings": [
                {
                    "omaUri": "./Vendor/MSFT/A",
                    "value": "MIIB-cipher-1",
                    "isEncrypted": True,
                    "secretReferenceValueId": "ref-1",
                },
                {"omaUri": "./Vendor/MSFT/B", "value": 5, "isEncrypted": False},
            ],
        },
        "kiosk": {"displayName": "Kiosk", "kioskMode": True, "edgeHomepageUrls": ["https://a", "https://b"]},
        "old": {"displayName": "Legacy VPN", "server": "vpn.contoso.com"},
        "defender": {
            "name": "Defender",
            "@odata.context": "https://graph/…",
            "settings": [
                {"id": "0", "settingInstance": _setting("defender_rtp", "defender_rtp_1")},
                {"id": "1", "settingInstance": _setting("fw", "fw_1", [_setting("fw_log", "fw_log_0")])},
            ],
        },
    }


def baseline_assignments() -> dict[str, list[dict[str, Any]]]:
    return {
        "wifi": [group_assignment("g-sales", filter_id="f-win"), group_assignment("g-gone", exclude=True)],
        "defender": [group_assignment("g-sales")],
    }


def reread(
    content: dict[str, dict[str, Any]], assignments: dict[str, list[dict[str, Any]]]
) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """What a second read of the UNCHANGED tenant returns: every false-positive source at once —
    re-ordered lists, null vs "" vs absent vs [], volatile timestamps and versions, re-encrypted secrets
    with a new reference id, 10.0 vs 10, @odata noise, settings and assignments in another order."""
    c = copy.deepcopy(content)
    a = copy.deepcopy(assignments)
    wifi = c["wifi"]
    wifi["roleScopeTagIds"] = ["1", "0"]
    wifi["version"] = 9
    wifi["lastModifiedDateTime"] = "2026-11-30T02:00:00Z"
    wifi["description"] = None
    wifi.pop("notes")
    wifi["proxyExclusions"] = None
    wifi["maxClients"] = 10
    wifi["@odata.etag"] = 'W/"42"'
    wifi["omaSettings"] = [
        {"omaUri": "./Vendor/MSFT/B", "value": 5.0, "isEncrypted": False, "description": ""},
        {
            "omaUri": "./Vendor/MSFT/A",
            "value": "MIIB-cipher-2-reencrypted",
            "isEncrypted": True,
            "secretReferenceValueId": "ref-2",
        },
    ]
    c["defender"]["settings"] = list(reversed(c["defender"]["settings"]))
    c["defender"]["lastModifiedDateTime"] = "2026-11-30T02:00:00Z"
    c["kiosk"]["isAssigned"] = False
    a["wifi"] = list(reversed(a["wifi"]))
    return c, a


def objects(
    content: dict[str, dict[str, Any]], assignments: dict[str, list[dict[str, Any]]]
) -> list[SyntheticObject]:
    kinds = {"defender": "settingsCatalogPolicy"}
    return [
        SyntheticObject(kinds.get(oid, "deviceConfiguration"), oid, body, tuple(assignments.get(oid, ())))
        for oid, body in content.items()
    ]


def snapshot(
    scope: TenantScope,
    selection: Selection,
    content: dict[str, dict[str, Any]],
    assignments: dict[str, list[dict[str, Any]]],
    *,
    references: Iterable[Reference] = REFERENCES,
    key: bytes | None = None,
    **kwargs: Any,
) -> int:
    return insert_snapshot(
        scope, selection, objects(content, assignments), references=references, key=key, **kwargs
    )
