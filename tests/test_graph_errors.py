"""Mapping Graph answers, MSAL results and exceptions to stable error codes (pure)."""

from __future__ import annotations

import json
import pickle

import httpx
import pytest

from tenantatlas_pipelines.errors import ErrorCode, TenantAtlasError
from tenantatlas_pipelines.graph.errors import (
    RETRYABLE_STATUSES,
    GraphError,
    aadsts_codes,
    error_for_auth_exception,
    error_for_auth_result,
    error_for_response,
    is_invalid_token,
    parse_graph_error,
    redact,
    safe_url,
)

URL = "https://graph.microsoft.com/beta/deviceManagement/intents?$skiptoken=SECRETISH&top=5"


def envelope(code: str, message: str) -> bytes:
    error = {"code": code, "message": message, "innerError": {"request-id": "r"}}
    return json.dumps({"error": error}).encode()


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable"),
    [
        (400, envelope("BadRequest", "Invalid filter clause"), ErrorCode.GRAPH_BAD_REQUEST, False),
        (
            400,
            envelope("BadRequest", "Request not applicable to target tenant."),
            ErrorCode.GRAPH_TENANT_NOT_LICENSED,
            False,
        ),
        (
            401,
            envelope("InvalidAuthenticationToken", "Access token has expired."),
            ErrorCode.GRAPH_UNAUTHORIZED,
            False,
        ),
        (
            403,
            envelope("Forbidden", "Application is not authorized to perform this operation."),
            ErrorCode.GRAPH_FORBIDDEN,
            False,
        ),
        (404, envelope("ResourceNotFound", "Resource not found"), ErrorCode.GRAPH_NOT_FOUND, False),
        (405, b"", ErrorCode.GRAPH_BAD_REQUEST, False),
        (429, envelope("TooManyRequests", "Too many requests"), ErrorCode.GRAPH_THROTTLED, True),
        (500, envelope("InternalServerError", "oops"), ErrorCode.GRAPH_SERVER_ERROR, True),
        (502, b"<html>bad gateway</html>", ErrorCode.GRAPH_SERVER_ERROR, True),
        (503, b"", ErrorCode.GRAPH_SERVER_ERROR, True),
        (504, b"not json at all", ErrorCode.GRAPH_SERVER_ERROR, True),
    ],
)
def test_error_for_response(status: int, body: bytes, code: ErrorCode, retryable: bool) -> None:
    error = error_for_response(status, body, "GET", URL)
    assert error.code == code
    assert error.status == status
    assert error.retryable is retryable
    assert isinstance(error, TenantAtlasError)
    assert "SECRETISH" not in str(error)  # the query string never reaches error text
    assert "/beta/deviceManagement/intents" in error.message


def test_retryable_statuses_documented_set() -> None:
    assert {429, 503, 504} <= RETRYABLE_STATUSES
    assert not {400, 401, 403, 404} & RETRYABLE_STATUSES


@pytest.mark.parametrize(
    "message",
    [
        # Intune nests a JSON document (with its own Message) inside error.message
        json.dumps(
            {
                "_version": 3,
                "Message": "Request not applicable to target tenant. - Operation ID: x",
                "CustomApiErrorPhrase": "",
                "RetryAfter": None,
            }
        ),
        json.dumps({"error": {"code": "x", "message": "Request not applicable to target tenant."}}),
        json.dumps({"Message": json.dumps({"Message": "request NOT applicable to target tenant"})}),
        "An error has occurred - Request not applicable to target tenant.",
    ],
)
def test_not_licensed_found_inside_nested_messages(message: str) -> None:
    error = error_for_response(400, envelope("BadRequest", message), "GET", URL)
    assert error.code == ErrorCode.GRAPH_TENANT_NOT_LICENSED


@pytest.mark.parametrize(
    "body",
    [
        None,
        b"",
        b"\xff\xfe",
        b"[]",
        b'{"error": "string"}',
        b'{"error": {"code": 5, "message": null}}',
        envelope("BadRequest", "{not json"),
        envelope("BadRequest", "[1, 2]"),
        b"{" * 10_000,
    ],
)
def test_parse_graph_error_tolerates_anything(body: bytes | None) -> None:
    code, message = parse_graph_error(body)
    assert isinstance(code, str) and isinstance(message, str)
    assert len(message) <= 300


def test_is_invalid_token() -> None:
    assert is_invalid_token(401, envelope("InvalidAuthenticationToken", "expired"))
    assert is_invalid_token(401, b"")
    assert not is_invalid_token(401, envelope("Authorization_RequestDenied", "no"))
    assert not is_invalid_token(403, envelope("InvalidAuthenticationToken", "x"))


@pytest.mark.parametrize(
    ("result", "code"),
    [
        (
            {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.",
                "error_codes": [7000215],
            },
            ErrorCode.AUTH_INVALID_CLIENT,
        ),
        (
            {
                "error": "invalid_client",
                "error_description": "AADSTS7000222: The provided client secret keys are expired.",
            },
            ErrorCode.AUTH_INVALID_CLIENT,
        ),
        (
            {
                "error": "unauthorized_client",
                "error_description": "AADSTS700016: Application with identifier "
                "'x' was not found in the directory 'y'.",
                "error_codes": [700016],
            },
            ErrorCode.AUTH_APP_NOT_CONSENTED,
        ),
        (
            {
                "error": "invalid_request",
                "error_description": "AADSTS90002: Tenant 'x' not found.",
                "error_codes": [90002],
            },
            ErrorCode.AUTH_TENANT_NOT_FOUND,
        ),
        ({"error": "invalid_request", "error_codes": [90002]}, ErrorCode.AUTH_TENANT_NOT_FOUND),
        (
            {"error": "temporarily_unavailable", "error_description": "AADSTS50196: loop"},
            ErrorCode.AUTH_FAILED,
        ),
        ({}, ErrorCode.AUTH_FAILED),
    ],
)
def test_error_for_auth_result(result: dict, code: ErrorCode) -> None:
    error = error_for_auth_result(result, "tenant-1")
    assert error.code == code
    assert "tenant-1" in error.message


def test_auth_messages_are_redacted() -> None:
    secret = "s3cr3t-Value~xyz"
    result = {"error": "invalid_client", "error_description": f"AADSTS7000215: secret {secret} is wrong"}
    error = error_for_auth_result(result, "t", secrets=[secret])
    assert secret not in str(error) and secret not in repr(error)
    exc = ValueError(f"boom {secret}")
    assert secret not in str(error_for_auth_exception(exc, "t", secrets=[secret]))


def _chained(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException:
            raise outer  # noqa: B904 - reproduce MSAL's implicit chaining
    except BaseException as exc:
        return exc


def test_auth_exception_discovery_failure_is_tenant_not_found() -> None:
    inner = ValueError(
        "OIDC Discovery failed on https://x/t/v2.0/.well-known/openid-configuration. HTTP "
        'status: 400, Error: {"error":"invalid_tenant","error_description":"AADSTS90002: '
        'Tenant not found."}'
    )
    exc = _chained(ValueError("Unable to get authority configuration for https://x/t."), inner)
    assert error_for_auth_exception(exc, "t").code == ErrorCode.AUTH_TENANT_NOT_FOUND
    bare = ValueError("Unable to get authority configuration for https://x/t. Also check")
    assert error_for_auth_exception(bare, "t").code == ErrorCode.AUTH_TENANT_NOT_FOUND


def test_auth_exception_transport_and_status() -> None:
    request = httpx.Request("POST", "https://login.example/t/oauth2/v2.0/token")
    assert error_for_auth_exception(httpx.ConnectError("refused", request=request), "t").code == (
        ErrorCode.GRAPH_NETWORK
    )
    timeout = error_for_auth_exception(httpx.ReadTimeout("slow", request=request), "t")
    assert timeout.code == ErrorCode.GRAPH_TIMEOUT and timeout.retryable
    response = httpx.Response(503, request=request)
    status_error = httpx.HTTPStatusError("503", request=request, response=response)
    mapped = error_for_auth_exception(status_error, "t")
    assert (mapped.code, mapped.status, mapped.retryable) == (ErrorCode.AUTH_FAILED, 503, True)
    other = error_for_auth_exception(RuntimeError("weird"), "t")
    assert other.code == ErrorCode.AUTH_FAILED and not other.retryable
    same = GraphError(ErrorCode.AUTH_INVALID_CLIENT, "x")
    assert error_for_auth_exception(same, "t") is same


def test_graph_error_pickles_faithfully() -> None:
    error = GraphError(ErrorCode.GRAPH_THROTTLED, "slow down", 429, True)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.message, copy.status) == ("graph_throttled", "slow down", 429)
    assert copy.retryable is True
    assert str(copy) == "[graph_throttled] slow down"


def test_helpers() -> None:
    assert safe_url("https://user:pw@graph.example:8443/beta/x?$skiptoken=abc#frag") == (
        "https://graph.example:8443/beta/x"
    )
    assert redact("a secret here", ["secret", None, ""]) == "a *** here"
    assert redact("abc", ["ab"]) == "abc"  # too short to be a secret worth replacing
    assert aadsts_codes("AADSTS700016: x; AADSTS90002", None) == [700016, 90002]
