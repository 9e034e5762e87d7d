"""How the client shares a tenant's throttling budget: the adaptive per-tenant limit (AIMD, throttled
retries first), the tenant-wide Retry-After hold, and the process-wide bound on requests in flight."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import pytest

from tenantatlas_pipelines.graph.client import GraphClient
from tenantatlas_pipelines.graph.limiter import AdaptiveLimit
from tenantatlas_pipelines.graph.settings import GraphSettings
from tests.test_graph_client import GRAPH, StubTokens, graph_error, page


# --- AdaptiveLimit (pure) -----------------------------------------------------------------------------
def test_limit_halves_on_throttling_and_grows_back_to_its_maximum() -> None:
    limit = AdaptiveLimit(4)
    limit.throttled()
    assert limit.limit == 2
    limit.throttled()
    limit.throttled()
    assert limit.limit == 1, "never below one request in flight"
    for _ in range(3):
        limit.succeeded()
    assert 1 < limit.limit < 4
    for _ in range(50):
        limit.succeeded()
    assert limit.limit == 4, "back to the configured concurrency, never above"
    with pytest.raises(ValueError):
        AdaptiveLimit(0)


def _try_slot(
    limit: AdaptiveLimit, reserved: bool, entered: threading.Event, release: threading.Event
) -> None:
    with limit.slot(reserved):
        entered.set()
        release.wait(5)


def test_a_reserved_retry_takes_the_next_slot_before_new_requests() -> None:
    limit = AdaptiveLimit(1)
    hold_release = threading.Event()
    holder_in = threading.Event()
    holder = threading.Thread(target=_try_slot, args=(limit, False, holder_in, hold_release))
    holder.start()
    assert holder_in.wait(5)
    limit.reserve()  # a throttled request will retry
    new_in, new_release = threading.Event(), threading.Event()
    newcomer = threading.Thread(target=_try_slot, args=(limit, False, new_in, new_release))
    newcomer.start()
    retry_in, retry_release = threading.Event(), threading.Event()
    hold_release.set()  # the slot frees: the retry, not the newcomer, must get it
    retry = threading.Thread(target=_try_slot, args=(limit, True, retry_in, retry_release))
    retry.start()
    assert retry_in.wait(5)
    assert not new_in.is_set()
    retry_release.set()
    assert new_in.wait(5), "the newcomer goes once the reservation is used"
    new_release.set()
    for t in (holder, newcomer, retry):
        t.join(5)


def test_a_cancelled_reservation_unblocks_new_requests() -> None:
    limit = AdaptiveLimit(2)
    limit.reserve()
    entered, release = threading.Event(), threading.Event()
    t = threading.Thread(target=_try_slot, args=(limit, False, entered, release))
    t.start()
    assert not entered.wait(0.2), "new requests wait behind a reservation"
    limit.cancel()
    assert entered.wait(5)
    release.set()
    t.join(5)


# --- the client over an in-process transport (real time) ----------------------------------------------
def _client(handler: Callable[[httpx.Request], httpx.Response], **settings: object) -> GraphClient:
    values: dict = {
        "client_id": "c",
        "client_secret": "s",
        "graph_url": GRAPH,
        "authority_host": GRAPH,
        "backoff_base_s": 0.05,
        "backoff_cap_s": 0.2,
        "retry_budget_s": 10.0,
        **settings,
    }
    return GraphClient(
        GraphSettings(**values), token_source=StubTokens(), transport=httpx.MockTransport(handler)
    )


def test_retry_after_holds_every_request_of_that_tenant_and_only_that_tenant() -> None:
    seen: list[tuple[float, str, str]] = []
    lock = threading.Lock()
    throttled_once = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        tenant_path = request.url.path
        with lock:
            seen.append((time.monotonic(), request.headers["x-tenant"], tenant_path))
            first = "intents" in tenant_path and not throttled_once.is_set()
            if first:
                throttled_once.set()
        if first:
            return graph_error(429, "TooManyRequests", "slow down", **{"Retry-After": "1"})
        return page([{"id": "x"}])

    client = _client(handler)
    original = client._http.build_request

    def build_request(method: str, url: str, **kwargs: object) -> httpx.Request:
        request = original(method, url, **kwargs)
        request.headers["x-tenant"] = threading.current_thread().name
        return request

    client._http.build_request = build_request  # type: ignore[method-assign]

    def read(tenant: str, key: str) -> None:
        list(client.iter_pages(tenant, key))

    first = threading.Thread(target=read, args=("tenant-a", "endpointSecurityIntent"), name="a1")
    first.start()
    assert throttled_once.wait(5)
    time.sleep(0.05)
    same = threading.Thread(target=read, args=("tenant-a", "deviceConfiguration"), name="a2")
    other = threading.Thread(target=read, args=("tenant-b", "deviceConfiguration"), name="b1")
    same.start()
    other.start()
    for t in (first, same, other):
        t.join(10)
    t429 = seen[0][0]
    by_thread = {name: [t for t, n, _ in seen if n == name] for name in ("a1", "a2", "b1")}
    assert by_thread["a1"][1] - t429 >= 0.99, "the throttled request waited its Retry-After"
    assert by_thread["a2"][0] - t429 >= 0.99, "another read of the same tenant waited too"
    assert by_thread["b1"][0] - t429 < 0.99, "another tenant was not held"


def test_requests_in_flight_never_exceed_the_global_bound() -> None:
    state = {"now": 0, "max": 0}
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.03)
        with lock:
            state["now"] -= 1
        return page([{"id": request.url.path}])

    client = _client(handler, global_concurrency=3, per_tenant_concurrency=4)
    threads = [
        threading.Thread(target=lambda t=t, k=k: list(client.iter_pages(t, k)))
        for t in ("tenant-a", "tenant-b", "tenant-c")
        for k in ("deviceConfiguration", "mobileApp", "endpointSecurityIntent", "roleScopeTag")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert state["max"] == 3, state
