"""The normal form of policy content: what makes two reads of an unchanged object identical.

Pure functions, no I/O (DESIGN §6). The rules, applied at every depth:
- volatile keys are dropped (`rules.VOLATILE_KEYS`, every `@odata.*` key but `@odata.type`, property
  annotations such as `assignments@odata.context`, sync timestamps, and what `rules.RULES` adds per type);
- `null`, absent, `""`, `[]` and `{}` are the same thing: dropped;
- arrays are sets (empty elements dropped, duplicates removed, sorted by canonical JSON) unless the
  type's rules mark the array's path as ordered;
- integral floats become integers (`1.0` and `1` are the same value);
- secret values become markers (secrets.py), so nothing secret is hashed or stored;
- a settings-catalog `settings` list is flattened to one value per `settingDefinitionId` path
  (`parent/child` for nested instances), see `flatten_settings`.
Keys are sorted when the result is serialised (canonical.py), not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..canonical import canonical_dumps, canonical_sha256
from .rules import ContentRules, is_secret_key, is_volatile, rules_for
from .secrets import SECRET_MARKER, secret_marker

_SECRET_SETTING_VALUE = "#microsoft.graph.deviceManagementConfigurationSecretSettingValue"
# Template references say which template a setting came from; they never differ between two reads
# of the same setting and only add noise to the flattened form.
_SETTING_NOISE = frozenset({"settingInstanceTemplateReference", "settingValueTemplateReference"})
_PAIR_NAME_FIELDS = ("appConfigKey", "key", "name")
_PAIR_VALUE_FIELDS = frozenset({"appConfigKeyValue", "value"})


def is_empty(value: Any) -> bool:
    """null, "", [] and {} all mean "not set"."""
    return value is None or value == "" or value == [] or value == {}


def as_set(values: list[Any]) -> list[Any]:
    """An array as a set: empties dropped, duplicates removed, sorted by canonical JSON."""
    unique = {canonical_dumps(v): v for v in values if not is_empty(v)}
    return [unique[k] for k in sorted(unique)]


def normalize_value(
    value: Any, rules: ContentRules, key: bytes | None, path: str = ""
) -> Any:
    """One value in normal form (None when it is empty); `path` is its dotted key path."""
    cls = value.__class__  # exact-type tests first: most values are plain strings, numbers and dicts,
    if cls is str:  # and an ABC isinstance (Mapping) is slowest for exactly those
        return value if value else None
    if cls is int or cls is bool or value is None:
        return value
    if cls is dict or isinstance(value, Mapping):
        return _normalize_object(value, rules, key, path)
    if isinstance(value, list | tuple):
        items = [normalize_value(v, rules, key, path) for v in value]
        if path in rules.ordered_paths:
            return items if any(not is_empty(v) for v in items) else None
        return as_set(items) or None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value == "":
        return None
    return value


def _normalize_object(
    obj: Mapping[str, Any], rules: ContentRules, key: bytes | None, path: str
) -> dict[str, Any] | None:
    # An encrypted OMA-URI setting: its value is ciphertext Graph re-encrypts on every read.
    encrypted = obj.get("isEncrypted") is True
    # A key/value pair whose key names a secret (app configuration `{"appConfigKey": "clientSecret",
    # "appConfigKeyValue": ...}`): its value is a plaintext secret.
    named_secret = any(
        isinstance(obj.get(f), str) and is_secret_key(obj[f], rules) for f in _PAIR_NAME_FIELDS
    )
    out: dict[str, Any] = {}
    for k, v in obj.items():
        k = str(k)
        if is_volatile(k, rules) or is_empty(v):
            continue
        child_path = f"{path}.{k}" if path else k
        if encrypted and k == "value":
            out[k] = SECRET_MARKER
        elif isinstance(v, str) and ((named_secret and k in _PAIR_VALUE_FIELDS) or is_secret_key(k, rules)):
            out[k] = secret_marker(v, key)
        else:
            normal = normalize_value(v, rules, key, child_path)
            if not is_empty(normal):
                out[k] = normal
    return out or None


def _setting_value(value: Any, key: bytes | None) -> Any:
    """The payload of a settings-catalog value object: its `value`, or a marker for a secret."""
    if value.__class__ is not dict and not isinstance(value, Mapping):
        return value
    if value.get("@odata.type") == _SECRET_SETTING_VALUE:
        raw = value.get("value")
        if value.get("valueState") == "notEncrypted" and isinstance(raw, str) and raw:
            return secret_marker(raw, key)
        return SECRET_MARKER if not is_empty(raw) else None
    return value.get("value")


def _flatten_instance(
    instance: Mapping[str, Any], prefix: str, out: dict[str, Any], rules: ContentRules, key: bytes | None
) -> None:
    definition = str(instance.get("settingDefinitionId") or "")
    path = f"{prefix}{definition}"
    if "choiceSettingValue" in instance:
        choice = instance.get("choiceSettingValue") or {}
        out[path] = _setting_value(choice, key)
        for child in choice.get("children") or []:
            _flatten_instance(child, f"{path}/", out, rules, key)
    elif "simpleSettingValue" in instance:
        out[path] = _setting_value(instance.get("simpleSettingValue"), key)
    elif "simpleSettingCollectionValue" in instance:
        out[path] = [_setting_value(v, key) for v in instance.get("simpleSettingCollectionValue") or []]
    elif "choiceSettingCollectionValue" in instance:
        values = []
        for choice in instance.get("choiceSettingCollectionValue") or []:
            children = flatten_instances(choice.get("children") or [], rules, key)
            value = _setting_value(choice, key)
            values.append({"value": value, "children": children} if children else value)
        out[path] = values
    elif "groupSettingValue" in instance:
        for child in (instance.get("groupSettingValue") or {}).get("children") or []:
            _flatten_instance(child, f"{path}/", out, rules, key)
    elif "groupSettingCollectionValue" in instance:
        # Each group is one record of child settings (paths relative to the group); the groups are a set.
        out[path] = [
            flatten_instances(group.get("children") or [], rules, key)
            for group in instance.get("groupSettingCollectionValue") or []
        ]
    else:
        rest = {
            k: v for k, v in instance.items()
            if k not in ("settingDefinitionId", "@odata.type") and k not in _SETTING_NOISE
        }
        out[path] = rest


def flatten_instances(
    instances: list[Any], rules: ContentRules, key: bytes | None
) -> dict[str, Any]:
    """Setting instances to {settingDefinitionId path: normal-form value}, empties dropped."""
    flat: dict[str, Any] = {}
    for instance in instances:
        is_map = instance.__class__ is dict or isinstance(instance, Mapping)
        if is_map and instance.get("settingDefinitionId"):
            _flatten_instance(instance, "", flat, rules, key)
    out: dict[str, Any] = {}
    for path, value in flat.items():
        normal = normalize_value(value, rules, key, f"settings.{path}")
        if not is_empty(normal):
            out[path] = normal
    return out


def flatten_settings(settings: list[Any], rules: ContentRules, key: bytes | None) -> dict[str, Any] | None:
    """A settings-catalog `settings` list ({settingInstance: ...} each) flattened per definition path."""
    instances = [s.get("settingInstance") for s in settings if isinstance(s, Mapping)]
    return flatten_instances([i for i in instances if isinstance(i, Mapping)], rules, key) or None


def flatten_definition_values(
    values: list[Any], rules: ContentRules, key: bytes | None
) -> dict[str, Any] | None:
    """Administrative-template values keyed by their ADMX definition id (Microsoft's, the same in every
    tenant), each with the definition's name and category, `enabled`, and its presentation values keyed
    by presentation id; the values' own ids (the tenant's) are dropped like every `id`."""
    out: dict[str, Any] = {}
    for value in values:
        if not isinstance(value, Mapping):
            continue
        definition = value.get("definition") or {}
        def_id = str(definition.get("id") or value.get("definitionId") or definition.get("displayName") or "")
        if not def_id:
            continue
        entry = {k: v for k, v in value.items() if k not in ("definition", "presentationValues")}
        entry["definition"] = {k: definition.get(k) for k in ("displayName", "classType", "categoryPath")}
        presentations = {}
        for pv in value.get("presentationValues") or []:
            if not isinstance(pv, Mapping):
                continue
            presentation = pv.get("presentation") or {}
            pid = str(presentation.get("id") or presentation.get("label") or pv.get("id") or "")
            presentations[pid] = {**{k: v for k, v in pv.items() if k != "presentation"},
                                  "label": presentation.get("label")}
        entry["presentationValues"] = presentations
        out[def_id] = entry
    normal = normalize_value(out, rules, key, "definitionValues")
    return normal or None


def _is_settings_catalog_list(value: Any) -> bool:
    return isinstance(value, list) and any(
        isinstance(s, Mapping) and isinstance(s.get("settingInstance"), Mapping) for s in value
    )


def normal_content(
    policy_type: str | None, raw: Mapping[str, Any], key: bytes | None = None
) -> dict[str, Any]:
    """An object's content in normal form, without its assignments (see version_document).

    `raw` is the object as Graph returns it, possibly with `settings` ($expand or the settings call)
    and `assignments` ($expand) inside; assignments are normalised separately because they need the
    references resolved at capture time.
    """
    rules = rules_for(policy_type)
    body = {k: v for k, v in raw.items() if k != "assignments"}
    settings = body.pop("settings", None)
    definition_values = body.pop("definitionValues", None)
    out = _normalize_object(body, rules, key, "") or {}
    if _is_settings_catalog_list(settings):
        flat = flatten_settings(settings, rules, key)
        if flat:
            out["settings"] = flat
    elif not is_empty(settings):
        normal = normalize_value(settings, rules, key, "settings")
        if not is_empty(normal):
            out["settings"] = normal
    if isinstance(definition_values, list):
        flat = flatten_definition_values(definition_values, rules, key)
        if flat:
            out["definitionValues"] = flat
    return out


def version_document(content: Mapping[str, Any], assignments: list[dict[str, Any]]) -> dict[str, Any]:
    """What a version stores and hashes: the normal content plus `assignments` (omitted when none)."""
    doc = dict(content)
    doc.pop("assignments", None)
    if assignments:
        doc["assignments"] = as_set(list(assignments))
    return doc


def content_hash(document: Mapping[str, Any]) -> str:
    """sha256 of the document's canonical JSON: the same canonicalisation as the selection hash."""
    return canonical_sha256(document)
