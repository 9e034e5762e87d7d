"""Which target a person means by `--group / --filter / --scope-tag ID_OR_NAME`. Pure.

An exact id wins; otherwise the name is matched case-insensitively and trimmed (how people type group
names). A name that two different targets carry is refused with both ids listed: guessing would answer
"what uses this group" about the wrong group, which is worse than no answer.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import ErrorCode, TenantAtlasError


def _fold(name: str | None) -> str:
    return (name or "").strip().casefold()


def pick_target(kind: str, value: str, candidates: Iterable[tuple[str, str | None]]) -> str | None:
    """The target id `value` names among (id, name) candidates; None when nothing matches.

    AMBIGUOUS_TARGET_NAME when `value` is no id and two targets carry that name."""
    by_id: dict[str, set[str]] = {}
    for target_id, name in candidates:
        by_id.setdefault(target_id, set()).add(_fold(name))
    if value in by_id:
        return value
    wanted = _fold(value)
    matches = sorted(i for i, names in by_id.items() if wanted and wanted in names)
    if len(matches) > 1:
        raise TenantAtlasError(
            ErrorCode.AMBIGUOUS_TARGET_NAME,
            f"{len(matches)} different {kind}s are named {value.strip()[:200]!r}: "
            f"{', '.join(matches)}; pass the id instead",
        )
    return matches[0] if matches else None
