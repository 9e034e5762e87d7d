"""Settings-catalog content: the `settings` of a configurationPolicy, as settingInstance trees.

Graph serves them at ``configurationPolicies/{id}/settings`` (paged) or inline with ``$expand=settings``.
Each entry is ``{"id": "<n>", "settingInstance": {...}}``; the instance is keyed by ``settingDefinitionId``
and nests choice, simple, simple-collection and group-collection values (children inside choices and
groups). Settings are tenant-independent content: a pure function of ``(seed, index)``. The definitions
come from one deterministic pool, so the same definition id means the same setting in every policy.
"""

from __future__ import annotations

import json
import random
from functools import lru_cache
from typing import Any

from .payloads import SECRET_PREFIX, Index, _guid, content_digest, setting_count

Setting = dict[str, Any]
_NS = "#microsoft.graph.deviceManagementConfiguration"

_AREAS = ("defender", "browser", "bitlocker", "update", "firewall", "devicelock", "experience", "privacy",
          "start", "localpoliciessecurityoptions", "windowslogon", "power", "search", "smartscreen")
_WORDS = ("allow", "block", "enable", "disable", "require", "configure", "scan", "archive", "cloud",
          "network", "protection", "timeout", "level", "interval", "minimum", "maximum", "password",
          "history", "prompt", "telemetry", "encryption", "recovery", "startup", "sleep", "hibernate")
_KINDS = ("choice", "choice", "choice", "integer", "string", "collection", "group", "choice_children")


@lru_cache(maxsize=1)
def definitions() -> tuple[tuple[str, str], ...]:
    """The pool of (settingDefinitionId, kind): ~420 distinct definitions, the same in every process."""
    r = random.Random("settings-catalog-definitions")
    seen: dict[str, str] = {}
    while len(seen) < 420:
        area = r.choice(_AREAS)
        words = "".join(r.sample(_WORDS, 3))
        prefix = "device_vendor_msft_policy_config" if r.random() < 0.8 else "user_vendor_msft_policy_config"
        seen.setdefault(f"{prefix}_{area}_{words}", r.choice(_KINDS))
    return tuple(seen.items())


def _simple(definition_id: str, value: Any) -> Setting:
    kind = "Integer" if isinstance(value, int) else "String"
    return {"@odata.type": f"{_NS}SimpleSettingInstance", "settingDefinitionId": definition_id,
            "settingInstanceTemplateReference": None,
            "simpleSettingValue": {"@odata.type": f"{_NS}{kind}SettingValue",
                                   "settingValueTemplateReference": None, "value": value}}


def _choice(definition_id: str, option: int, children: list[Setting] | None = None) -> Setting:
    return {"@odata.type": f"{_NS}ChoiceSettingInstance", "settingDefinitionId": definition_id,
            "settingInstanceTemplateReference": None,
            "choiceSettingValue": {"settingValueTemplateReference": None,
                                   "value": f"{definition_id}_{option}", "children": children or []}}


def _instance(r: random.Random, definition_id: str, kind: str) -> Setting:
    if kind == "integer":
        return _simple(definition_id, r.randrange(0, 10_000))
    if kind == "string":
        return _simple(definition_id, r.choice(("https://intranet.example.com", "C:\\Temp", "Contoso IT",
                                                "*.example.com", "Block", "%ProgramData%\\Logs")))
    if kind == "collection":  # a set of strings: Graph returns it in any order
        values = r.sample(("tmp", "log", "bak", "iso", "vhdx", "pst", "ost", "cab", "msi"), r.randint(2, 5))
        return {"@odata.type": f"{_NS}SimpleSettingCollectionInstance", "settingDefinitionId": definition_id,
                "settingInstanceTemplateReference": None,
                "simpleSettingCollectionValue": [
                    {"@odata.type": f"{_NS}StringSettingValue", "settingValueTemplateReference": None,
                     "value": v} for v in values]}
    if kind == "group":  # 1-3 instances of a group of 2-4 children
        names = r.sample(("name", "path", "port", "enabled", "mode", "url"), r.randint(2, 4))
        instances = []
        for _ in range(r.randint(1, 3)):
            children = [_choice(f"{definition_id}_{n}", r.randrange(2)) if n in ("enabled", "mode")
                        else _simple(f"{definition_id}_{n}", r.randrange(1, 65535) if n == "port"
                                     else f"{n}-{r.randrange(100)}") for n in names]
            instances.append({"settingValueTemplateReference": None, "children": children})
        return {"@odata.type": f"{_NS}GroupSettingCollectionInstance", "settingDefinitionId": definition_id,
                "settingInstanceTemplateReference": None, "groupSettingCollectionValue": instances}
    if kind == "choice_children":
        children = [_simple(f"{definition_id}_level", r.randrange(1, 6)),
                    _choice(f"{definition_id}_mode", r.randrange(3))]
        return _choice(definition_id, 1, children)
    return _choice(definition_id, r.randrange(3))


def _secret(definition_id: str, value: str) -> Setting:
    """A secret setting: stored here in plain text, served as an encrypted value token (see present.py)."""
    return {"@odata.type": f"{_NS}SimpleSettingInstance", "settingDefinitionId": definition_id,
            "settingInstanceTemplateReference": None,
            "simpleSettingValue": {"@odata.type": f"{_NS}SecretSettingValue",
                                   "settingValueTemplateReference": None, "value": value,
                                   "valueState": "notEncrypted"}}


#: Value variants pre-built per definition: a policy picks one per setting (see `generate_settings`).
VARIANTS = 6


@lru_cache(maxsize=1)
def _templates() -> tuple[tuple[str, ...], ...]:
    """Per definition, `VARIANTS` setting instances as JSON text (built once per process, ~0.2 s).

    Generating trees setting by setting costs ~90 µs each in Python; gluing pre-serialised variants
    and parsing the result once is ~20x cheaper, which keeps a 2,000-policy ``$expand=settings``
    listing from being emulator-bound.
    """
    out = []
    for definition_id, kind in definitions():
        out.append(tuple(json.dumps(_instance(random.Random(f"{definition_id}|{v}"), definition_id, kind),
                                    ensure_ascii=False, separators=(",", ":"))
                         for v in range(VARIANTS)))
    return tuple(out)


def generate_settings(seed: int, index: Index) -> list[Setting]:
    """The settings of settings-catalog policy `index`: `setting_count` distinct top-level definitions,
    each with one of its value variants. A fresh structure every call (callers may change it)."""
    r = random.Random(content_digest(seed, "settingsCatalogPolicy", index, "settings-tree"))
    templates = _templates()
    picked = r.sample(range(len(templates)), setting_count(seed, index))
    parts = [f'{{"id":"{n}","settingInstance":{templates[k][r.randrange(VARIANTS)]}}}'
             for n, k in enumerate(picked)]
    out: list[Setting] = json.loads("[" + ",".join(parts) + "]")
    if r.random() < 0.1:  # a few policies carry a secret (e.g. a BitLocker recovery password setting)
        out.append({"id": str(len(out)), "settingInstance": _secret(
            "device_vendor_msft_policy_config_emulator_wifisharedkey",
            f"{SECRET_PREFIX}SC-{r.getrandbits(48):012x}")})
    return out


_INTENT_SETTINGS = (
    ("firewallBlockStatefulFTP", "boolean"),
    ("firewallIdleTimeoutForSecurityAssociationInSeconds", "integer"),
    ("defenderScanMaxCpu", "integer"), ("defenderCloudBlockLevel", "string"),
    ("defenderAttackSurfaceReductionExcludedPaths", "collection"), ("bitLockerEncryptDevice", "boolean"),
    ("bitLockerRecoveryPasswordRotation", "string"), ("smartScreenEnableInShell", "boolean"),
    ("firewallProfileDomain", "complex"), ("localSecurityOptionsMinimumPasswordLength", "integer"),
    ("defenderPotentiallyUnwantedAppAction", "string"), ("applicationGuardEnabled", "boolean"),
    ("deviceGuardEnableVirtualizationBasedSecurity", "boolean"),
    ("defenderExclusionsExtensions", "collection"),
)
_INTENT_TYPES = {"boolean": "Boolean", "integer": "Integer", "string": "String", "collection": "Collection",
                 "complex": "Complex"}
_INTENT_PREFIX = "deviceConfiguration--windows10EndpointProtectionConfiguration_"


def _intent_value(r: random.Random, kind: str) -> Any:
    if kind == "boolean":
        return r.random() < 0.7
    if kind == "integer":
        return r.randrange(0, 600)
    if kind == "string":
        return r.choice(("high", "block", "enabled", "auditMode"))
    if kind == "collection":
        return r.sample(("C:\\Temp", "D:\\Build", "%ProgramData%\\App", "*.iso"), 2)
    return {"firewallEnabled": "allowed", "inboundNotificationsBlocked": r.random() < 0.5}


def generate_intent_settings(seed: int, index: Index) -> list[Setting]:
    """The settings of endpoint-security intent `index` (``intents/{id}/settings``): 5-14 instances keyed
    by ``definitionId``, each with ``valueJson`` (the value as JSON text) and, for scalars, ``value``."""
    r = random.Random(content_digest(seed, "endpointSecurityIntent", index, "settings"))
    out: list[Setting] = []
    for name, kind in r.sample(_INTENT_SETTINGS, r.randint(5, len(_INTENT_SETTINGS))):
        value = _intent_value(r, kind)
        setting: Setting = {
            "@odata.type": f"#microsoft.graph.deviceManagement{_INTENT_TYPES[kind]}SettingInstance",
            "id": _guid(content_digest(seed, "intentSetting", index, name)),
            "definitionId": _INTENT_PREFIX + name, "valueJson": json.dumps(value)}
        if kind in ("boolean", "integer", "string"):
            setting["value"] = value
        out.append(setting)
    return out


def set_intent_value(settings: list[Setting], definition_id: str, value: Any) -> None:
    """Change an intent setting by ``definitionId`` (or the name after its prefix), keeping
    ``valueJson`` in step."""
    wanted = {definition_id, _INTENT_PREFIX + definition_id}
    match = next((s for s in settings if s.get("definitionId") in wanted), None)
    if match is None:
        raise KeyError(f"no intent setting {definition_id!r}")
    match["valueJson"] = json.dumps(value)
    if "value" in match:
        match["value"] = value


def find_instance(settings: list[Setting], definition_id: str) -> Setting | None:
    """The setting instance with `definition_id` anywhere in the trees (top level, choices, groups)."""
    stack: list[Any] = [s.get("settingInstance") for s in settings]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        if node.get("settingDefinitionId") == definition_id:
            return node
        choice = node.get("choiceSettingValue") or {}
        stack.extend(choice.get("children") or [])
        for group in node.get("groupSettingCollectionValue") or []:
            stack.extend(group.get("children") or [])
    return None


def set_instance_value(instance: Setting, value: Any) -> None:
    """Change a setting's value in place: a choice takes an option (an int n -> ``{id}_n``, or the full
    option id), a simple setting its value, a simple collection a list of values."""
    if "choiceSettingValue" in instance:
        definition_id = instance["settingDefinitionId"]
        option = f"{definition_id}_{value}" if isinstance(value, int) else value
        instance["choiceSettingValue"]["value"] = option
    elif "simpleSettingValue" in instance:
        instance["simpleSettingValue"]["value"] = value
    elif "simpleSettingCollectionValue" in instance:
        if not isinstance(value, list):
            raise ValueError("a simple setting collection takes a list of values")
        instance["simpleSettingCollectionValue"] = [
            {"@odata.type": f"{_NS}StringSettingValue", "settingValueTemplateReference": None, "value": v}
            for v in value]
    else:
        raise ValueError(f"setting {instance.get('settingDefinitionId')!r} is a group collection: set one of "
                         "its children instead")
