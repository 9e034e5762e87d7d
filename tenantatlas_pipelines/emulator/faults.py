"""Scriptable faults: the field failures of Graph and Entra, on demand and deterministic.

A fault matches requests by endpoint kind, tenant and policy type. ``ratio`` is applied by counting, not
by chance — ratio 0.5 hits every 2nd matching request, 0.25 every 4th — so a test that injects a fault
gets the same sequence of answers on every run. ``count`` caps how many requests a fault hits in total.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from ..policy_types import REGISTRY


class FaultKind(StrEnum):
    """Every fault the emulator can play. Values are what the admin API and docs use."""

    # Graph collection answers replaced by an error
    FORBIDDEN = "forbidden"            # 403 Forbidden, missing-scope message
    STATUS = "status"                  # any status code (500, 503, 504, 404, 400 ...), optional Retry-After
    THROTTLE = "throttle"              # 429 TooManyRequests, Retry-After seconds / HTTP date / omitted
    # Graph collection pages that are broken
    TRUNCATED_PAGE = "truncated_page"  # 200, body cut in the middle of the JSON
    MALFORMED_PAGE = "malformed_page"  # 200, valid JSON but `value` is not a list
    NON_OBJECT_ITEM = "non_object_item"  # a string and a number inserted into `value`
    ITEM_WITHOUT_ID = "item_without_id"  # the first item of the page has no `id`
    NEXTLINK_LOOP = "nextlink_loop"    # nextLink points at the same page forever (Autopilot bug)
    DROP_ONE = "drop_one"              # the listing omits one live object (the first, or `external_id`)
    EMPTY_PAGES = "empty_pages"        # an empty page with a nextLink between real pages
    # Entra
    TOKEN_DOWN = "token_down"          # token endpoint 503 (or connection reset with reset=True)
    # any endpoint
    LATENCY = "latency"                # sleep latency_ms before answering


#: Faults that replace a Graph answer with an error (the first matching one wins).
GRAPH_ERROR_KINDS = frozenset({FaultKind.FORBIDDEN, FaultKind.STATUS, FaultKind.THROTTLE})
#: Faults that damage a page that would otherwise be served (each matching one applies).
PAGE_KINDS = frozenset({FaultKind.TRUNCATED_PAGE, FaultKind.MALFORMED_PAGE, FaultKind.NON_OBJECT_ITEM,
                        FaultKind.ITEM_WITHOUT_ID, FaultKind.NEXTLINK_LOOP, FaultKind.DROP_ONE,
                        FaultKind.EMPTY_PAGES})


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour.

    ``tenant_id``/``policy_type`` None means "any". ``retry_after`` is sent verbatim as the Retry-After
    header ("0.2", "3", an HTTP date) except the form ``"date+N"``, which becomes an HTTP date N seconds
    from the moment of the answer; None omits the header. ``status`` is required for kind "status"
    (token_down defaults to 503). ``reset=True`` on token_down or status drops the TCP connection instead
    of answering. ``external_id`` picks the object drop_one hides.
    """

    kind: FaultKind | str
    tenant_id: str | None = None
    policy_type: str | None = None
    ratio: float = 1.0
    count: int | None = None
    retry_after: str | None = None
    status: int | None = None
    latency_ms: float = 0.0
    reset: bool = False
    external_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FaultKind(self.kind))
        if not 0.0 < self.ratio <= 1.0:
            raise ValueError("ratio must be in (0, 1]")
        if self.count is not None and self.count < 0:
            raise ValueError("count must be >= 0")
        if self.kind == FaultKind.STATUS and self.status is None and not self.reset:
            raise ValueError("a 'status' fault needs status=<code> (or reset=True)")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError("status must be an HTTP status code")
        if self.kind == FaultKind.LATENCY and self.latency_ms <= 0:
            raise ValueError("a 'latency' fault needs latency_ms > 0")
        if self.policy_type is not None and self.policy_type not in REGISTRY and self.policy_type != "group":
            raise ValueError(f"unknown policy type {self.policy_type!r}")
        if self.retry_after is not None and self.retry_after.startswith("date+"):
            float(self.retry_after[5:])  # ValueError now rather than a broken answer later

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = str(self.kind)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**dict(data))


@dataclass
class _Armed:
    fault: Fault
    matched: int = 0
    applied: int = 0
    # Per-fault scratch used by stateful faults (e.g. which object drop_one hides).
    memo: dict[str, Any] = field(default_factory=dict)

    def hit(self) -> bool:
        """Count one matching request; True when the fault applies to it (deterministic)."""
        if self.fault.count is not None and self.applied >= self.fault.count:
            return False
        before = self.matched
        self.matched += 1
        if math.floor(self.matched * self.fault.ratio + 1e-9) > math.floor(before * self.fault.ratio + 1e-9):
            self.applied += 1
            return True
        return False


class FaultBook:
    """The active faults, in injection order, with their counters. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[_Armed] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._armed.append(_Armed(fault))

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{**a.fault.to_json(), "matched": a.matched, "applied": a.applied} for a in self._armed]

    def _matching(self, kinds: Iterable[FaultKind], tenant_id: str | None,
                  policy_type: str | None) -> list[_Armed]:
        kinds = frozenset(kinds)
        return [a for a in self._armed
                if a.fault.kind in kinds
                and (a.fault.tenant_id is None or a.fault.tenant_id == tenant_id)
                and (a.fault.policy_type is None or a.fault.policy_type == policy_type)]

    def first(self, kinds: Iterable[FaultKind], tenant_id: str | None,
              policy_type: str | None) -> Fault | None:
        """The first matching fault that applies to this request; later faults are not counted."""
        with self._lock:
            for armed in self._matching(kinds, tenant_id, policy_type):
                if armed.hit():
                    return armed.fault
        return None

    def all(self, kinds: Iterable[FaultKind], tenant_id: str | None,
            policy_type: str | None) -> list[tuple[Fault, dict[str, Any]]]:
        """Every matching fault that applies to this request, with its scratch dict."""
        with self._lock:
            return [(a.fault, a.memo) for a in self._matching(kinds, tenant_id, policy_type) if a.hit()]

    def latency_ms(self, tenant_id: str | None, policy_type: str | None) -> float:
        return sum(f.latency_ms for f, _ in self.all({FaultKind.LATENCY}, tenant_id, policy_type))
