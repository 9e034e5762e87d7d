"""What makes one tenant's document comparable with another's: tenant-specific ids become names.

Two steps, both per side (each side's own snapshot):
- `identity_rewriter`, on a document's JSON text while it is read from the store (one C-speed scan of
  text that has to be parsed anyway; most documents have no hit): the tenant's own id and domains
  (`<key>.onmicrosoft.com` and any configured) -> `{tenant_id}` / `{tenant_domain}` — an app
  configuration's `AllowedTenantIds` carries the tenant id — and ids of other objects of the same
  snapshot (an app configuration's `targetedMobileApps`) -> `object:<policy type>/<display name>`;
- `reference_canonicaliser`, on the parsed document at compare time: the snapshots package's
  `canonicalise_references` (assignment groups and filters, scope tags -> resolved names) plus the
  groups a conditional-access policy includes or excludes, which live outside assignment records.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..snapshots.diff import Canonicaliser, canonicalise_references
from ..snapshots.references import Reference, ReferenceIndex, RefKind

TENANT_ID_TOKEN = "{tenant_id}"
TENANT_DOMAIN_TOKEN = "{tenant_domain}"
OBJECT_LABEL_PREFIX = "object:"
_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_GUID_RE = re.compile(_GUID)


def object_label(policy_type: str, display_name: str | None) -> str:
    """How a referenced object reads once its id is replaced: the same in every tenant."""
    return f"{OBJECT_LABEL_PREFIX}{policy_type}/{(display_name or '').strip()}"


def parse_object_label(value: str) -> tuple[str, str] | None:
    """(policy type, name) of an object label, None for any other string."""
    if not value.startswith(OBJECT_LABEL_PREFIX) or "/" not in value:
        return None
    policy_type, _, name = value[len(OBJECT_LABEL_PREFIX):].partition("/")
    return policy_type, name


def initial_domain(tenant_key: str) -> str:
    """The tenant's `.onmicrosoft.com` domain as our tenant key names it (the emulator's convention;
    a real tenant whose key differs lists its domains in configuration)."""
    return f"{tenant_key}.onmicrosoft.com"


def identity_rewriter(
    tenant_id: str, domains: Iterable[str], object_labels: Mapping[str, str]
) -> Callable[[str], str]:
    """A function of a document's JSON text replacing the tenant's id, its domains and the ids of the
    objects in `object_labels` inside string values."""
    replacements = {k.lower(): json.dumps(v, ensure_ascii=False)[1:-1]  # escaped for inside a JSON string
                    for k, v in object_labels.items()}
    replacements[tenant_id.lower()] = TENANT_ID_TOKEN
    names = sorted({d.strip().lower() for d in domains if d and d.strip()}, key=len, reverse=True)
    domain_pattern = re.compile("|".join(re.escape(d) for d in names), re.IGNORECASE) if names else None

    def rewrite(text: str) -> str:
        # GUIDs found by one C-speed scan, replaced by plain string replacement: no Python call per match
        for found in set(_GUID_RE.findall(text)):
            replacement = replacements.get(found.lower())
            if replacement is not None:
                text = text.replace(found, replacement)
        if domain_pattern is not None and any(d in text.lower() for d in names):
            text = domain_pattern.sub(TENANT_DOMAIN_TOKEN, text)
        return text

    return rewrite


def reference_canonicaliser(references: Iterable[Reference]) -> Canonicaliser:
    """Group, filter and scope-tag ids -> resolved names (the snapshots package's canonicaliser), and
    the same for conditional access's `conditions.users.includeGroups` / `excludeGroups`."""
    refs = ReferenceIndex(references)
    by_name = canonicalise_references(refs)

    def group(group_id: Any) -> Any:
        return refs.name(RefKind.GROUP, str(group_id)) or f"unresolved:{group_id}" \
            if isinstance(group_id, str) and re.fullmatch(_GUID, group_id) else group_id

    def apply(document: Mapping[str, Any]) -> Mapping[str, Any]:
        doc = by_name(document)
        users = (doc.get("conditions") or {}).get("users")
        if isinstance(users, Mapping) and (users.get("includeGroups") or users.get("excludeGroups")):
            users = {**users, **{k: sorted(group(g) for g in users[k])
                                 for k in ("includeGroups", "excludeGroups") if users.get(k)}}
            doc = {**doc, "conditions": {**doc["conditions"], "users": users}}
        return doc

    return apply
