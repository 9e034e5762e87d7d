"""A local Microsoft Graph + Entra ID emulator: the edge we do not own, reproduced for tests and demos.

See docs/emulator.md. Typical use::

    with Emulator(tenants=DEMO_TENANTS) as emu:
        emu.inject(Fault("throttle", policy_type="mobileApp", ratio=0.5, retry_after="0.2"))
        ...  # run the production client against emu.base_url, trusting emu.ca_path
"""

from .client import EmulatorClient, read_state_file
from .core import RequestRecord
from .data import (
    CONTOSO,
    DEFAULT_SIZES,
    DEMO_TENANTS,
    FABRIKAM,
    NORTHWIND,
    TAILSPIN,
    WOODGROVE,
    TenantSpec,
    refs_of,
    scaled_sizes,
    small_tenants,
)
from .faults import Fault, FaultKind
from .payloads import (
    SECRET_PREFIX,
    Refs,
    generate,
    group_id,
    object_id,
    scope_tag_id,
)
from .server import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, STATE_FILE, Emulator, serve

__all__ = [
    "CONTOSO",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_SIZES",
    "DEMO_TENANTS",
    "FABRIKAM",
    "NORTHWIND",
    "SECRET_PREFIX",
    "STATE_FILE",
    "TAILSPIN",
    "WOODGROVE",
    "Emulator",
    "EmulatorClient",
    "Fault",
    "FaultKind",
    "Refs",
    "RequestRecord",
    "TenantSpec",
    "generate",
    "group_id",
    "object_id",
    "read_state_file",
    "refs_of",
    "scaled_sizes",
    "scope_tag_id",
    "serve",
    "small_tenants",
]
