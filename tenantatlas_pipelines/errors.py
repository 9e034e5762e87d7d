"""Stable error codes: the one vocabulary every layer reports failures in.

A code, once published in docs/error-codes.md, keeps its meaning forever: analysts filter on them and
alerting rules match them. Tests assert that this enum and the docs table list the same codes.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    # authentication (Entra token endpoint / OIDC discovery)
    AUTH_INVALID_CLIENT = "auth_invalid_client"
    AUTH_APP_NOT_CONSENTED = "auth_app_not_consented"
    AUTH_TENANT_NOT_FOUND = "auth_tenant_not_found"
    AUTH_FAILED = "auth_failed"
    AUTH_MISSING_CREDENTIALS = "auth_missing_credentials"
    # Graph answers
    GRAPH_UNAUTHORIZED = "graph_unauthorized"
    GRAPH_FORBIDDEN = "graph_forbidden"
    GRAPH_NOT_FOUND = "graph_not_found"
    GRAPH_BAD_REQUEST = "graph_bad_request"
    GRAPH_TENANT_NOT_LICENSED = "graph_tenant_not_licensed"
    GRAPH_THROTTLED = "graph_throttled"
    GRAPH_SERVER_ERROR = "graph_server_error"
    GRAPH_TIMEOUT = "graph_timeout"
    GRAPH_NETWORK = "graph_network"
    GRAPH_INVALID_RESPONSE = "graph_invalid_response"
    GRAPH_PAGING_LOOP = "graph_paging_loop"
    # data
    ITEM_WITHOUT_ID = "item_without_id"
    ITEM_INVALID = "item_invalid"
    META_KEYS_DROPPED = "meta_keys_dropped"
    # run control
    LOCK_HELD = "lock_held"
    RUN_ABANDONED = "run_abandoned"
    LOCK_LOST = "lock_lost"
    RUN_CANCELLED = "run_cancelled"
    # snapshots
    SNAPSHOT_NOT_FOUND = "snapshot_not_found"
    OBJECT_NOT_IN_SNAPSHOT = "object_not_in_snapshot"
    # drift
    NO_SNAPSHOT = "no_snapshot"
    NO_BASELINE_SNAPSHOT = "no_baseline_snapshot"
    BASELINE_NOT_USABLE = "baseline_not_usable"
    DRIFT_ITEM_NOT_FOUND = "drift_item_not_found"
    ACCEPTANCE_NOT_FOUND = "acceptance_not_found"
    # dependencies
    AMBIGUOUS_TARGET_NAME = "ambiguous_target_name"
    # selection and tenant input
    INVALID_SELECTION = "invalid_selection"
    UNKNOWN_POLICY_TYPE = "unknown_policy_type"
    UNKNOWN_SELECTION = "unknown_selection"
    INVALID_TENANT_ID = "invalid_tenant_id"
    INVALID_TENANT_KEY = "invalid_tenant_key"
    UNKNOWN_TENANT = "unknown_tenant"
    TENANT_DISABLED = "tenant_disabled"
    INVALID_IMPORT_FILE = "invalid_import_file"
    # infrastructure
    DATABASE_UNAVAILABLE = "database_unavailable"
    DATABASE_ERROR = "database_error"
    CONFIG_INVALID = "config_invalid"
    INTERNAL_ERROR = "internal_error"


class TenantAtlasError(Exception):
    """An error a person can act on: a stable code plus a sentence that says what happened.

    Messages must never contain secrets; callers pass only identifiers (tenant ids, type keys, URLs
    without query strings) into them.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message

    def __reduce__(self):  # keep pickling (multiprocessing, Dagster) faithful to the constructor
        return (type(self), (self.code, self.message))
