"""What makes one tenant's document comparable with another's: tenant-specific ids become names.

A side's canonicaliser composes the snapshots package's `canonicalise_references` (group, filter and
scope-tag ids -> resolved names) with two more replacements inside string values:
- the tenant's own id and domains (`<key>.onmicrosoft.com` and any configured) -> `{tenant_id}` /
  `{tenant_domain}` — an app configuration's `AllowedTenantIds` carries the tenant id;
- ids of other objects of the same snapshot (an app configuration's `targetedMobileApps`) ->
  `object:<policy type>/<display name>`, and group ids outside assignments (conditional access
  `conditions.users.excludeGroups`) -> `group:<name>`.
Both work on the document's JSON text (one C-speed scan per document; most documents contain no hit
and are returned as they were). Each side gets its own canonicaliser, built from its own snapshot.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..snapshots.diff import Canonicaliser, canonicalise_references
from ..snapshots.references import Reference, ReferenceIndex, RefKind

TENANT_ID_TOKEN = "{tenant_id}"
TENANT_DOMAIN_TOKEN = "{tenant_domain}"
_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_GUID_HINT = re.compile(r"-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-")  # the middle of any GUID


def object_label(policy_type: str, display_name: str | None) -> str:
    """How a referenced object reads once its id is replaced: the same in every tenant."""
    return f"object:{policy_type}/{(display_name or '').strip()}"


def initial_domain(tenant_key: str) -> str:
    """The tenant's `.onmicrosoft.com` domain as our tenant key names it (the emulator's convention;
    a real tenant whose key differs lists its domains in configuration)."""
    return f"{tenant_key}.onmicrosoft.com"


def identity_canonicaliser(
    tenant_id: str, domains: Iterable[str], object_labels: Mapping[str, str]
) -> Canonicaliser:
    """Replace the tenant's id, its domains and ids of objects in `object_labels` inside strings."""
    tenant_id = tenant_id.lower()
    labels = {k.lower(): v for k, v in object_labels.items()}
    names = sorted({d.strip().lower() for d in domains if d and d.strip()}, key=len, reverse=True)
    parts = [_GUID] + [re.escape(d) for d in names]
    pattern = re.compile("|".join(parts), re.IGNORECASE)

    def token(match: re.Match[str]) -> str:
        text = match.group(0).lower()
        if text == tenant_id:
            return TENANT_ID_TOKEN
        if text in labels:
            return json.dumps(labels[text])[1:-1]  # escaped for its place inside a JSON string
        if text in names:
            return TENANT_DOMAIN_TOKEN
        return match.group(0)

    def apply(document: Mapping[str, Any]) -> Mapping[str, Any]:
        text = json.dumps(document, ensure_ascii=False)
        if _GUID_HINT.search(text) is None and not (names and any(d in text.lower() for d in names)):
            return document  # the common case, decided by a cheap scan
        replaced = pattern.sub(token, text)
        return document if replaced == text else json.loads(replaced)

    return apply


def group_labels(references: Iterable[Reference]) -> dict[str, str]:
    """Resolved group id -> `group:<name>`, for group ids outside assignment records (a dangling id
    stays as it is: another tenant's id never equals it, so it never matches by accident)."""
    return {r.ref_id: f"group:{r.name}" for r in references
            if r.kind is RefKind.GROUP and r.resolved and r.name}


def side_canonicaliser(
    references: Iterable[Reference], tenant_id: str, domains: Iterable[str],
    object_labels: Mapping[str, str],
) -> Canonicaliser:
    """References by name first (they remove group / filter ids), then the tenant's identity."""
    refs = list(references)
    by_name = canonicalise_references(ReferenceIndex(refs))
    identity = identity_canonicaliser(tenant_id, domains, {**group_labels(refs), **object_labels})
    return lambda document: identity(by_name(document))
