"""Fleet alignment: how far one tenant matches the golden tenant (the MSP's "standards" view).

The golden tenant is the compare's source, the tenant its target. The score is the share of the golden
tenant's objects that are present in the tenant and identical: an object of an ambiguous key counts in
the denominator and never as identical (ambiguity is not guessed away). Deviations are every key that
is not identical, with its changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from .engine import CompareResult
from .model import CompareItem, Match

# Match kinds as the alignment names them (the golden tenant is the source).
KIND_COLUMNS = {
    Match.IDENTICAL: "identical",
    Match.DIFFERENT: "different",
    Match.ONLY_IN_SOURCE: "only_in_golden",
    Match.ONLY_IN_TARGET: "only_in_tenant",
    Match.AMBIGUOUS: "ambiguous",
}


@dataclass(frozen=True)
class Alignment:
    golden_objects: int
    counts: dict[str, int]  # KIND_COLUMNS values -> number of keys
    deviations: tuple[CompareItem, ...]

    @property
    def score(self) -> float:
        """Identical golden objects / golden objects (1.0 for an empty golden tenant: nothing to miss)."""
        if self.golden_objects == 0:
            return 1.0
        return self.counts["identical"] / self.golden_objects


def alignment_of(result: CompareResult) -> Alignment:
    counts = {column: 0 for column in KIND_COLUMNS.values()}
    for item in result.items:
        counts[KIND_COLUMNS[item.match]] += 1
    deviations = tuple(i for i in result.items if i.match is not Match.IDENTICAL)
    return Alignment(len(result.source.objects), counts, deviations)


def alignment_metadata(alignment: Alignment, *, golden_tenant: str, snapshot_id: int | None,
                       golden_snapshot_id: int | None, top: int = 20) -> dict[str, object]:
    """Plain metadata of a `fleet_alignment` materialization: the score and counts as numbers (plotted
    over time by the Dagster UI), the first `top` deviations as a Markdown table."""
    meta: dict[str, object] = {"alignment_score": round(alignment.score, 4),
                               "golden_objects": alignment.golden_objects}
    meta.update({k: int(v) for k, v in alignment.counts.items()})
    meta["golden_tenant"] = golden_tenant
    meta["snapshot_id"] = int(snapshot_id or 0)
    meta["golden_snapshot_id"] = int(golden_snapshot_id or 0)
    lines = ["| policy type | name | deviation | changes |", "| --- | --- | --- | --- |"]
    for item in alignment.deviations[:top]:
        name = item.display_name.replace("|", "\\|")
        lines.append(f"| {item.policy_type} | {name} | {KIND_COLUMNS[item.match]} | {len(item.changes)} |")
    if len(alignment.deviations) > top:
        lines.append(f"| … | {len(alignment.deviations) - top} more | | |")
    meta["deviations"] = "\n".join(lines) if alignment.deviations else "none"
    return meta
