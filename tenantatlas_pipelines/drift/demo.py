"""The demo's drift round: change one emulated tenant the way real tenants drift, and say what drift
must report (and what it must not).

`apply_demo_drift(emu, tenant_key)` makes five changes to distinct device configurations: a setting
changed, an assignment added, a policy renamed, one removed, and one whose encrypted secret Intune
re-encrypts (the emulator rotates its key; every read re-encrypts anyway) — that last one must NOT show.
The integrator calls it from `tenantatlas demo` between two snapshot rounds; the end-to-end test calls
it the same way and checks drift reports exactly `expected`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

POLICY_TYPE = "deviceConfiguration"
NEW_NAME_SUFFIX = " (renamed)"


@dataclass(frozen=True)
class Expected:
    """One item drift must report: kind and the path its (first) change must start with."""

    policy_type: str
    external_id: str
    kind: str
    path_prefix: str | None


@dataclass(frozen=True)
class DemoDrift:
    tenant_key: str
    story: str
    expected: tuple[Expected, ...]
    quiet: tuple[str, ...]  # external ids that changed only by re-encryption: must not show

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant_key,
            "story": self.story,
            "expected": [e.__dict__ for e in self.expected],
            "quiet": list(self.quiet),
        }


def _encrypted(obj: dict[str, Any]) -> bool:
    return any(isinstance(s, dict) and s.get("isEncrypted") for s in obj.get("omaSettings") or [])


def apply_demo_drift(emu: Any, tenant_key: str) -> DemoDrift:
    """Make the five changes in `tenant_key`'s device configurations (needs at least five of them,
    one with an encrypted OMA-URI setting, one with an `ssid` or a plain OMA-URI setting)."""
    tenant_id = emu.tenant(tenant_key).tenant_id
    objects = list(emu.objects(tenant_id, POLICY_TYPE))
    secret = next((o for o in objects if _encrypted(o)), None)
    if secret is None or len(objects) < 5:
        raise ValueError(f"{tenant_key} needs five device configurations, one with an encrypted setting")
    rest = [o for o in objects if o["id"] != secret["id"]]

    def settable(o: dict[str, Any]) -> bool:
        return "ssid" in o or any(
            isinstance(s, dict) and not s.get("isEncrypted") for s in o.get("omaSettings") or []
        )

    setting = next(o for o in rest if settable(o))
    rest = [o for o in rest if o["id"] != setting["id"]]
    assigned, renamed, removed = rest[0], rest[1], rest[2]

    if "ssid" in setting:
        emu.set_setting(tenant_id, POLICY_TYPE, setting["id"], "ssid", f"{setting['ssid']}-GUEST")
        setting_path = "ssid"
    else:
        oma = next(s for s in setting["omaSettings"] if isinstance(s, dict) and not s.get("isEncrypted"))
        value = oma.get("value")
        new = (
            (not value) if isinstance(value, bool) else (value + 1) if isinstance(value, int) else f"{value}x"
        )
        emu.set_setting(tenant_id, POLICY_TYPE, setting["id"], oma["omaUri"], new)
        setting_path = f"omaSettings[{oma['omaUri']}]"

    used = {
        (a.get("target") or {}).get("groupId")
        for a in emu.assignments(tenant_id, POLICY_TYPE, assigned["id"])
    }
    group = next(g for g in emu.groups(tenant_id) if g["id"] not in used)
    emu.add_assignment(tenant_id, POLICY_TYPE, assigned["id"], "group", group_id=group["id"])
    emu.rename_object(tenant_id, POLICY_TYPE, renamed["id"], f"{renamed['displayName']}{NEW_NAME_SUFFIX}")
    emu.remove_object(tenant_id, POLICY_TYPE, removed["id"])
    emu.reencrypt()

    expected = (
        Expected(POLICY_TYPE, setting["id"], "changed", setting_path),
        Expected(POLICY_TYPE, assigned["id"], "changed", f"assignments[group:{group['displayName']}]"),
        Expected(POLICY_TYPE, renamed["id"], "changed", "displayName"),
        Expected(POLICY_TYPE, removed["id"], "missing", None),
    )
    story = (
        f"in {tenant_key}: a setting changed ({setting['displayName']}), an assignment to "
        f"{group['displayName']} added ({assigned['displayName']}), {renamed['displayName']} renamed, "
        f"{removed['displayName']} removed, and the secrets re-encrypted ({secret['displayName']} must not "
        "show)"
    )
    return DemoDrift(tenant_key, story, expected, (secret["id"],))
