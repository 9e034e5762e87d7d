"""Graph JSON batching: ``POST /{version}/$batch`` with at most 20 requests.

The outer answer is 200 whenever the batch itself is well formed, whatever happened inside; each inner
response has its own ``status``, ``headers`` (``Retry-After`` on an inner 429) and ``body``, and they come
back in no particular order (match them by ``id``). Every inner request goes through the same pipeline
as a plain request — rate limit, faults, licence — so each counts against the tenant's window on its own
and may be throttled on its own. The outer request takes no slot of the window. The request log keeps
the outer request (``policy_type`` ``"$batch"``) and one record per inner request (``batch`` = the outer
request's ``request-id``).
"""

from __future__ import annotations

import json
import time
from typing import Any

from .core import EmulatorState, Request, Response, json_bytes, new_id
from .envelope import base_headers, graph_error
from .present import read_rng

MAX_REQUESTS = 20


def _inner_response(inner_id: str, resp: Response) -> dict[str, Any]:
    if resp.reset or resp.status == 0:  # a dropped connection inside a batch surfaces as a gateway timeout
        return {"id": inner_id, "status": 504, "headers": {"Content-Type": "application/json"},
                "body": {"error": {"code": "GatewayTimeout", "message": "The operation has timed out."}}}
    headers = {"Content-Type": resp.content_type, "Cache-Control": "no-cache"}
    if resp.retry_after is not None:
        headers["Retry-After"] = resp.retry_after
    try:
        body: Any = json.loads(resp.body.decode("utf-8")) if resp.body else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = resp.body.decode("utf-8", "replace")  # a damaged page stays damaged inside a batch
    return {"id": inner_id, "status": resp.status, "headers": headers, "body": body}


def _validate(body: Any) -> str | None:
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        return "The batch request body must have a non-empty 'requests' array."
    if len(requests) > MAX_REQUESTS:
        return f"The number of requests in the batch ({len(requests)}) exceeds the limit of {MAX_REQUESTS}."
    ids = []
    for item in requests:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            return "Every batch request needs a string 'id'."
        if not isinstance(item.get("url"), str) or not isinstance(item.get("method"), str):
            return f"Batch request '{item['id'][:40]}' needs 'method' and 'url'."
        ids.append(item["id"])
    if len(set(ids)) != len(ids):
        return "Batch request ids must be unique."
    return None


def handle_batch(state: EmulatorState, request: Request, claims: dict[str, Any], version: str) -> Response:
    from .graph import serve  # graph.py routes here; inner requests go back through its pipeline

    log: dict[str, Any] = {"endpoint": "graph", "tenant_id": claims["tid"], "client_id": claims.get("appid"),
                           "policy_type": "$batch"}
    if request.method != "POST":
        return graph_error(request, 405, "The $batch endpoint only accepts POST.", **log)
    try:
        body = json.loads(request.body.decode("utf-8") or "null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return graph_error(request, 400, "Invalid JSON in the batch request body.", **log)
    problem = _validate(body)
    if problem:
        return graph_error(request, 400, problem, **log)
    batch_id = new_id()
    responses = []
    for item in body["requests"]:
        url = item["url"].strip()
        if url.lower().startswith(("https://", "http://")):
            responses.append(_inner_response(item["id"], graph_error(
                request, 400, "Batch request URLs must be relative to the version, e.g. "
                              "'/deviceManagement/deviceConfigurations'.")))
            continue
        path, _, query = url.lstrip("/").partition("?")
        headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        headers["authorization"] = request.headers.get("authorization", "")
        inner_body = item.get("body")
        inner = Request(item["method"].upper(), f"/{version}/{path}", query, headers,
                        json_bytes(inner_body) if inner_body is not None else b"")
        started, wall = time.monotonic(), time.time()
        if path.strip("/").lower() == "$batch":
            resp = graph_error(inner, 400, "Batches cannot be nested.", **{**log, "batch": batch_id})
        else:
            resp = serve(state, inner, claims, version, path, batch=batch_id)
        state.record(inner, resp, started, wall, time.monotonic() - started)
        responses.append(_inner_response(item["id"], resp))
    read_rng().shuffle(responses)
    log["items"] = len(responses)
    headers = base_headers(request, batch_id)
    return Response(200, json_bytes({"responses": responses}), headers=headers,
                    content_type="application/json; charset=utf-8", **log)
