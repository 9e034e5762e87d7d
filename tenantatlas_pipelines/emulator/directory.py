"""Entra groups of one tenant: what assignments and conditional access reference.

Like a collection, never materialised: ``count`` generated groups (names and kinds a pure function of
``(seed, index)``, the same in every tenant; ids per tenant) plus an overlay of removed, changed and added
groups. Served by ``POST directoryObjects/getByIds`` and ``GET groups/{id}`` (graph.py).
"""

from __future__ import annotations

import random
from typing import Any

from .payloads import _iso, _ts, content_digest, group_id

Group = dict[str, Any]

_PURPOSE = ("Intune Pilot", "All Windows Devices", "Finance Users", "HR Users", "Kiosk Devices",
            "Executives", "Frontline Workers", "Contractors", "Ring 0 Devices", "Ring 1 Devices",
            "BYOD Users", "Shared iPads", "Developers", "Sales Team", "Zürich Office", "東京オフィス")
_PREFIX = ("SG", "GRP", "AAD", "M365", "DYN")


def generate_group(seed: int, tenant_id: str, index: int | str) -> Group:
    """One group: security (assigned), dynamic security, Microsoft 365, or dynamic Microsoft 365."""
    r = random.Random(content_digest(seed, "group", index))
    roll = r.random()
    name = f"{r.choice(_PREFIX)}-{r.choice(_PURPOSE)} {index}"
    dynamic = roll >= 0.55 and (roll < 0.75 or roll >= 0.92)
    unified = roll >= 0.75
    rule = (r.choice(('(device.deviceOSType -eq "Windows")', '(user.department -eq "Finance")',
                      '(device.devicePhysicalIds -any (_ -eq "[ZTDId]"))',
                      '(user.country -eq "CH") and (user.accountEnabled -eq true)'))
            if dynamic else None)
    group_types = (["Unified"] if unified else []) + (["DynamicMembership"] if dynamic else [])
    nickname = "".join(c for c in name.lower() if c.isascii() and c.isalnum())[:40] or f"group{index}"
    return {"@odata.type": "#microsoft.graph.group", "id": group_id(seed, tenant_id, index),
            "displayName": name, "description": None, "groupTypes": group_types,
            "securityEnabled": not unified or r.random() < 0.3, "mailEnabled": unified,
            "mailNickname": nickname, "mail": f"{nickname}@example.com" if unified else None,
            "membershipRule": rule, "membershipRuleProcessingState": "On" if dynamic else None,
            "createdDateTime": _iso(_ts(r)), "visibility": "Private" if unified else None,
            "isAssignableToRole": None}


class Directory:
    """One tenant's groups: generated indices plus an overlay. Callers hold the state lock."""

    def __init__(self, seed: int, tenant_id: str, count: int) -> None:
        self.seed, self.tenant_id, self.count = seed, tenant_id, count
        self.removed: set[str] = set()
        self.changed: dict[str, Group] = {}
        self.added: dict[str, Group] = {}
        self._index_of: dict[str, int] = {}
        self._added_counter = 0
        self._removed_generated = 0

    def live_count(self) -> int:
        """How many groups exist now (generated minus removed, plus added)."""
        return self.count - self._removed_generated + len(self.added)

    def _generated_index(self, gid: str) -> int | None:
        if len(self._index_of) < self.count:
            for i in range(len(self._index_of), self.count):
                self._index_of[group_id(self.seed, self.tenant_id, i)] = i
        i = self._index_of.get(gid)
        return i if i is not None and i < self.count else None

    def get(self, gid: str) -> Group | None:
        """The group with that id, or None (never existed, or removed)."""
        gid = gid.lower()
        if gid in self.removed:
            return None
        if gid in self.added:
            return dict(self.added[gid])
        if gid in self.changed:
            return dict(self.changed[gid])
        i = self._generated_index(gid)
        return generate_group(self.seed, self.tenant_id, i) if i is not None else None

    def all(self) -> list[Group]:
        out = [g for g in (self.get(group_id(self.seed, self.tenant_id, i)) for i in range(self.count)) if g]
        return out + [dict(g) for g in self.added.values()]

    def add(self, fields: dict[str, Any] | None = None) -> str:
        """Add a group (generated when `fields` is None; fields override the generated values)."""
        self._added_counter += 1
        group = generate_group(self.seed, self.tenant_id, f"added-{self._added_counter}")
        group.update(fields or {})
        gid = str(group["id"]).lower()
        group["id"] = gid
        self.removed.discard(gid)
        self.added[gid] = group
        return gid

    def update(self, gid: str, fields: dict[str, Any]) -> Group:
        group = self.get(gid)
        if group is None:
            raise KeyError(f"no group {gid}")
        group.update({k: v for k, v in fields.items() if k != "id"})
        (self.added if gid.lower() in self.added else self.changed)[gid.lower()] = group
        return group

    def remove(self, gid: str) -> bool:
        gid = gid.lower()
        if self.get(gid) is None:
            return False
        if self.added.pop(gid, None) is None:
            self._removed_generated += 1
        self.changed.pop(gid, None)
        self.removed.add(gid)
        return True
