"""A compare scenario in the emulator: a golden tenant and a branch tenant sharing one baseline.

Both tenants have the same sizes, so every name and setting is the same and every id differs
(docs/emulator.md, "cross-tenant facts"); `setup_compare_demo` then scripts, through the emulator's
admin hooks, in the branch tenant:
- one setting changed (a settings-catalog choice)            -> `different`, with its path;
- one policy removed (a compliance policy)                     -> `only_in_source` (golden only);
- one device configuration added under an existing name        -> `ambiguous`, never guessed.
`tenantatlas demo` adds these two tenants and runs this; tests use the same function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..emulator.data import TenantSpec

GOLDEN_KEY = "litware"
BRANCH_KEY = "litware-branch"
DEMO_SELECTION = "all"
_SIZES = {
    "deviceConfiguration": 6, "deviceCompliancePolicy": 4, "settingsCatalogPolicy": 6,
    "groupPolicyConfiguration": 2, "endpointSecurityIntent": 2, "mobileApp": 6, "appProtectionPolicy": 2,
    "appConfigurationPolicy": 2, "enrollmentConfiguration": 2, "autopilotDeploymentProfile": 1,
    "deviceManagementScript": 2, "deviceHealthScript": 2, "windowsFeatureUpdateProfile": 1,
    "windowsQualityUpdateProfile": 1, "roleScopeTag": 3, "assignmentFilter": 3,
    "notificationMessageTemplate": 1, "termsAndConditions": 1, "conditionalAccessPolicy": 2,
}
COMPARE_DEMO_TENANTS = (
    TenantSpec("7c1e9a40-2b6d-4f38-9e15-a0d4c7b3e821", GOLDEN_KEY, "Litware (golden)", sizes=_SIZES,
               groups=12),
    TenantSpec("9d2f0b51-3c7e-4a49-8f26-b1e5d8c4f932", BRANCH_KEY, "Litware Branch", sizes=_SIZES,
               groups=12),
)


class ScriptableEmulator(Protocol):
    """The admin hooks the scenario uses (the in-process Emulator and EmulatorClient both have them)."""

    def objects(self, tenant_id: str, policy_type: str) -> list[dict[str, Any]]: ...
    def entity(self, tenant_id: str, policy_type: str, external_id: str) -> dict[str, Any]: ...
    def set_setting(self, tenant_id: str, policy_type: str, external_id: str, key: str,
                    value: Any) -> dict[str, Any]: ...
    def remove_object(self, tenant_id: str, policy_type: str, external_id: str) -> Any: ...
    def add_object(self, tenant_id: str, policy_type: str, payload: dict[str, Any] | None = None) -> str: ...


@dataclass(frozen=True)
class CompareDemo:
    """What the scenario changed in the branch tenant (names are the same in both tenants)."""

    changed_policy: str  # settings-catalog policy name
    changed_setting: str  # its settingDefinitionId
    removed_policy: str  # compliance policy name, now only in the golden tenant
    duplicated_name: str  # device configuration name held twice in the branch

    def story(self) -> str:
        return (f"in {BRANCH_KEY}: setting {self.changed_setting} of {self.changed_policy!r} changed; "
                f"{self.removed_policy!r} removed; a second {self.duplicated_name!r} added")


def _other_choice(value: str) -> str:
    stem, _, n = value.rpartition("_")
    return f"{stem}_{0 if n != '0' else 1}"


def setup_compare_demo(emu: ScriptableEmulator, branch_id: str = COMPARE_DEMO_TENANTS[1].tenant_id
                       ) -> CompareDemo:
    """Script the three differences into the branch tenant (call once, before its snapshot)."""
    policy = emu.objects(branch_id, "settingsCatalogPolicy")[0]
    settings = emu.entity(branch_id, "settingsCatalogPolicy", policy["id"])["settings"]
    choice = next(s["settingInstance"] for s in settings if "choiceSettingValue" in s["settingInstance"])
    key = choice["settingDefinitionId"]
    emu.set_setting(branch_id, "settingsCatalogPolicy", policy["id"], key,
                    _other_choice(choice["choiceSettingValue"]["value"]))
    removed = emu.objects(branch_id, "deviceCompliancePolicy")[-1]
    emu.remove_object(branch_id, "deviceCompliancePolicy", removed["id"])
    original = emu.objects(branch_id, "deviceConfiguration")[0]
    copy = {k: v for k, v in original.items() if k != "id"}
    copy["description"] = "a second profile under the same name"
    emu.add_object(branch_id, "deviceConfiguration", copy)
    return CompareDemo(policy["name"], key, removed["displayName"], original["displayName"])


def compare_demo_document(db: Any, selection: str) -> dict[str, Any] | None:
    """The demo pair's compare with its plan (golden -> branch), or None when either tenant has no
    succeeded snapshot of `selection` yet (the demo was run without snapshots or without the pair)."""
    from ..errors import TenantAtlasError
    from .plan import promotion_plan
    from .run import CompareRequest, compare_document, compare_tenants

    try:
        with db.connect() as conn:
            result = compare_tenants(conn, CompareRequest(GOLDEN_KEY, BRANCH_KEY, selection))
    except TenantAtlasError:
        return None
    return compare_document(result, selection, promotion_plan(result))


def compare_demo_lines(doc: dict[str, Any]) -> list[str]:
    """A few lines for the demo's summary: the counts, the deviations and the plan."""
    lines = [f"\nCompare {GOLDEN_KEY} (golden) -> {BRANCH_KEY}, selection {doc['selection']}: "
             + ", ".join(f"{n} {k}" for k, n in doc["counts"].items())]
    for item in doc["items"]:
        if item["match"] != "identical":
            paths = ", ".join(c["path"] for c in item["changes"][:3])
            lines.append(f"  {item['match']:<15} {item['policy_type']}: {item['display_name'][:60]}"
                         + (f"  ({paths})" if paths else ""))
    for step in doc.get("plan", []):
        lines.append(f"  plan {step['action']:<8} {step['policy_type']}: {step['display_name'][:60]}")
    lines.append(f"(details: tenantatlas compare --source {GOLDEN_KEY} --target {BRANCH_KEY} "
                 f"--selection {doc['selection']} --plan)")
    return lines
