"""Entra ID (the authority host): OIDC discovery and the client-credentials token endpoint.

Reproduces what MSAL Python and our error mapping depend on: the discovery document MSAL reads when a
client object is built, Entra's error body shape (``error``, ``error_description`` "AADSTSnnnn: ...",
``error_codes``, ``trace_id``, ``correlation_id``, ``timestamp``), and its check order (tenant, then the
app in the tenant, then the credential, then the scope). Access tokens are HMAC-signed JWTs bound to
tenant, app and audience with a per-process key, so a token from another emulator is rejected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import parse_qsl

from .core import EmulatorState, Request, Response, json_bytes, new_id, utc_now
from .data import TenantSpec
from .faults import FaultKind

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# --- discovery ---------------------------------------------------------------------------------------


def discovery_document(base_url: str, tenant_id: str) -> dict[str, Any]:
    """The v2.0 OpenID configuration of a tenant, with the emulator's host in every endpoint."""
    t = f"{base_url}/{tenant_id}"
    return {
        "token_endpoint": f"{t}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base_url}/{tenant_id}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{t}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base_url}/oidc/userinfo",
        "authorization_endpoint": f"{t}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{t}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{t}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "ver"],
        "kerberos_endpoint": f"{t}/kerberos",
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": base_url.split("://", 1)[1],
        "rbac_url": "https://pas.windows.net",
    }


def handle_discovery(state: EmulatorState, request: Request, tenant_alias: str) -> Response:
    spec = state.tenant_by_alias(tenant_alias)
    if spec is None:
        return aad_error(
            request,
            400,
            "invalid_tenant",
            90002,
            f"Tenant '{tenant_alias}' not found. Check to make sure you have the correct tenant "
            "ID and are signing into the correct cloud. Check with your subscription "
            "administrator, this may happen if there are no active subscriptions for the "
            "tenant.",
            endpoint="discovery",
            base_url=state.base_url,
        )
    return Response(
        200,
        json_bytes(discovery_document(state.base_url, spec.tenant_id)),
        endpoint="discovery",
        tenant_id=spec.tenant_id,
    )


# --- errors ------------------------------------------------------------------------------------------


def aad_error(
    request: Request,
    status: int,
    error: str,
    code: int,
    message: str,
    *,
    base_url: str = "",
    endpoint: str = "token",
    tenant_id: str | None = None,
    client_id: str | None = None,
) -> Response:
    """Entra's error body. `message` must never contain a credential."""
    trace_id, correlation_id = new_id(), request.headers.get("client-request-id") or new_id()
    stamp = utc_now().strftime("%Y-%m-%d %H:%M:%SZ")
    body = {
        "error": error,
        "error_description": f"AADSTS{code}: {message} Trace ID: {trace_id} Correlation ID: "
        f"{correlation_id} Timestamp: {stamp}",
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"{base_url}/error?code={code}",
    }
    return Response(
        status,
        json_bytes(body),
        endpoint=endpoint,
        tenant_id=tenant_id,
        client_id=client_id,
        headers=[("Cache-Control", "no-store, no-cache"), ("x-ms-request-id", trace_id)],
    )


# --- access tokens -----------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(state: EmulatorState, spec: TenantSpec, client_id: str, audience: str) -> str:
    now = int(time.time())
    header = {"typ": "JWT", "alg": "HS256", "kid": "emulator"}
    claims = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{spec.tenant_id}/",
        "iat": now,
        "nbf": now,
        "exp": now + state.token_lifetime,
        "appid": client_id,
        "azp": client_id,
        "idtyp": "app",
        "tid": spec.tenant_id,
        "oid": new_id(),
        "sub": new_id(),
        "ver": "1.0",
        "roles": [
            "DeviceManagementConfiguration.Read.All",
            "DeviceManagementApps.Read.All",
            "DeviceManagementServiceConfig.Read.All",
            "DeviceManagementRBAC.Read.All",
            "DeviceManagementManagedDevices.Read.All",
            "Policy.Read.All",
        ],
    }
    signing_input = f"{_b64(json_bytes(header))}.{_b64(json_bytes(claims))}"
    sig = hmac.new(state.signing_key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(sig)}"


def verify_token(state: EmulatorState, token: str) -> tuple[dict[str, Any] | None, str]:
    """(claims, "") for a token this emulator issued and still honours, else (None, Graph's message)."""
    if not token:
        return None, "Access token is empty."
    parts = token.split(".")
    if len(parts) != 3:
        return None, (
            "IDX14100: JWT is not well formed, there are no dots (.).\nThe token needs to be in "
            "JWS or JWE Compact Serialization Format. (JWS): 'EncodedHeader.EndcodedPayload."
            "EncodedSignature'."
        )
    try:
        expected = hmac.new(
            state.signing_key, f"{parts[0]}.{parts[1]}".encode("ascii"), hashlib.sha256
        ).digest()
        if not hmac.compare_digest(expected, _unb64(parts[2])):
            return None, "Access token validation failure. Invalid signature."
        claims = json.loads(_unb64(parts[1]))
    except (ValueError, UnicodeError):
        return None, "Access token validation failure. Token could not be decoded."
    if claims.get("aud") != state.base_url:
        return None, "Access token validation failure. Invalid audience."
    if claims.get("exp", 0) <= time.time():
        return None, "Lifetime validation failed, the token is expired."
    if claims.get("tid") not in state.tenants:
        return None, "Access token validation failure. Invalid issuer."
    return claims, ""


# --- token endpoint ----------------------------------------------------------------------------------


def _check_assertion(
    state: EmulatorState, spec: TenantSpec, client_id: str, assertion: str, token_endpoints: set[str]
) -> str | None:
    """None when the client assertion is acceptable, else an AADSTS message ("code|text")."""
    try:
        import jwt  # PyJWT: installed with msal (msal[crypto] requires it)
    except ImportError:  # pragma: no cover - msal always brings it
        return "50027|JWT token is invalid or malformed."
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        return "50027|JWT token is invalid or malformed."
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        return "700021|Client assertion application identifier doesn't match 'client_id' parameter."
    if claims.get("aud") not in token_endpoints:
        return "50027|JWT token is invalid or malformed: its audience is not this tenant's token endpoint."
    now = time.time()
    if not (float(claims.get("nbf", claims.get("iat", 0))) - 300 <= now < float(claims.get("exp", 0))):
        return "700024|Client assertion is not within its valid time range."
    if state.certificates:
        cert = None
        thumbprint = header.get("x5t#S256") or header.get("x5t")
        try:
            cert = state.certificates.get(_unb64(str(thumbprint)).hex()) if thumbprint else None
        except ValueError:  # an undecodable thumbprint identifies no certificate
            cert = None
        if cert is None:
            return (
                "700027|The certificate with identifier used to sign the client assertion is not "
                "registered on application."
            )
        try:
            jwt.decode(
                assertion,
                key=cert.public_key(),
                algorithms=["PS256", "RS256"],
                audience=list(token_endpoints),
            )
        except jwt.PyJWTError:
            return "700027|Client assertion failed signature validation."
    return None


def handle_token(state: EmulatorState, request: Request, tenant_alias: str) -> Response:
    if request.method != "POST":
        return aad_error(
            request,
            405,
            "invalid_request",
            900561,
            "The endpoint only accepts POST requests. Received a GET request.",
            base_url=state.base_url,
        )
    form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
    client_id = form.get("client_id") or None
    spec = state.tenant_by_alias(tenant_alias)
    tid = spec.tenant_id if spec else None

    def err(status: int, error: str, code: int, message: str) -> Response:
        return aad_error(
            request, status, error, code, message, tenant_id=tid, client_id=client_id, base_url=state.base_url
        )

    down = state.faults.first({FaultKind.TOKEN_DOWN}, tid, None)
    if down is not None:
        if down.reset:
            return Response(
                0, reset=True, endpoint="token", tenant_id=tid, client_id=client_id, fault=str(down.kind)
            )
        resp = err(
            down.status or 503,
            "temporarily_unavailable",
            50196 if down.status == 429 else 90033,
            "A transient error has occurred. Please try again.",
        )
        if down.retry_after is not None:
            resp.headers.append(("Retry-After", down.retry_after))
        resp.fault = str(down.kind)
        return resp
    if spec is None:
        return err(
            400,
            "invalid_request",
            90002,
            f"Tenant '{tenant_alias}' not found. Check to make sure you have the correct tenant ID "
            "and are signing into the correct cloud. Check with your subscription administrator, "
            "this may happen if there are no active subscriptions for the tenant.",
        )
    grant = form.get("grant_type")
    if not grant:
        return err(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        )
    if grant != "client_credentials":
        return err(
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type '" + grant[:64] + "'.",
        )
    if not client_id:
        return err(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        )
    if client_id != state.client_id or not spec.consented:
        return err(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{spec.name}'. This can happen if the application has not been installed by the "
            "administrator of the tenant or consented to by any user in the tenant. You may have "
            "sent your authentication request to the wrong tenant.",
        )
    secret, assertion = form.get("client_secret"), form.get("client_assertion")
    if assertion:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return err(400, "invalid_request", 50027, "JWT token is invalid or malformed.")
        endpoints = {
            f"{state.base_url}/{a}/oauth2/v2.0/token" for a in (spec.tenant_id, spec.domain, tenant_alias)
        }
        problem = _check_assertion(state, spec, client_id, assertion, endpoints)
        if problem is not None:
            code, _, text = problem.partition("|")
            if code == "50027":
                return err(400, "invalid_request", 50027, text)
            return err(401, "invalid_client", int(code), text)
    elif secret:
        if not hmac.compare_digest(secret.encode(), state.client_secret.encode()):
            return err(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the "
                "client secret value, not the client secret ID, for a secret added to app "
                f"'{client_id}'.",
            )
    else:
        return err(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
    scopes = form.get("scope", "").split()
    resource_scopes = [s for s in scopes if s not in ("openid", "profile", "offline_access")]
    if len(resource_scopes) != 1 or not resource_scopes[0].endswith("/.default"):
        shown = " ".join(scopes)[:200]
        return err(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {shown} is not valid. Client credential flows must have "
            "a scope value with /.default suffixed to the resource identifier (application ID URI).",
        )
    resource = resource_scopes[0][: -len("/.default")]
    if resource.rstrip("/") != state.base_url:
        return err(
            400,
            "invalid_resource",
            500011,
            f"The resource principal named {resource[:200]} was not found in the tenant named "
            f"{spec.name}. This can happen if the application has not been installed by the "
            "administrator of the tenant or consented to by any user in the tenant. You might have "
            "sent your authentication request to the wrong tenant.",
        )
    body = {
        "token_type": "Bearer",
        "expires_in": state.token_lifetime,
        "ext_expires_in": state.token_lifetime,
        "access_token": issue_token(state, spec, client_id, state.base_url),
    }
    return Response(
        200,
        json_bytes(body),
        endpoint="token",
        tenant_id=spec.tenant_id,
        client_id=client_id,
        headers=[("Cache-Control", "no-store, no-cache"), ("Pragma", "no-cache")],
    )
