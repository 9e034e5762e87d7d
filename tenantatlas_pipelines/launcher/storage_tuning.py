"""Dagster's PostgreSQL storage, tuned for a process that stores many events: the daemon and run workers.

Measured in bench/fleet.py (pg_stat_statements and per-process CPU on a 40-run sweep), two costs of
Dagster's storage defaults dominated the database's CPU once runs no longer paid for interpreter
start-up:

1. A new connection per query. Outside the webserver, dagster-postgres uses SQLAlchemy's NullPool: every
   query opens and authenticates a connection (a new PostgreSQL backend, ~3 ms of server CPU and as
   much client CPU with scram). `DagsterInstance.optimize_for_webserver` switches the engines to a small
   pool; the statement timeout it also sets is 0 (none) here, since runs and daemon queries may be long.
2. Schema questions on every write. Run and event storage ask PostgreSQL's catalog whether a table,
   column or index exists before many writes (`has_table`, `has_asset_key_col`,
   `has_run_stats_index_cols`, ...): hundreds of catalog queries per sweep. A schema only gains these
   objects (migrations add them), so a *yes* is remembered for the life of the process; a *no* is asked
   again, so an upgrade made while the process runs is still seen.
3. Table creation checks in run workers. Each storage object asks for the list of tables when it is
   built (to create them on a fresh database), on a connection of its own that also initialises
   SQLAlchemy's dialect: ~25 statements and three connections per run. A run worker only ever starts
   after the daemon or webserver that launched it built the same storage, so its instance reference is
   rewritten to skip the check (`run_worker_ref`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable
from typing import Any

import sqlalchemy

# Storage methods that only ask whether a schema object exists (Dagster 1.13; pinned by a test).
SCHEMA_QUESTIONS: tuple[str, ...] = (
    "has_table",
    "has_asset_key_col",
    "has_asset_key_index_cols",
    "has_secondary_index",
    "has_built_index",
    "has_run_stats_index_cols",
    "has_bulk_actions_selector_cols",
    "has_backfill_id_column",
    "has_bulk_action_job_name_column",
    "has_backfill_tags_table",
    "has_instigators_table",
    "has_secondary_index_table",
    "has_default_pool_limit_col",
    "has_concurrency_limits_table",
    "has_bounded_dynamic_partition_membership_query",
)
# The same questions asked on a connection the caller holds (the connection is not part of the answer).
SCHEMA_QUESTIONS_ON_CONNECTION: tuple[str, ...] = (
    "_has_asset_key_col_on_connection",
    "_has_asset_key_index_cols_on_connection",
    "_has_instigators_table",
    "_has_asset_daemon_asset_evaluations_table",
)


# Yes-answers of this process, by (storage class, database URL, question, arguments). A zygote fills it
# before it forks (`learn_schema`), so run workers start knowing the answers.
KNOWN_YES: set[tuple[Any, ...]] = set()
# A question asked on a caller's connection is the same question as its connection-less twin.
_SAME_QUESTION = {
    "_has_asset_key_col_on_connection": "has_asset_key_col",
    "_has_asset_key_index_cols_on_connection": "has_asset_key_index_cols",
    "_has_instigators_table": "has_instigators_table",
}


def remember_yes(storage: Any, name: str, method: Callable[..., Any], *, skip: int = 0) -> Callable[..., Any]:
    """`method` with its True answers kept in KNOWN_YES (False is asked again); the first `skip`
    arguments (a connection) are not part of the question."""
    scope = (type(storage).__qualname__, str(getattr(storage, "postgres_url", id(storage))))
    question = _SAME_QUESTION.get(name, name)

    @functools.wraps(method)
    def ask(*args: Any) -> Any:
        key = (*scope, question, args[skip:])
        if key in KNOWN_YES:
            return True
        answer = method(*args)
        if answer is True:
            KNOWN_YES.add(key)
        return answer

    ask.__wrapped_schema_question__ = True  # type: ignore[attr-defined]
    return ask


def _is_attribute_question(cls: type, name: str) -> bool:
    """A question asked as an attribute: a property, or a `cached_property` (cached per storage object,
    i.e. asked again by every run worker's new instance, e.g. `has_default_pool_limit_col`, which
    reflects a table's columns)."""
    return isinstance(inspect.getattr_static(cls, name, None), property | functools.cached_property)


def _remembering_class(cls: type, names: tuple[str, ...]) -> type:
    """A subclass of `cls` whose schema *attribute* questions among `names` remember their yes (a
    property cannot be replaced on the instance, so the instance gets this class instead)."""

    def remembered(name: str, prop: property | functools.cached_property) -> property:
        def get(self: Any) -> Any:
            key = (cls.__qualname__, str(getattr(self, "postgres_url", id(self))), name, ())
            if key in KNOWN_YES:
                return True
            answer = prop.__get__(self, type(self))
            if answer is True:
                KNOWN_YES.add(key)
            return answer

        return property(get)

    attrs = {
        n: remembered(n, inspect.getattr_static(cls, n)) for n in names if _is_attribute_question(cls, n)
    }
    return type(cls.__name__, (cls,), {**attrs, "__schema_questions_remembered__": True}) if attrs else cls


def remember_schema(instance: Any) -> int:
    """Wrap every schema question of the instance's storage; returns how many were wrapped."""
    wrapped = 0
    for storage in storages(instance):
        cls = type(storage)
        if not getattr(cls, "__schema_questions_remembered__", False):
            remembering = _remembering_class(cls, SCHEMA_QUESTIONS)
            if remembering is not cls:
                storage.__class__ = remembering
                wrapped += sum(1 for v in vars(remembering).values() if isinstance(v, property))
        questions = [(n, 0) for n in SCHEMA_QUESTIONS] + [(n, 1) for n in SCHEMA_QUESTIONS_ON_CONNECTION]
        for name, skip in questions:
            if _is_attribute_question(type(storage), name):  # evaluating it here would ask it
                continue
            method = getattr(storage, name, None)
            if callable(method) and not getattr(method, "__wrapped_schema_question__", False):
                setattr(storage, name, remember_yes(storage, name, method, skip=skip))
                wrapped += 1
    return wrapped


def learn_schema(instance: Any) -> int:
    """Ask the questions a run asks (the argument-free ones, and whether each existing table exists)
    so their yes-answers are known; returns how many are known. Best effort: a question that fails is
    simply asked again later by whoever needs it."""
    remember_schema(instance)
    for storage in storages(instance):
        for name in SCHEMA_QUESTIONS:
            if _is_attribute_question(type(storage), name):
                with contextlib.suppress(Exception):
                    getattr(storage, name)
                continue
            method = getattr(storage, name, None)
            if not callable(method) or name == "has_table":
                continue
            with contextlib.suppress(Exception):
                if not inspect.signature(method.__wrapped__).parameters:
                    method()
        engine = getattr(storage, "_engine", None)
        if callable(getattr(storage, "has_table", None)) and engine is not None:
            with contextlib.suppress(Exception):
                for table in sqlalchemy.inspect(engine).get_table_names():
                    storage.has_table(table)
    return len(KNOWN_YES)


def storages(instance: Any) -> list[Any]:
    """The instance's run, event log and schedule storage objects."""
    found = [
        getattr(instance, "_run_storage", None),
        getattr(instance, "_event_storage", None),
        getattr(instance, "_schedule_storage", None),
    ]
    return [s for s in found if s is not None]


def pool_connections(
    storage: Any, *, pool_size: int, max_overflow: int, shared: dict[tuple[str, int], Any]
) -> bool:
    """Give a dagster-postgres storage a pooled engine (False for any other storage class).

    Why not `optimize_for_webserver` alone: it pools exactly one connection, and a connection opened
    beyond the pool is closed when returned, so a run whose worker threads store events at once still
    opened and authenticated a connection per event. Storages of one instance given the same `shared`
    dict share one engine per database (run, event log and schedule storage are one database here, all
    AUTOCOMMIT): a run worker then opens one connection where it opened three.
    """
    url = getattr(storage, "postgres_url", None)
    engine = getattr(storage, "_engine", None)
    if not isinstance(url, str) or engine is None:
        return False
    from dagster_postgres.utils import create_pg_engine

    token_provider = getattr(storage, "_token_provider", None)
    key = (url, id(token_provider))
    if key not in shared:
        shared[key] = create_pg_engine(
            url,
            token_provider,
            isolation_level="AUTOCOMMIT",
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_recycle=3600,
        )
    storage._engine = shared[key]
    engine.dispose()
    return True


def tune_storage(instance: Any, *, pool_size: int, max_overflow: int) -> int:
    """Pool the instance's connections and remember its schema answers; returns the methods wrapped."""
    engines: dict[tuple[str, int], Any] = {}
    pooled = [
        pool_connections(s, pool_size=pool_size, max_overflow=max_overflow, shared=engines)
        for s in storages(instance)
    ]
    if not all(pooled):  # another storage class: Dagster's own pooling, one connection per engine
        instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=max_overflow)
    return remember_schema(instance)


def run_worker_ref(ref: Any) -> Any:
    """`ref` with `should_autocreate_tables: false` for dagster-postgres storage (tables exist: the
    launching process created them). Any other storage is left as it is."""
    import yaml

    def skip_creation(data: Any) -> Any:
        if data is None or getattr(data, "module_name", None) != "dagster_postgres":
            return data
        config = yaml.safe_load(data.config_yaml) or {}
        config["should_autocreate_tables"] = False
        return data._replace(config_yaml=yaml.safe_dump(config))

    return ref._replace(
        storage_data=skip_creation(ref.storage_data),
        run_storage_data=skip_creation(ref.run_storage_data),
        event_storage_data=skip_creation(ref.event_storage_data),
        schedule_storage_data=skip_creation(ref.schedule_storage_data),
    )
