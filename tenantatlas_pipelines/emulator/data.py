"""Emulated tenants and their collections.

A collection is never materialised: it is ``size`` generated objects (payloads computed from their index
on demand) plus an overlay of removed indices, replaced payloads and objects added later. That keeps a
50,000-object tenant as cheap as a 5-object one and lets tests mutate a tenant between two syncs.
"""

from __future__ import annotations

import copy
import marshal
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..policy_types import REGISTRY
from .admx import generate_definition_values
from .assignments import generate_assignments
from .catalog import generate_intent_settings, generate_settings
from .payloads import Index, Payload, Refs, generate, object_id
from .rendering import compile_settings

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_KEY = re.compile(r"^[a-z0-9][a-z0-9-]*$")

#: Objects per type of a typical mid-sized tenant (~340 objects; several pages of settings catalog).
DEFAULT_SIZES: Mapping[str, int] = MappingProxyType({
    "deviceConfiguration": 40, "deviceCompliancePolicy": 12, "settingsCatalogPolicy": 60,
    "groupPolicyConfiguration": 15, "endpointSecurityIntent": 8, "mobileApp": 90,
    "appProtectionPolicy": 10, "appConfigurationPolicy": 8, "enrollmentConfiguration": 6,
    "autopilotDeploymentProfile": 4, "deviceManagementScript": 10, "deviceHealthScript": 12,
    "windowsFeatureUpdateProfile": 3, "windowsQualityUpdateProfile": 3, "roleScopeTag": 5,
    "assignmentFilter": 10, "notificationMessageTemplate": 4, "termsAndConditions": 2,
    "conditionalAccessPolicy": 18,
})
assert set(DEFAULT_SIZES) == set(REGISTRY)

#: Whether a rate-limit 429 carries Retry-After: always, never, or every other one (Intune's habit).
RATE_LIMIT_RETRY_AFTER_MODES = ("always", "never", "alternate")


def scaled_sizes(factor: float, minimum: int = 1) -> dict[str, int]:
    """DEFAULT_SIZES scaled by `factor` (at least `minimum` each): a quick way to make a tenant."""
    return {k: max(minimum, round(v * factor)) for k, v in DEFAULT_SIZES.items()}


@dataclass(frozen=True)
class GdapCustomer:
    """A customer tenant a partner (MSP) tenant administers through GDAP, as Graph's
    `tenantRelationships/delegatedAdminCustomers` lists it. It need not be an emulated tenant itself:
    real partners have customers that never consented to the inventory app."""

    tenant_id: str
    display_name: str

    def __post_init__(self) -> None:
        if not _GUID.match(self.tenant_id):
            raise ValueError(f"customer tenant_id must be a lower-case GUID, got {self.tenant_id!r}")

    @classmethod
    def of(cls, spec: TenantSpec) -> GdapCustomer:
        """An emulated tenant as a customer of some partner."""
        return cls(spec.tenant_id, spec.name)


@dataclass(frozen=True)
class TenantSpec:
    """One emulated tenant. Types missing from `sizes` get their DEFAULT_SIZES count.

    ``licensed=False``: every Intune collection answers 400 "Request not applicable to target tenant."
    (conditional access is Entra, not Intune, and keeps working). ``consented=False``: the token
    endpoint answers AADSTS700016. ``rate_limit=(n, seconds)``: a sliding window of Graph requests per
    tenant; ``rate_limit_retry_after`` says whether the 429 carries Retry-After ("always", "never",
    or "alternate" — every other 429 omits it, as Intune often does). ``customers`` makes the tenant a
    GDAP partner: Graph lists them at ``tenantRelationships/delegatedAdminCustomers``. ``groups`` is
    the number of generated Entra groups assignments reference; ``assigned_ratio`` the share of objects
    of assignable types that have assignments.
    """

    tenant_id: str
    key: str
    name: str
    sizes: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_SIZES), hash=False)
    licensed: bool = True
    consented: bool = True
    rate_limit: tuple[int, float] | None = None
    rate_limit_retry_after: str = "alternate"
    customers: tuple[GdapCustomer, ...] = field(default=(), hash=False)
    groups: int = 40
    assigned_ratio: float = 0.85

    def __post_init__(self) -> None:
        if not _GUID.match(self.tenant_id):
            raise ValueError(f"tenant_id must be a lower-case GUID, got {self.tenant_id!r}")
        if not _KEY.match(self.key):
            raise ValueError(f"tenant key must match [a-z0-9-]+, got {self.key!r}")
        unknown = set(self.sizes) - set(REGISTRY)
        if unknown:
            raise ValueError(f"unknown policy types in sizes: {sorted(unknown)}")
        if self.rate_limit_retry_after not in RATE_LIMIT_RETRY_AFTER_MODES:
            raise ValueError(f"rate_limit_retry_after must be one of {RATE_LIMIT_RETRY_AFTER_MODES}")
        if self.rate_limit is not None:
            object.__setattr__(self, "rate_limit", (int(self.rate_limit[0]), float(self.rate_limit[1])))
        object.__setattr__(self, "customers", tuple(self.customers))
        if self.groups < 0 or not 0.0 <= self.assigned_ratio <= 1.0:
            raise ValueError("groups must be >= 0 and assigned_ratio in [0, 1]")

    @property
    def domain(self) -> str:
        """The tenant's initial domain; Entra accepts it wherever the GUID is accepted."""
        return f"{self.key}.onmicrosoft.com"

    def size_of(self, policy_type: str) -> int:
        return int(self.sizes.get(policy_type, DEFAULT_SIZES[policy_type]))

    def to_json(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "key": self.key, "name": self.name,
                "sizes": {k: self.size_of(k) for k in REGISTRY}, "licensed": self.licensed,
                "consented": self.consented,
                "rate_limit": list(self.rate_limit) if self.rate_limit else None,
                "rate_limit_retry_after": self.rate_limit_retry_after,
                "customers": [{"tenant_id": c.tenant_id, "display_name": c.display_name}
                              for c in self.customers],
                "groups": self.groups, "assigned_ratio": self.assigned_ratio}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TenantSpec:
        rate = data.get("rate_limit")
        return cls(tenant_id=data["tenant_id"], key=data["key"], name=data.get("name", data["key"]),
                   sizes=dict(data.get("sizes") or {}), licensed=bool(data.get("licensed", True)),
                   consented=bool(data.get("consented", True)),
                   rate_limit=(int(rate[0]), float(rate[1])) if rate else None,
                   rate_limit_retry_after=data.get("rate_limit_retry_after", "alternate"),
                   customers=tuple(GdapCustomer(c["tenant_id"], c["display_name"])
                                   for c in data.get("customers") or ()),
                   groups=int(data.get("groups", 40)),
                   assigned_ratio=float(data.get("assigned_ratio", 0.85)))


_NORTHWIND = {
    "deviceConfiguration": 350, "deviceCompliancePolicy": 120, "settingsCatalogPolicy": 260,
    "groupPolicyConfiguration": 160, "endpointSecurityIntent": 40, "mobileApp": 1450,
    "appProtectionPolicy": 60, "appConfigurationPolicy": 45, "enrollmentConfiguration": 25,
    "autopilotDeploymentProfile": 12, "deviceManagementScript": 70, "deviceHealthScript": 55,
    "windowsFeatureUpdateProfile": 8, "windowsQualityUpdateProfile": 8, "roleScopeTag": 30,
    "assignmentFilter": 80, "notificationMessageTemplate": 15, "termsAndConditions": 5,
    "conditionalAccessPolicy": 110,
}

CONTOSO = TenantSpec("6f1d0a52-8b3e-4c2a-9d71-3e5b8c0f4a21", "contoso", "Contoso Ltd.")
FABRIKAM = TenantSpec("b24e7c19-05d3-4a8f-b6e2-9c1f7a3d5e08", "fabrikam", "Fabrikam, Inc.",
                      sizes=scaled_sizes(0.15))
NORTHWIND = TenantSpec("0c9a3f7e-6d21-4b58-8e4f-a7b2d1c63e95", "northwind", "Northwind Traders",
                       sizes=_NORTHWIND)
TAILSPIN = TenantSpec("e87b2d40-3a9c-4f16-a05d-52c8e1b9f7a3", "tailspin", "Tailspin Toys (no Intune)",
                      sizes=scaled_sizes(0.1), licensed=False)
#: Not in DEMO_TENANTS: a customer that never consented to the app (token endpoint: AADSTS700016).
WOODGROVE = TenantSpec("4d5c6b7a-1e2f-4a3b-8c9d-0e1f2a3b4c5d", "woodgrove", "Woodgrove Bank (no consent)",
                       sizes=scaled_sizes(0.1), consented=False)

def refs_of(seed: int, spec: TenantSpec) -> Refs:
    """What a fresh emulator's objects of `spec` reference (its generated sizes): pass it to `generate`
    to reproduce in another process exactly what the emulator serves."""
    return Refs(seed, spec.tenant_id, scope_tags=spec.size_of("roleScopeTag"),
                filters=spec.size_of("assignmentFilter"), groups=spec.groups, apps=spec.size_of("mobileApp"))


DEMO_TENANTS: tuple[TenantSpec, ...] = (CONTOSO, FABRIKAM, NORTHWIND, TAILSPIN)


def small_tenants(factor: float = 0.05) -> tuple[TenantSpec, ...]:
    """DEMO_TENANTS (same GUIDs, keys and flags) with each tenant's sizes scaled by `factor`.

    Every type keeps at least one object, and settings catalog at least 30 so it still spans two pages
    of 25 — the paging behaviour tests and demos most need to show.
    """
    out = []
    for spec in DEMO_TENANTS:
        sizes = {k: max(1, round(spec.size_of(k) * factor)) for k in DEFAULT_SIZES}
        sizes["settingsCatalogPolicy"] = max(30, sizes["settingsCatalogPolicy"])
        out.append(TenantSpec(spec.tenant_id, spec.key, spec.name, sizes=sizes, licensed=spec.licensed,
                              consented=spec.consented, rate_limit=spec.rate_limit,
                              rate_limit_retry_after=spec.rate_limit_retry_after, customers=spec.customers,
                              groups=spec.groups, assigned_ratio=spec.assigned_ratio))
    return tuple(out)


#: Bytes of generated content one collection keeps frozen (see `_Frozen`): a 2,000-policy settings catalog
#: with its settings and assignments takes ~50 MB; beyond the budget objects are generated per read again.
FROZEN_BUDGET_BYTES = 96 * 1024 * 1024


class _Frozen:
    """Results of the deterministic generators (payloads.py, catalog.py, assignments.py, admx.py), kept as
    marshal bytes once computed.

    Regenerating an object on every read (random draws, digests, a JSON template per setting) was most of
    the emulator's time to serve a `$expand=settings` page; `marshal.loads` of the frozen bytes gives the
    same private, mutable copy for a fraction of that. Reads still vary as before (present.py works on the
    copy: new ciphertext, moved timestamps, reordered arrays). `shared` keeps immutable values as they
    are (compiled settings, rendering.py). Keys hold every input of the generator but the collection's
    own (seed, tenant, type); everything is dropped when the references objects are generated with
    change (`_check`). Filling stops at the budget (no eviction: a paging client reads slots in order,
    and evicting the oldest would make every pass a miss)."""

    __slots__ = ("_blobs", "_bytes", "_refs", "_shared", "budget")

    def __init__(self, budget: int = FROZEN_BUDGET_BYTES) -> None:
        self._blobs: dict[tuple[Any, ...], bytes] = {}
        self._shared: dict[tuple[Any, ...], Any] = {}
        self._bytes = 0
        self._refs: Refs | None = None
        self.budget = budget

    def _check(self, refs: Refs) -> None:
        if refs != self._refs:
            self._blobs.clear()
            self._shared.clear()
            self._bytes, self._refs = 0, refs

    def room(self) -> bool:
        """Whether anything more is kept."""
        return self._bytes < self.budget

    def shared(self, key: tuple[Any, ...], refs: Refs, make: Callable[[], Any]) -> Any:
        """`make()`'s result, kept as it is: for immutable values (tuples, strings) only."""
        self._check(refs)
        value = self._shared.get(key)
        if value is None:
            value = make()
            if self._bytes < self.budget:
                self._shared[key] = value
                self._bytes += len(marshal.dumps(value))
        return value

    def get(self, key: tuple[Any, ...], refs: Refs, make: Callable[[], Any]) -> Any:
        """A private copy of `make()`'s result, from the frozen bytes when there are any."""
        self._check(refs)
        blob = self._blobs.get(key)
        if blob is not None:
            return marshal.loads(blob)
        value = make()
        if self._bytes < self.budget:
            try:
                blob = marshal.dumps(value)
            except ValueError:  # not plain JSON-like data: served as generated, never frozen
                return value
            self._blobs[key] = blob
            self._bytes += len(blob)
        return value


#: Navigation properties kept beside an object's payload: served only through their own endpoints or
#: ``$expand`` (never in a plain listing), and changed on their own by the admin interface.
NAV_KEYS = ("assignments", "settings", "definitionValues")


class Collection:
    """One tenant's objects of one policy type: generated indices plus an overlay of changes.

    Positions ("slots") are stable while paging: slots ``0..size-1`` are generated objects, slots from
    ``size`` on are added objects in insertion order (removed ones stay as tombstones), so a cursor keeps
    pointing at the same place when objects elsewhere are removed or added. Assignments and settings
    (`NAV_KEYS`) are generated from the same index on demand, or kept in ``nav`` once changed.
    Callers hold the lock.
    """

    def __init__(self, seed: int, tenant_id: str, policy_type: str, size: int,
                 refs: Callable[[], Refs] | None = None, assigned_ratio: float = 0.85) -> None:
        self.seed, self.tenant_id, self.policy_type = seed, tenant_id, policy_type
        self.size = size
        self.refs = refs or (lambda: Refs(seed, tenant_id))
        self.assigned_ratio = assigned_ratio
        self.removed: set[int] = set()
        self.replaced: dict[int, Payload] = {}
        self.added: list[Payload | None] = []
        self.added_index: dict[int, Index] = {}  # added slot offset -> generation index ("added-3")
        self.nav: dict[str, dict[str, list[dict[str, Any]]]] = {}  # object id -> changed nav properties
        self._index_of: dict[str, int] = {}
        self._indexed_up_to = 0
        self._added_counter = 0
        self._frozen = _Frozen()

    # --- lookup ---------------------------------------------------------------------------------------

    def _generated_index(self, external_id: str) -> int | None:
        if self._indexed_up_to < self.size:  # built lazily: only removal and lookups need it
            for i in range(self._indexed_up_to, self.size):
                self._index_of[object_id(self.seed, self.tenant_id, self.policy_type, i)] = i
            self._indexed_up_to = self.size
        i = self._index_of.get(external_id)
        return i if i is not None and i < self.size else None

    def slot_of(self, external_id: str) -> int | None:
        """The slot of a live object, or None."""
        for k, item in enumerate(self.added):
            if item is not None and item.get("id") == external_id:
                return self.size + k
        i = self._generated_index(external_id)
        if i is None or i in self.removed:
            return None
        if i in self.replaced and self.replaced[i].get("id") != external_id:
            return None
        return i

    def payload_at(self, slot: int) -> Payload | None:
        """The live payload at a slot (a private deep copy the caller may change), or None for a removed
        object or a slot past the end."""
        if slot < self.size:
            if slot in self.removed:
                return None
            replaced = self.replaced.get(slot)
            if replaced is not None:
                return copy.deepcopy(replaced)
            refs = self.refs()
            return self._frozen.get(("payload", slot), refs, lambda: generate(
                self.seed, self.tenant_id, self.policy_type, slot, refs))
        k = slot - self.size
        if 0 <= k < len(self.added) and self.added[k] is not None:
            return copy.deepcopy(self.added[k])
        return None

    def _id_at(self, slot: int) -> str:
        """The id of the live object at `slot` ("" for none), without generating its payload."""
        if slot < self.size:
            if slot in self.removed:
                return ""
            replaced = self.replaced.get(slot)
            return str(replaced.get("id")) if replaced is not None else object_id(
                self.seed, self.tenant_id, self.policy_type, slot)
        k = slot - self.size
        added = self.added[k] if 0 <= k < len(self.added) else None
        return str(added.get("id")) if added is not None else ""

    def _index_at(self, slot: int) -> Index | None:
        """The generation index behind a slot (None for an object added with an explicit payload)."""
        return slot if slot < self.size else self.added_index.get(slot - self.size)

    def nav_at(self, slot: int, key: str) -> list[dict[str, Any]]:
        """The assignments, settings or definition values of the live object at `slot` (a fresh copy the
        caller may change)."""
        oid = self._id_at(slot)
        changed = self.nav.get(oid, {}).get(key)
        if changed is not None:
            return copy.deepcopy(changed)
        index = self._index_at(slot)
        if index is None or not oid:
            return []
        refs = self.refs()
        if key == "assignments":
            ratio = self.assigned_ratio
            return self._frozen.get((key, index, oid, ratio), refs, lambda: generate_assignments(
                self.seed, self.policy_type, index, oid, refs, ratio))
        if key == "settings" and self.policy_type == "settingsCatalogPolicy":
            return self._frozen.get((key, index), refs, lambda: generate_settings(self.seed, index))
        if key == "settings" and self.policy_type == "endpointSecurityIntent":
            return self._frozen.get((key, index), refs, lambda: generate_intent_settings(self.seed, index))
        if key == "definitionValues" and self.policy_type == "groupPolicyConfiguration":
            return self._frozen.get((key, index), refs, lambda: generate_definition_values(
                self.seed, self.tenant_id, index))
        return []

    def settings_template(self, slot: int) -> Any:
        """The compiled settings (rendering.py) of the generated settings-catalog policy at `slot`, or
        None: another type, settings changed through the admin interface, or no generated object."""
        if self.policy_type != "settingsCatalogPolicy":
            return None
        oid = self._id_at(slot)
        index = self._index_at(slot)
        if not oid or index is None or "settings" in self.nav.get(oid, {}):
            return None
        return self._frozen.shared(("settings-template", index), self.refs(),
                                   lambda: compile_settings(generate_settings(self.seed, index)))

    def warm(self) -> int:
        """Generate and freeze (`_Frozen`) what a content read of every live generated object needs, so
        reads that follow serve stored content instead of generating it — as Graph serves what it has
        stored. Returns how many objects were warmed (stops early, silently, at the frozen budget)."""
        warmed = 0
        for slot in range(min(self.size, self.slot_count)):
            if self._live(slot) and self._frozen.room():
                self.payload_at(slot)
                self.nav_at(slot, "assignments")
                if self.settings_template(slot) is None:
                    for key in ("settings", "definitionValues"):
                        self.nav_at(slot, key)
                warmed += 1
        return warmed

    def set_nav(self, external_id: str, key: str, value: list[dict[str, Any]]) -> None:
        if key not in NAV_KEYS:
            raise ValueError(f"unknown navigation property {key!r}")
        self.nav.setdefault(str(external_id), {})[key] = copy.deepcopy(value)

    def _live(self, slot: int) -> bool:
        if slot < self.size:
            return slot not in self.removed
        k = slot - self.size
        return 0 <= k < len(self.added) and self.added[k] is not None

    @property
    def slot_count(self) -> int:
        return self.size + len(self.added)

    def count(self) -> int:
        return self.size - len({i for i in self.removed if i < self.size}) + sum(
            1 for a in self.added if a is not None)

    def page(self, start: int, limit: int) -> tuple[list[tuple[int, Payload]], int | None]:
        """Up to `limit` live (slot, payload) pairs from `start`, and the slot to continue at (or None)."""
        out: list[tuple[int, Payload]] = []
        slot, end = max(0, start), self.slot_count
        while slot < end and len(out) < limit:
            payload = self.payload_at(slot)
            if payload is not None:
                out.append((slot, payload))
            slot += 1
        while slot < end and not self._live(slot):
            slot += 1
        return out, (slot if slot < end else None)

    def first_live_slot(self) -> int | None:
        items, _ = self.page(0, 1)
        return items[0][0] if items else None

    def __iter__(self) -> Iterator[Payload]:
        for slot in range(self.slot_count):
            payload = self.payload_at(slot)
            if payload is not None:
                yield payload

    # --- mutation -------------------------------------------------------------------------------------

    def add(self, payload: Payload | None) -> str:
        """Add (or, when the id exists, replace in place) an object; returns its id.

        `payload` may carry ``assignments`` and (settings catalog) ``settings``: they are kept as the
        object's navigation properties, not in its listed payload.
        """
        index: Index | None = None
        if payload is None:
            self._added_counter += 1
            index = f"added-{self._added_counter}"
            payload = generate(self.seed, self.tenant_id, self.policy_type, index, self.refs())
            while self.slot_of(payload["id"]) is not None:  # astronomically unlikely; stay correct anyway
                self._added_counter += 1
                index = f"added-{self._added_counter}"
                payload = generate(self.seed, self.tenant_id, self.policy_type, index, self.refs())
        else:
            payload = dict(payload)
            if "id" not in payload:
                self._added_counter += 1
                payload["id"] = object_id(self.seed, self.tenant_id, self.policy_type,
                                          f"explicit-{self._added_counter}")
        nav = {k: payload.pop(k) for k in NAV_KEYS if isinstance(payload.get(k), list)}
        external_id = str(payload["id"])
        slot = self.slot_of(external_id)
        if slot is None:
            self.added.append(payload)
            slot = self.size + len(self.added) - 1
            if index is not None:
                self.added_index[len(self.added) - 1] = index
            self.nav.pop(external_id, None)
        elif slot < self.size:
            self.replaced[slot] = payload
        else:
            self.added[slot - self.size] = payload
        for key, value in nav.items():
            self.set_nav(external_id, key, value)
        return external_id

    def remove(self, external_id: str) -> bool:
        slot = self.slot_of(external_id)
        if slot is None:
            return False
        if slot < self.size:
            self.removed.add(slot)
            self.replaced.pop(slot, None)
        else:
            self.added[slot - self.size] = None
        self.nav.pop(external_id, None)
        return True

    def set_size(self, n: int) -> None:
        """Grow or shrink the generated part (added objects are kept)."""
        if n < 0:
            raise ValueError("size must be >= 0")
        self.size = n
