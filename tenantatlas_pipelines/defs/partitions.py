"""The partition space of the inventory assets: tenant (dynamic) x selection (static).

Why this shape: a partition is exactly one (tenant, selection) pair, i.e. one sync run of the engine, so
Dagster's per-partition run tags (`dagster/partition/tenant`) can carry the per-tenant run-queue limit.
Tenants come and go at run time (the registry sensor mirrors them); the named selections are fixed at
definition-load time (read from the store when it is reachable, else the seeded defaults), because a
MultiPartitionsDefinition allows at most one dynamic dimension and a code-location reload is an acceptable
price for a new named selection.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from dagster import (
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    PreviewWarning,
    StaticPartitionsDefinition,
)

from .instance import TENANT_PARTITION_TAG

log = logging.getLogger(__name__)

__all__ = ["TENANT_PARTITION_TAG", "PartitionRef", "partition_ref", "sync_partitions", "tenant_partitions"]

TENANT_DIMENSION = "tenant"
SELECTION_DIMENSION = "selection"
TENANT_PARTITIONS_NAME = "tenant"

# The selections the integrator's seed migration creates; the fallback when the store is not reachable.
SEEDED_SELECTIONS: tuple[str, ...] = ("all", "compliance", "configuration", "apps", "security")

# Set to "0" to never touch the store at definition load (e.g. a code server that starts before the DB).
READ_SELECTIONS_ENV = "TENANTATLAS_DAGSTER_READ_SELECTIONS"

_VALID_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

tenant_partitions = DynamicPartitionsDefinition(name=TENANT_PARTITIONS_NAME)

# Partitioned asset checks are "preview" in Dagster 1.13; every check here is partitioned like its asset
# on purpose (per-partition check status in the UI) and the Dagster version is pinned, so the warning
# would only be noise in every process that loads the definitions.
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=PreviewWarning
)


class PartitionRef(NamedTuple):
    """One (tenant key, selection name) pair: the plain-Python face of a multi-partition key."""

    tenant: str
    selection: str

    @property
    def key(self) -> MultiPartitionKey:
        return MultiPartitionKey({TENANT_DIMENSION: self.tenant, SELECTION_DIMENSION: self.selection})

    def __str__(self) -> str:  # the same string Dagster shows ("selection|tenant", dimensions sorted)
        return str(self.key)


def partition_ref(partition_key: str | MultiPartitionKey) -> PartitionRef:
    """(tenant, selection) of a partition key, whether given as MultiPartitionKey or its string form."""
    if isinstance(partition_key, MultiPartitionKey):
        dims = partition_key.keys_by_dimension
        return PartitionRef(dims[TENANT_DIMENSION], dims[SELECTION_DIMENSION])
    # Dimensions are sorted by name: "selection|tenant".
    selection, sep, tenant = str(partition_key).partition("|")
    if not sep or not selection or not tenant:
        raise ValueError(f"not a (selection|tenant) partition key: {partition_key!r}")
    return PartitionRef(tenant, selection)


def clean_selection_names(names: Iterable[str]) -> tuple[str, ...]:
    """Distinct, sorted, valid names; never empty (an empty static dimension breaks the whole asset)."""
    cleaned = sorted({n for n in names if _VALID_NAME.match(n)})
    return tuple(cleaned) or SEEDED_SELECTIONS


def running_store_url() -> str | None:
    """The store's URL if it can be reached without starting anything, else None.

    Never starts the embedded PostgreSQL: loading definitions (webserver, daemon, every run worker) must
    stay cheap and free of side effects, so an embedded server that is not running counts as unreachable.
    """
    from ..config import database_url_from_env, home_dir

    url = database_url_from_env()
    if url is not None:
        return url
    from ..db import DATABASE_NAME
    from ..db.embedded import EmbeddedServer, _running_port

    pgdata = home_dir() / "pgdata"
    port = _running_port(pgdata)
    return None if port is None else EmbeddedServer(pgdata, port).url(DATABASE_NAME)


def _selection_names_from_store() -> tuple[str, ...] | None:
    """The store's named selections, or None when the store is not reachable right now."""
    if os.environ.get(READ_SELECTIONS_ENV, "1") == "0":
        return None
    try:
        url = running_store_url()
        if url is None:
            return None
        import psycopg

        from ..store.selections import list_selections

        # A short timeout: a down database must not stall every definitions load for long.
        with psycopg.connect(url, connect_timeout=3) as conn:
            return tuple(s.name for s in list_selections(conn))
    except Exception as exc:  # unreachable, not migrated, ...: the seeded names keep definitions loadable
        log.info(
            "named selections not read from the store (%s); using the seeded defaults", type(exc).__name__
        )
        return None


def load_selection_names(
    reader: Callable[[], Sequence[str] | None] = _selection_names_from_store,
) -> tuple[str, ...]:
    """The selection dimension's keys: the store's named selections when readable, else the seeded ones."""
    names = reader()
    return clean_selection_names(names) if names else SEEDED_SELECTIONS


def build_sync_partitions(selection_names: Sequence[str]) -> MultiPartitionsDefinition:
    """tenant (dynamic) x selection (static) for the given selection names."""
    return MultiPartitionsDefinition(
        {
            TENANT_DIMENSION: tenant_partitions,
            SELECTION_DIMENSION: StaticPartitionsDefinition(list(clean_selection_names(selection_names))),
        }
    )


SELECTION_NAMES: tuple[str, ...] = load_selection_names()
sync_partitions: MultiPartitionsDefinition = build_sync_partitions(SELECTION_NAMES)
