"""Cross-tenant compare, promotion plan and fleet alignment (docs/compare.md), read-only.

- `engine`: match by (policy type, display name), diff pairs with the snapshots package's one diff
  after each side's canonicaliser (`canonical`) replaced tenant-specific ids by names;
- `plan`: create / update / blocked, never a write to Graph;
- `alignment`: a tenant's score against the golden tenant;
- `run`: loading sides from the store; `demo`: an emulator scenario that makes a compare interesting.
"""

from .alignment import Alignment, alignment_of
from .engine import CompareResult, Side, SideObject, compare_sides, match_key
from .model import Action, BlockingReference, CompareItem, Match, PlanStep
from .plan import promotion_plan

__all__ = [
    "Action",
    "Alignment",
    "BlockingReference",
    "CompareItem",
    "CompareResult",
    "Match",
    "PlanStep",
    "Side",
    "SideObject",
    "alignment_of",
    "compare_sides",
    "match_key",
    "promotion_plan",
]
