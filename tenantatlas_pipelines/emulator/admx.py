"""Administrative templates: the content of a groupPolicyConfiguration.

Graph keeps it below the object: ``groupPolicyConfigurations/{id}/definitionValues?$expand=definition``
(which ADMX settings are enabled or disabled), then per value
``.../definitionValues/{valueId}/presentationValues?$expand=presentation`` (the text boxes, numbers,
check boxes and lists of that setting). Stored here as one list of definition values, each carrying its
``definition`` and ``presentationValues`` (each with its ``presentation``); the endpoints in content.py
serve the two levels. Definitions are Microsoft's, so their ids are the same in every tenant; the ids
of definition and presentation *values* are the tenant's.
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Any

from .payloads import Index, _guid, _iso, _ts, content_digest, object_digest

_NS = "#microsoft.graph.groupPolicyPresentation"
_CATEGORIES = ("\\Microsoft Edge\\Startup", "\\OneDrive", "\\Windows Components\\BitLocker Drive Encryption",
               "\\Microsoft Office 2016\\Security Settings", "\\Windows Components\\Windows Update",
               "\\System\\Logon", "\\Google\\Google Chrome\\Extensions")
_SETTINGS = ("Configure the home page URL", "Silently move Windows known folders to OneDrive",
             "Require additional authentication at startup", "Disable VBA for Office applications",
             "Configure Automatic Updates", "Turn off picture password sign-in",
             "Configure the list of force-installed apps", "Prevent users from uploading files",
             "Set the default download directory", "Block third party cookies")
_PRESENTATION_KINDS = ("Text", "Decimal", "CheckBox", "List", "MultiText", "DropdownList")


@lru_cache(maxsize=1)
def definitions() -> tuple[dict[str, Any], ...]:
    """The ADMX definitions values refer to (~60), with their presentations; the same in every process."""
    r = random.Random("admx-definitions")
    out = []
    for k in range(60):
        name = f"{_SETTINGS[k % len(_SETTINGS)]}{'' if k < len(_SETTINGS) else f' ({k // len(_SETTINGS)})'}"
        def_id = _guid(r.randbytes(16))
        presentations = [{"@odata.type": f"{_NS}{kind}", "id": _guid(r.randbytes(16)),
                          "label": f"{kind} option {n}", "required": r.random() < 0.3}
                         for n, kind in enumerate(r.sample(_PRESENTATION_KINDS, r.randint(0, 3)))]
        out.append({"id": def_id, "displayName": name, "classType": r.choice(("machine", "user")),
                    "categoryPath": r.choice(_CATEGORIES), "policyType": "admxBacked",
                    "supportedOn": "At least Windows 10", "explainText": f"This policy setting: {name}.",
                    "hasRelatedDefinitions": False, "version": "1.0", "presentations": presentations})
    return tuple(out)


def _presentation_value(r: random.Random, kind: str) -> dict[str, Any]:
    value_type = {"Text": "Text", "Decimal": "Decimal", "CheckBox": "Boolean", "List": "List",
                  "MultiText": "MultiText", "DropdownList": "Text"}[kind]
    out: dict[str, Any] = {"@odata.type": f"#microsoft.graph.groupPolicyPresentationValue{value_type}"}
    if value_type == "Text":
        out["value"] = r.choice(("https://intranet.example.com", "%USERPROFILE%\\Downloads", "Contoso"))
    elif value_type == "Decimal":
        out["value"] = r.randrange(0, 100)
    elif value_type == "Boolean":
        out["value"] = r.random() < 0.5
    elif value_type == "List":  # name/value pairs: a set, any order
        out["values"] = [{"name": f"ext{n}", "value": f"id{r.randrange(1000)};https://clients.example.com"}
                         for n in range(r.randint(1, 3))]
    else:
        out["values"] = r.sample(("contoso.com", "fabrikam.com", "example.org", "intranet"), 2)
    return out


def generate_definition_values(seed: int, tenant_id: str, index: Index) -> list[dict[str, Any]]:
    """The definition values of administrative-template policy `index` (2-8), in stored form."""
    r = random.Random(content_digest(seed, "groupPolicyConfiguration", index, "definitionValues"))
    pool = definitions()
    out = []
    for n, k in enumerate(r.sample(range(len(pool)), r.randint(2, 8))):
        definition = {key: value for key, value in pool[k].items() if key != "presentations"}
        created = _ts(r)
        values = []
        for m, presentation in enumerate(pool[k]["presentations"]):
            value = _presentation_value(r, presentation["@odata.type"].removeprefix(_NS))
            value_id = _guid(object_digest(seed, tenant_id, "groupPolicyPresentationValue",
                                           f"{index}/{n}/{m}"))
            value.update(id=value_id,
                         createdDateTime=_iso(created), lastModifiedDateTime=_iso(created),
                         presentation=dict(presentation))
            values.append(value)
        out.append({"id": _guid(object_digest(seed, tenant_id, "groupPolicyDefinitionValue", f"{index}/{n}")),
                    "enabled": r.random() < 0.85, "configurationType": "policy",
                    "createdDateTime": _iso(created), "lastModifiedDateTime": _iso(created),
                    "definition": definition, "presentationValues": values})
    return out
