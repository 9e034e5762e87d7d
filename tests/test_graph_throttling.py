"""How the client shares a tenant's throttling budget: the adaptive per-tenant limit (AIMD, throttled
retries first), the tenant-wide Retry-After hold, and the process-wide bound on requests in flight."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import pytest

from tenantatlas_pipelines.errors import ErrorCode
from tenantatlas_pipelines.graph.client import GraphClient
from tenantatlas_pipelines.graph.errors import GraphError
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


def test_a_429_without_retry_after_backs_off_only_that_request_and_halves_the_limit() -> None:
    """Our guess (backoff) must not stall the tenant; finding its rate is the halved limit's job."""
    seen: list[tuple[float, str, float]] = []
    lock = threading.Lock()
    throttled_once = threading.Event()
    client: GraphClient

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            seen.append((time.monotonic(), request.url.path, client._limit("tenant-a").limit))
            first = "intents" in request.url.path and not throttled_once.is_set()
            throttled_once.set()
        if first:
            return graph_error(429, "TooManyRequests", "slow down")  # Intune's habit: no Retry-After
        return page([{"id": "x"}])

    # rand ~1: the first backoff is the whole 1 s ceiling, long enough to see who waited for it.
    client = _client(handler, backoff_base_s=1.0, backoff_cap_s=1.0)
    client._rand = lambda: 0.999
    first = threading.Thread(target=lambda: list(client.iter_pages("tenant-a", "endpointSecurityIntent")))
    first.start()
    assert throttled_once.wait(5)
    time.sleep(0.05)
    list(client.iter_pages("tenant-a", "deviceConfiguration"))
    first.join(10)
    t429 = seen[0][0]
    other = next(t for t, path, _ in seen if "deviceConfigurations" in path)
    retry_at, _, limit_at_retry = next(s for s in seen[1:] if "intents" in s[1])
    assert other - t429 < 0.5, "another read of the same tenant was not held by the guess"
    assert retry_at - t429 >= 0.95, "the refused request waited its own backoff"
    assert limit_at_retry < client.settings.per_tenant_concurrency, "the tenant's limit was halved"


def test_a_429_with_retry_after_holds_the_tenant_without_halving_its_limit() -> None:
    seen: list[tuple[float, float]] = []
    throttled_once = threading.Event()
    client: GraphClient

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((time.monotonic(), client._limit("tenant-a").limit))
        if not throttled_once.is_set():
            throttled_once.set()
            return graph_error(429, "TooManyRequests", "slow down", **{"Retry-After": "0.3"})
        return page([{"id": "x"}])

    client = _client(handler)
    list(client.iter_pages("tenant-a", "deviceConfiguration"))
    (t429, _), (retry_at, limit_at_retry) = seen
    assert retry_at - t429 >= 0.29
    assert limit_at_retry == client.settings.per_tenant_concurrency, "the hold paces; the limit stays"


def test_a_429_without_retry_after_during_a_hold_waits_for_the_hold_not_a_guess() -> None:
    """Two requests of one burst: one is told Retry-After, the other (Intune's habit) is not. The second
    retries when the tenant's hold ends instead of after its own, much longer, backoff."""
    arrived = threading.Barrier(2, timeout=5)
    seen: list[tuple[float, str, int]] = []
    lock = threading.Lock()
    answered: set[str] = set()

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        with lock:
            seen.append((time.monotonic(), path, len(answered)))
            fresh = path not in answered
            answered.add(path)
        if fresh:
            arrived.wait()  # both requests are on the wire before either is answered
            if "intents" in path:
                return graph_error(429, "TooManyRequests", "slow down", **{"Retry-After": "1.5"})
            time.sleep(0.1)  # answered after the hold was set (1.4 s of slack for a slow machine)
            return graph_error(429, "TooManyRequests", "slow down")
        return page([{"id": "x"}])

    client = _client(handler, backoff_base_s=6.0, backoff_cap_s=6.0)
    client._rand = lambda: 0.999  # a guess would be ~6 s
    reads = [
        threading.Thread(target=lambda k=k: list(client.iter_pages("tenant-a", k)))
        for k in ("endpointSecurityIntent", "deviceConfiguration")
    ]
    for t in reads:
        t.start()
    for t in reads:
        t.join(10)
    t0 = min(t for t, _, _ in seen)
    retry = [t - t0 for t, path, _ in seen[2:] if "deviceConfigurations" in path]
    assert retry and 1.45 <= retry[0] < 4.5, retry


def test_a_hold_longer_than_the_budget_does_not_make_a_header_less_429_give_up() -> None:
    """The tenant's hold is borrowed, not a promise the request made: if it does not fit the request's
    remaining retry budget, the request backs off as usual and still waits for the hold to end."""
    seen: list[float] = []
    client: GraphClient

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(time.monotonic())
        if len(seen) == 1:
            # Meanwhile another request of the tenant was told Retry-After 0.5 s (longer than this
            # request's whole 0.3 s budget); this one is refused without Retry-After.
            client._hold_tenant("t", 0.5)
            return graph_error(429, "TooManyRequests", "slow down")
        return page([{"id": "x"}])

    client = _client(handler, retry_budget_s=0.3)
    assert sum(len(p.items) for p in client.iter_pages("t", "deviceConfiguration")) == 1, "no give-up"
    assert seen[1] - seen[0] >= 0.45, "it still waited for the tenant's hold"


def test_a_retry_that_fails_before_it_is_sent_hands_its_reservation_back() -> None:
    """A throttled request reserves its tenant's next slot; if its retry fails before taking the slot,
    the reservation must go back, or every later request of the tenant would wait behind it forever."""
    calls = {"build": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if calls["build"] == 1:
            return graph_error(429, "TooManyRequests", "slow down", **{"Retry-After": "0.05"})
        return page([{"id": "x"}])

    client = _client(handler)
    original = client._http.build_request

    def build_request(method: str, url: str, **kwargs: object) -> httpx.Request:
        calls["build"] += 1
        if calls["build"] == 2:  # the throttled request's retry
            raise RuntimeError("failed before it was sent")
        return original(method, url, **kwargs)

    client._http.build_request = build_request  # type: ignore[method-assign]
    with pytest.raises(GraphError) as info:  # a defect inside paging fails the read with a code
        list(client.iter_pages("tenant-a", "deviceConfiguration"))
    assert info.value.code == ErrorCode.INTERNAL_ERROR and "RuntimeError" in info.value.message
    assert client._limit("tenant-a").reserved == 0
    later = threading.Thread(target=lambda: list(client.iter_pages("tenant-a", "mobileApp")), daemon=True)
    later.start()
    later.join(5)
    assert not later.is_alive(), "a later read of the tenant does not wait on a lost reservation"
