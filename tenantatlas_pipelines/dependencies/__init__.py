"""The dependency graph (DESIGN §9, issue 15): what uses which group, filter and scope tag.

- `edges`: pure derivation of a snapshot's edges (object -> group include/exclude, virtual targets,
  assignment filter with its mode, scope tag; assignment filter -> scope tag);
- `lookup`: which target an id-or-name means (ambiguity is an error, never a guess);
- `derive`: one (tenant, selection) partition: latest usable snapshot -> edges -> store, one transaction.
Storage and the indexed queries of both directions are in `store/dependency_edges.py` (sql/100, sql/101).
"""

from .edges import Edge, ObjectEdges, Relation, SnapshotEdges, TargetType, edges_of_object, edges_of_snapshot
from .lookup import pick_target

__all__ = [
    "Edge",
    "ObjectEdges",
    "Relation",
    "SnapshotEdges",
    "TargetType",
    "edges_of_object",
    "edges_of_snapshot",
    "pick_target",
]
