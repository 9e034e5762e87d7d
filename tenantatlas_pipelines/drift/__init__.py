"""Drift (issue 13, DESIGN §7): property-level drift of a (tenant, selection) between a baseline
snapshot and the current one, read-only, quiet when nothing changed.

- `derive`: the pure derivation (pairs of versions -> items) over the snapshots package's one `diff`;
- `present`: secrets masked and compared only via HMAC, assignments named by resolved name;
- `accept`: what an accepted deviation covers and when it still applies;
- `compute`: which two snapshots, read them, derive (the CLI, the asset and the benchmark share it);
- `baselines`, `deviations`: pin/clear a baseline, accept/revoke a deviation;
- `publish`: the `policy_drift` asset's plain-Python half; `demo`: the demo's drift round.
Storage: store/drift_baselines.py, store/drift_acceptances.py, store/drift_items.py (sql/080, 081).
"""

from .compute import compute_drift
from .model import DriftChange, DriftCounts, DriftItem, DriftReport

__all__ = ["DriftChange", "DriftCounts", "DriftItem", "DriftReport", "compute_drift"]
