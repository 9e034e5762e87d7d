"""Onboarding at MSP scale: many tenants into the registry at once, from a CSV file or from GDAP.

Two sources, one promise: everything is validated and planned before anything is written, a plan is
applied in one transaction, and a tenant already registered is never deleted or disabled implicitly.

- `csv_import`: `tenant_id,key,name[,enabled]` files -> parse (line-numbered problems) -> plan against the
  registry (added / updated / unchanged / not_in_file) -> apply.
- `gdap`: the partner tenant's delegated-admin customers (Microsoft Graph) -> derived, stable keys ->
  plan (new / registered / not_discovered) -> register the new ones.

Plain functions without Dagster; the CLI (cli_onboarding.py) and the discovery sensor (defs/sensors.py)
are thin wrappers. See docs/onboarding.md.
"""

from .csv_import import (
    CsvRow,
    ImportPlan,
    ImportResult,
    ParsedFile,
    PlannedTenant,
    Problem,
    import_tenants,
    parse_csv,
    plan_import,
)
from .gdap import (
    CUSTOMERS_PATH,
    REQUIRED_PERMISSION,
    Customer,
    DiscoveredTenant,
    DiscoveryPlan,
    DiscoveryResult,
    assign_keys,
    derive_key,
    discover_tenants,
    plan_discovery,
    read_customers,
)

__all__ = [
    "CUSTOMERS_PATH",
    "REQUIRED_PERMISSION",
    "CsvRow",
    "Customer",
    "DiscoveredTenant",
    "DiscoveryPlan",
    "DiscoveryResult",
    "ImportPlan",
    "ImportResult",
    "ParsedFile",
    "PlannedTenant",
    "Problem",
    "assign_keys",
    "derive_key",
    "discover_tenants",
    "import_tenants",
    "parse_csv",
    "plan_discovery",
    "plan_import",
    "read_customers",
]
