"""The promotion plan: what making the target match the source would take. Nothing is written to Graph.

- `only_in_source` -> `create`; `different` -> `update` with the changes (source value wins);
- either is `blocked` when one of the source object's references does not resolve *by name* in the
  target — a group, assignment filter or scope tag the target does not know, an object it references
  by id (an app) the target lacks, or a reference already dangling in the source — with those
  references in `blocked_by`;
- `identical` and `only_in_target` need nothing (promotion never deletes); `ambiguous` keys are not
  planned: the duplicate names must be resolved first (they are listed in the compare's items).

What the target "knows" is what its snapshot recorded: the groups, filters and scope tags its policies
use (snapshot references) and the filter and scope-tag objects it holds when the selection includes
those types. A group that exists in the target but that no policy uses is not in its snapshot, so a
plan blocks on it — conservatively, and it says which group.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..snapshots.references import RefKind, references_in
from .canonical import parse_object_label
from .engine import CompareResult, Side, SideObject, match_key
from .model import Action, BlockingReference, Match, PlanStep

# Policy types whose objects *are* the referenced kind (their names resolve a reference of that kind).
_KIND_TYPES = {RefKind.ASSIGNMENT_FILTER: "assignmentFilter", RefKind.SCOPE_TAG: "roleScopeTag"}
DEFAULT_SCOPE_TAG_ID = "0"


def _known_names(side: Side) -> dict[RefKind, set[str]]:
    names: dict[RefKind, set[str]] = {k: set() for k in RefKind}
    for ref in side.references:
        if ref.resolved and ref.name:
            names[ref.kind].add(ref.name.strip().casefold())
    for kind, policy_type in _KIND_TYPES.items():
        names[kind].update((o.display_name or "").strip().casefold()
                           for o in side.objects if o.policy_type == policy_type)
    return names


def _object_labels(value: Any) -> set[tuple[str, str]]:
    """(policy type, name) of every object a document references by id (rewritten as a label)."""
    if isinstance(value, str):
        found = parse_object_label(value)
        return {found} if found else set()
    if isinstance(value, Mapping):
        return set().union(*(_object_labels(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_object_labels(v) for v in value)) if value else set()
    return set()


def _blocking(obj: SideObject, source: Side, known: dict[RefKind, set[str]],
              target_keys: set[tuple[str, str]], source_ids: dict[tuple[str, str], str]
              ) -> list[BlockingReference]:
    by_key = {(r.kind, r.ref_id): r for r in source.references}
    out: list[BlockingReference] = []
    for kind, ref_id in sorted(references_in(obj.content)):
        if kind is RefKind.SCOPE_TAG and ref_id == DEFAULT_SCOPE_TAG_ID:
            continue  # the built-in Default exists in every tenant
        ref = by_key.get((kind, ref_id))
        name = ref.name if ref is not None and ref.resolved else None
        if name is None or name.strip().casefold() not in known[kind]:
            out.append(BlockingReference(str(kind), name, ref_id))
    for policy_type, name in sorted(_object_labels(obj.content)):
        if match_key(policy_type, name) not in target_keys:
            out.append(BlockingReference(policy_type, name, source_ids.get((policy_type, name))))
    return out


def promotion_plan(result: CompareResult) -> list[PlanStep]:
    """One step per object the target would need created or updated, in the compare's order."""
    source, target = result.source, result.target
    known = _known_names(target)
    target_keys = {match_key(o.policy_type, o.display_name) for o in target.objects}
    source_objects = {o.external_id: o for o in source.objects}
    source_ids = {(o.policy_type, (o.display_name or "").strip()): o.external_id for o in source.objects}
    steps: list[PlanStep] = []
    for item in result.items:
        if item.match is Match.ONLY_IN_SOURCE:
            intended = Action.CREATE
        elif item.match is Match.DIFFERENT:
            intended = Action.UPDATE
        else:
            continue
        obj = source_objects[item.source_external_id or ""]
        blocked = _blocking(obj, source, known, target_keys, source_ids)
        steps.append(PlanStep(
            Action.BLOCKED if blocked else intended, item.policy_type, item.display_name,
            item.source_external_id, item.target_external_id, item.changes, tuple(blocked),
            intended if blocked else None,
        ))
    return steps
