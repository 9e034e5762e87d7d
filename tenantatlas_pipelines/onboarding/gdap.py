"""Discover customer tenants through GDAP (granular delegated admin privileges) and register them.

An MSP that manages its customers through GDAP already has the list Microsoft keeps of them:
`GET /v1.0/tenantRelationships/delegatedAdminCustomers` in the partner's own tenant (application
permission DelegatedAdminRelationship.Read.All). Reading it saves typing 300 GUIDs; what this module adds
is the part a person would otherwise decide: a readable key per customer that never changes once given.

Discovery only ever adds. A registered tenant keeps its key, name and enabled state (an operator may
have renamed or disabled it deliberately), and a registered tenant that is no longer a GDAP customer is
reported (`not_discovered`) but never touched: a relationship that expired is a question for a person,
and an incomplete read must never look like customers leaving.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import psycopg

from ..errors import ErrorCode, TenantAtlasError
from ..store.tenants import Tenant, is_guid_shaped, list_tenants, validate_tenant_id
from .writes import insert_tenants, lock_registry

if TYPE_CHECKING:
    from ..graph.client import GraphClient, RequestStats

CUSTOMERS_PATH = "tenantRelationships/delegatedAdminCustomers"
REQUIRED_PERMISSION = "DelegatedAdminRelationship.Read.All"
MAX_KEY = 63
FALLBACK_KEY = "tenant"  # for names with no letter or digit in a-z/0-9 after folding (e.g. 株式会社)
# Hex digits of the tenant id appended on a key collision, tried in order: short first, and unique in
# the end (32 = the whole id), so a suffix depends on the tenant alone, not on how many others collide.
_SUFFIX_LENGTHS = (6, 8, 12, 32)
# Legal-form words dropped from the end of a name: "Contoso Ltd." -> contoso, "Fabrikam, Inc." -> fabrikam.
_LEGAL_FORMS = frozenset(
    {
        "inc",
        "incorporated",
        "ltd",
        "limited",
        "llc",
        "llp",
        "lp",
        "plc",
        "corp",
        "corporation",
        "co",
        "company",
        "gmbh",
        "mbh",
        "ag",
        "kg",
        "se",
        "sa",
        "sas",
        "sarl",
        "srl",
        "spa",
        "bv",
        "nv",
        "ab",
        "as",
        "asa",
        "oy",
        "oyj",
        "aps",
        "pty",
        "pte",
        "kk",
        "sl",
        "sro",
    }
)
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Customer:
    """A customer tenant as the partner's delegatedAdminCustomers collection lists it."""

    tenant_id: str
    display_name: str


@dataclass(frozen=True)
class SkippedItem:
    """A listed item that is not a usable customer (no GUID): reported, never registered."""

    item: str
    reason: str


Status = Literal["new", "registered"]


@dataclass(frozen=True)
class DiscoveredTenant:
    """One discovered customer: `new` (with the key it gets) or already `registered` (its own key)."""

    status: Status
    tenant: Tenant
    discovered_name: str

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self.tenant), "discovered_name": self.discovered_name}


@dataclass(frozen=True)
class DiscoveryPlan:
    """What registering the partner's customers would do, decided before anything is written."""

    partner_tenant_id: str
    customers: tuple[DiscoveredTenant, ...]
    not_discovered: tuple[Tenant, ...]
    skipped: tuple[SkippedItem, ...] = ()

    def of(self, status: Status) -> list[DiscoveredTenant]:
        return [c for c in self.customers if c.status == status]


@dataclass(frozen=True)
class DiscoveryResult:
    """A plan and whether it was written (`applied`: new tenants were registered)."""

    plan: DiscoveryPlan
    dry_run: bool
    applied: bool

    def to_json(self) -> dict[str, Any]:
        """The machine-readable report (`tenantatlas tenants discover --json`, the sensor's log)."""
        plan = self.plan
        return {
            "partner_tenant_id": plan.partner_tenant_id,
            "dry_run": self.dry_run,
            "applied": self.applied,
            "summary": {
                "discovered": len(plan.customers),
                "new": len(plan.of("new")),
                "registered": len(plan.of("registered")),
                "not_discovered": len(plan.not_discovered),
                "skipped": len(plan.skipped),
            },
            "new": [c.to_json() for c in plan.of("new")],
            "registered": [c.to_json() for c in plan.of("registered")],
            "not_discovered": [asdict(t) for t in plan.not_discovered],
            "skipped": [{"item": s.item, "reason": s.reason} for s in plan.skipped],
        }


# --- keys --------------------------------------------------------------------------------------------


def derive_key(display_name: str) -> str:
    """A tenant key from a display name: ASCII-folded, lower case, words joined by '-', legal forms
    dropped from the end ("Contoso Ltd." -> "contoso"), at most 50 characters so a suffix still fits."""
    folded = unicodedata.normalize("NFKD", display_name).encode("ascii", "ignore").decode("ascii").lower()
    words = _WORD.findall(folded)
    while len(words) > 1 and words[-1] in _LEGAL_FORMS:
        words.pop()
    key = "-".join(words)[: MAX_KEY - 1 - _SUFFIX_LENGTHS[2]].strip("-")
    if is_guid_shaped(key):  # a display name that is a GUID: keys never look like tenant ids
        return f"{FALLBACK_KEY}-{key}"[: MAX_KEY - 1 - _SUFFIX_LENGTHS[2]].strip("-")
    return key or FALLBACK_KEY


def assign_keys(customers: Iterable[Customer], taken: Iterable[str]) -> dict[str, str]:
    """tenant_id -> key for new customers, none of them in `taken` nor given twice.

    The derived key when it is free; otherwise the key plus the first hex digits of the tenant id
    ("contoso-6f1d0a"). Customers are served in tenant-id order, so for the same customers and registry
    the result is the same on every run, whatever order Graph lists them in; once registered, a key is
    the registry's and never derived again.
    """
    used = set(taken)
    keys: dict[str, str] = {}
    for customer in sorted(customers, key=lambda c: c.tenant_id):
        base = derive_key(customer.display_name)
        key = base
        digits = customer.tenant_id.replace("-", "")
        for n in _SUFFIX_LENGTHS:
            # A suffixed key can come out GUID-shaped ("aaaaaaaa-bbbb-cccc-dddd" + 12 digits): never used.
            if key not in used and not is_guid_shaped(key):
                break
            key = f"{base[: MAX_KEY - 1 - n].rstrip('-')}-{digits[:n]}"
        if key in used or is_guid_shaped(key):  # only hand-made keys like "<base>-<32 digits>" get here
            raise TenantAtlasError(
                ErrorCode.INVALID_TENANT_KEY,
                f"no free key for tenant {customer.tenant_id}; register it by hand",
            )
        used.add(key)
        keys[customer.tenant_id] = key
    return keys


# --- read --------------------------------------------------------------------------------------------


def _customer(item: Any) -> Customer | SkippedItem:
    if not isinstance(item, dict):
        return SkippedItem(repr(item)[:80], "not a JSON object")
    raw = item.get("tenantId") or item.get("id")
    try:
        tenant_id = validate_tenant_id(raw if isinstance(raw, str) else "")
    except TenantAtlasError:
        return SkippedItem(repr(raw)[:80], "no tenant GUID in tenantId or id")
    name = item.get("displayName")
    name = name.replace("\x00", "").strip() if isinstance(name, str) else ""
    return Customer(tenant_id, name or tenant_id)


def read_customers(
    client: GraphClient, partner_tenant_id: str, *, stats: RequestStats | None = None
) -> tuple[list[Customer], list[SkippedItem]]:
    """Every GDAP customer of the partner tenant (all pages), and the items that were not usable.

    Raises the client's GraphError when the list cannot be read completely (a partial list is never
    returned); a 403 says which permission to grant.
    """
    from ..graph.errors import GraphError

    partner = validate_tenant_id(partner_tenant_id)
    customers: dict[str, Customer] = {}
    skipped: list[SkippedItem] = []
    try:
        for page in client.iter_collection(partner, CUSTOMERS_PATH, "v1.0", stats=stats):
            for item in page.items:
                found = _customer(item)
                if isinstance(found, SkippedItem):
                    skipped.append(found)
                elif found.tenant_id != partner:
                    customers.setdefault(found.tenant_id, found)
    except GraphError as exc:
        if exc.code == ErrorCode.GRAPH_FORBIDDEN:
            raise exc.with_message(
                f"{exc.message}; GDAP discovery needs the {REQUIRED_PERMISSION} application permission, "
                f"admin-consented in the partner tenant {partner}"
            ) from None
        raise
    return list(customers.values()), skipped


# --- plan and apply ----------------------------------------------------------------------------------


def plan_discovery(
    partner_tenant_id: str,
    customers: Sequence[Customer],
    registered: Sequence[Tenant],
    *,
    enabled: bool = True,
    skipped: Sequence[SkippedItem] = (),
) -> DiscoveryPlan:
    """New customers get a derived key and `enabled`; registered ones are reported as they are."""
    by_id = {t.tenant_id: t for t in registered}
    new = [c for c in customers if c.tenant_id not in by_id]
    keys = assign_keys(new, (t.key for t in registered))
    entries = [
        DiscoveredTenant("registered", by_id[c.tenant_id], c.display_name)
        if c.tenant_id in by_id
        else DiscoveredTenant(
            "new", Tenant(c.tenant_id, keys[c.tenant_id], c.display_name, enabled), c.display_name
        )
        for c in sorted(customers, key=lambda c: c.display_name.lower())
    ]
    listed = {c.tenant_id for c in customers} | {partner_tenant_id}
    not_discovered = tuple(t for t in registered if t.tenant_id not in listed)
    return DiscoveryPlan(partner_tenant_id, tuple(entries), not_discovered, tuple(skipped))


def discover_tenants(
    conn: psycopg.Connection,
    client: GraphClient,
    partner_tenant_id: str,
    *,
    apply: bool = False,
    enabled: bool = True,
) -> DiscoveryResult:
    """Read the partner's customers, plan against the registry and, with `apply`, register the new ones
    (`enabled` as given) in one transaction.

    Graph is read before the registry is locked (no lock is held across the network). The registry is
    locked only when there is something new (the sensor's usual tick finds nothing and blocks no
    writer); the plan is then made again under the lock, so keys checked as free are free when inserted.
    """
    partner = validate_tenant_id(partner_tenant_id)
    customers, skipped = read_customers(client, partner)
    try:
        plan = plan_discovery(partner, customers, list_tenants(conn), enabled=enabled, skipped=skipped)
        new = [c.tenant for c in plan.of("new")]
        if apply and new:
            lock_registry(conn)
            plan = plan_discovery(partner, customers, list_tenants(conn), enabled=enabled, skipped=skipped)
            new = [c.tenant for c in plan.of("new")]
            insert_tenants(conn, new)
            conn.commit()
        else:
            conn.rollback()
    except BaseException:
        conn.rollback()
        raise
    return DiscoveryResult(plan, dry_run=not apply, applied=apply and bool(new))
