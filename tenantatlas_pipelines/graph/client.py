"""GraphClient: read Intune collections page by page, surviving throttling, flaky pages and token expiry.

One client per process, shared by threads and reused across tenants and runs: it owns one httpx
connection pool (HTTP/1.1 keep-alive), one token provider (MSAL apps per tenant) and one semaphore per
tenant that bounds concurrent Graph requests for that tenant (Intune's limits are per tenant). A
collection read is a generator, so memory stays at one page whatever the collection size; it either
yields every page or raises a GraphError, never ends early without saying so.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import httpx

from ..errors import ErrorCode, TenantAtlasError
from ..policy_types import get_policy_type
from .auth import USER_AGENT, TokenProvider
from .errors import (
    RETRYABLE_STATUSES,
    SERVER_ERROR_ATTEMPTS,
    SHORT_RETRY_STATUSES,
    GraphError,
    error_for_response,
    is_invalid_token,
    safe_url,
)
from .limiter import AdaptiveLimit
from .paging import LoopGuard, check_next_link, decode_page, first_url
from .read_ahead import ReadAhead, body_reader
from .retry import RetryPolicy, next_delay, parse_retry_after
from .settings import GraphSettings
from .tls import build_ssl_context

log = logging.getLogger(__name__)


# A GUID or a domain name (Entra accepts both); anything else must not reach a URL path.
_TENANT = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$")


# Relative collection paths iter_collection accepts: segments of letters, digits, '.', '_', '-' that
# do not start with '.', so neither a query string nor '..' can be smuggled into the URL.
_COLLECTION_PATH = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(?:/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")
GRAPH_API_VERSIONS = ("v1.0", "beta")


# How a 2xx body is decoded: a collection page by default, a $batch answer for batches.
_Decode = Callable[[Iterable[bytes], str], tuple[Any, str | None]]
BATCH_LIMIT = 20  # requests per $batch (Graph's limit)
def _decode_batch(chunks: Iterable[bytes], url: str) -> tuple[list[Any], str | None]:
    """The inner responses of a `$batch` answer, or GRAPH_INVALID_RESPONSE."""
    try:
        doc = json.loads(b"".join(chunks))
    except ValueError:
        raise GraphError(ErrorCode.GRAPH_INVALID_RESPONSE, f"POST {safe_url(url)} returned a body that is "
                         "not valid JSON") from None
    responses = doc.get("responses") if isinstance(doc, dict) else None
    if not isinstance(responses, list) or not all(isinstance(r, dict) for r in responses):
        raise GraphError(
            ErrorCode.GRAPH_INVALID_RESPONSE, f"POST {safe_url(url)} returned no 'responses' list"
        )
    return responses, None


def _checked_tenant(tenant_id: str) -> str:
    if not isinstance(tenant_id, str) or not _TENANT.match(tenant_id):
        raise GraphError(ErrorCode.INVALID_TENANT_ID, f"not a tenant id or domain: {str(tenant_id)[:80]!r}")
    return tenant_id


class TokenSource(Protocol):
    """What the client needs from authentication (TokenProvider; a stub in unit tests)."""

    def token(self, tenant_id: str, *, force_refresh: bool = False) -> str: ...

    def close(self) -> None: ...


@dataclass
class RequestStats:
    """Thread-safe counters for one sync run (or any scope the caller chooses).

    requests: HTTP requests sent to Graph (token requests are not counted: MSAL owns them);
    throttled: answers that told us to slow down — every 429, and 503s that carried Retry-After;
    retries: requests repeated after a retryable failure (including the one forced token refresh);
    pages: pages successfully read; wait_s: seconds slept before retries.
    """

    requests: int = 0
    throttled: int = 0
    retries: int = 0
    pages: int = 0
    wait_s: float = 0.0

    def __post_init__(self) -> None:
        # Not a dataclass field, so dataclasses.asdict()/replace() keep working on the counters.
        self._lock = threading.Lock()

    def add(self, *, requests: int = 0, throttled: int = 0, retries: int = 0, pages: int = 0,
            wait_s: float = 0.0) -> None:
        with self._lock:
            self.requests += requests
            self.throttled += throttled
            self.retries += retries
            self.pages += pages
            self.wait_s += wait_s

    def snapshot(self) -> dict[str, int | float]:
        """A consistent copy, e.g. for Dagster metadata."""
        with self._lock:
            return {"requests": self.requests, "throttled": self.throttled, "retries": self.retries,
                    "pages": self.pages, "wait_s": round(self.wait_s, 3)}


@dataclass
class _Attempts:
    """Mutable state of one page's attempts that its caller must see if they end in an exception."""

    reserved: bool = False


@dataclass(frozen=True)
class Page:
    """One page of a collection: the raw decoded items (non-dicts included) and the URL it came from.

    `url` is the full request URL (it may carry a skiptoken): use it for debugging, never in stored
    errors; `number` counts pages from 1 within one collection read.
    """

    items: list[Any]
    url: str
    number: int = 1


class GraphClient:
    """Microsoft Graph reader for many tenants; thread-safe; close() or use as a context manager."""

    def __init__(
        self,
        settings: GraphSettings,
        *,
        token_source: TokenSource | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        rand: Callable[[], float] = random.random,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        ssl_context = build_ssl_context(settings.ca_bundle)
        self._tokens: TokenSource = token_source or TokenProvider(settings, ssl_context)
        self._policy = RetryPolicy(
            max_attempts=settings.max_attempts,
            budget_s=settings.retry_budget_s,
            base_s=settings.backoff_base_s,
            cap_s=settings.backoff_cap_s,
        )
        pool = max(8, settings.per_tenant_concurrency * 4)
        self._http = httpx.Client(
            verify=ssl_context,
            transport=transport,
            timeout=httpx.Timeout(
                connect=settings.connect_timeout,
                read=settings.read_timeout,
                write=settings.read_timeout,
                pool=settings.read_timeout,
            ),
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool, keepalive_expiry=30),
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            follow_redirects=False,
            http2=False,
        )
        self._sleep, self._now, self._rand, self._monotonic = sleep, now, rand, monotonic
        self._limits: dict[str, AdaptiveLimit] = {}
        # Requests in flight across all tenants. Held only while a request is on the wire, never while
        # a throttled tenant waits, so one rate-limited tenant cannot starve the others.
        self._in_flight = threading.BoundedSemaphore(settings.global_concurrency)
        self._guard = threading.Lock()
        # Per tenant: monotonic time before which no request may start. A 429 is about the tenant's
        # budget, not one request: when one thread is told how long to wait (Retry-After), all of that
        # tenant's threads wait, instead of each spending its own 429s finding out.
        self._not_before: dict[str, float] = {}

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        """Release connections and cached MSAL apps."""
        self._http.close()
        self._tokens.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- public API -----------------------------------------------------------------------------
    @property
    def per_tenant_concurrency(self) -> int:
        """How many Graph requests per tenant run at once (callers size their worker pools by it)."""
        return self.settings.per_tenant_concurrency

    def acquire_token(self, tenant_id: str) -> None:
        """Fail fast: get (or reuse) a token for the tenant, raising an auth GraphError if we cannot."""
        self._tokens.token(_checked_tenant(tenant_id))

    def iter_pages(
        self,
        tenant_id: str,
        policy_type_key: str,
        *,
        stats: RequestStats | None = None,
        query: Mapping[str, str] | None = None,
        full_strings: bool = False,
        read_ahead: bool = False,
    ) -> Iterator[Page]:
        """Every page of the type's collection for the tenant, following nextLinks verbatim.

        `query` adds options to the first request (e.g. `{"$expand": "assignments"}`; nextLinks repeat
        them); `full_strings` keeps long strings whole instead of cutting them (snapshots keep content);
        `read_ahead` requests the next pages while this one is decoded (see `_iter_url`).
        Raises GraphError when the collection cannot be read completely (after retries where they
        make sense); pages already yielded stay valid, but the read as a whole is incomplete.
        """
        _checked_tenant(tenant_id)
        policy_type = get_policy_type(policy_type_key)
        url = first_url(self.settings.graph_url, policy_type)
        if query:
            url += ("&" if "?" in url else "?") + urlencode(dict(query), quote_via=quote, safe="$,'()")
        decode = functools.partial(decode_page, max_string_chars=None) if full_strings else decode_page
        yield from self._iter_url(tenant_id, url, stats, decode, read_ahead)

    def post_page(
        self, tenant_id: str, path: str, body: Mapping[str, Any], api_version: str = "v1.0", *,
        stats: RequestStats | None = None,
    ) -> list[Any]:
        """POST a JSON body to an action that answers one collection page (e.g.
        `directoryObjects/getByIds`); the same retries as a page read. Returns the page's items."""
        _checked_tenant(tenant_id)
        if api_version not in GRAPH_API_VERSIONS or not _COLLECTION_PATH.match(path):
            raise ValueError(f"not a Graph action path: {api_version}/{path[:80]!r}")
        url = f"{self.settings.graph_url}/{api_version}/{path}"
        stats = stats if stats is not None else RequestStats()
        items, _ = self._get_page(tenant_id, url, stats, "POST", json.dumps(dict(body)).encode(), decode_page)
        return items

    def batch_get(
        self, tenant_id: str, urls: Sequence[str], api_version: str = "beta", *,
        stats: RequestStats | None = None,
    ) -> list[tuple[int, Any]]:
        """GET up to 20 relative URLs (`/deviceManagement/...`) in one `$batch`; `(status, body)` per URL,
        in order. Inner 429/503/504 answers are retried on their own Retry-After (every inner request
        counts against the tenant's limit), within the client's attempt and time budget; what is still
        failing after that is returned as is (status and body) for the caller to judge."""
        _checked_tenant(tenant_id)
        if not 0 < len(urls) <= BATCH_LIMIT:
            raise ValueError(f"a $batch takes 1 to {BATCH_LIMIT} requests, not {len(urls)}")
        stats = stats if stats is not None else RequestStats()
        endpoint = f"{self.settings.graph_url}/{api_version}/$batch"
        answers: dict[int, tuple[int, Any]] = {}
        pending = list(range(len(urls)))
        attempt, waited = 0, 0.0
        while pending:
            attempt += 1
            requests = [{"id": str(i), "method": "GET", "url": urls[i]} for i in pending]
            body = json.dumps({"requests": requests})
            responses, _ = self._get_page(tenant_id, endpoint, stats, "POST", body.encode(), _decode_batch)
            retry: list[int] = []
            hints: list[float] = []
            for response in responses:
                index = int(response.get("id", -1)) if str(response.get("id", "")).isdigit() else -1
                if index not in pending:
                    continue
                status = int(response.get("status") or 0)
                answers[index] = (status, response.get("body"))
                if status in RETRYABLE_STATUSES:
                    retry.append(index)
                    headers = {str(k).lower(): v for k, v in (response.get("headers") or {}).items()}
                    hint = parse_retry_after(headers.get("retry-after"), self._now())
                    if hint is not None:
                        hints.append(hint)
                    if status == 429:
                        stats.add(throttled=1)
            missing = [i for i in pending if i not in answers]
            if missing:
                raise GraphError(
                    ErrorCode.GRAPH_INVALID_RESPONSE,
                    f"POST {safe_url(endpoint)} answered without {len(missing)} of its requests",
                )
            if not retry:
                break
            delay = next_delay(self._policy, attempt, waited, max(hints) if hints else None, self._rand())
            if delay is None:
                break  # out of attempts or budget: the caller sees the inner statuses
            log.info("tenant %s: %d inner $batch request(s) throttled or failed; retry in %.2fs",
                     tenant_id, len(retry), delay)
            stats.add(retries=len(retry), wait_s=delay)
            waited += delay
            if hints:
                self._hold_tenant(tenant_id, delay)  # the tenant's budget, not just these requests
                self._wait_for_tenant(tenant_id)
            else:
                self._sleep(delay)
            for i in retry:
                del answers[i]
            pending = retry
        return [answers[i] for i in range(len(urls))]

    def iter_collection(
        self, tenant_id: str, path: str, api_version: str = "v1.0", *, stats: RequestStats | None = None
    ) -> Iterator[Page]:
        """Every page of any Graph collection outside the policy-type registry (e.g. the partner's
        `tenantRelationships/delegatedAdminCustomers`), with the same retries, paging and loop rules
        as iter_pages. `path` is relative to the version segment and carries no query string.
        """
        _checked_tenant(tenant_id)
        if api_version not in GRAPH_API_VERSIONS:
            raise ValueError(f"api_version must be one of {GRAPH_API_VERSIONS}, got {api_version!r}")
        if not _COLLECTION_PATH.match(path):
            raise ValueError(f"not a Graph collection path: {path[:80]!r}")
        yield from self._iter_url(tenant_id, f"{self.settings.graph_url}/{api_version}/{path}", stats)

    def _iter_url(
        self, tenant_id: str, first: str, stats: RequestStats | None, decode: _Decode | None = None,
        read_ahead: bool = False,
    ) -> Iterator[Page]:
        """The paging loop shared by iter_pages and iter_collection, from a collection's first URL.

        Every failure of the read itself is a TenantAtlasError with a code, so it fails this one
        collection (its policy type), never the caller's whole run: the known ones are GraphErrors
        raised where they are detected (paging.py); anything else (a defect) is logged with its
        traceback and reported as INTERNAL_ERROR of the read. Exceptions of the consumer between two
        pages are not this generator's and are not caught here.

        `read_ahead`: the requests go out ahead of the decoding (read_ahead.py says how, and why a
        guessed nextLink never costs a page); every rule here stays the same. A held body is decoded by
        `decode` like any other (json.loads on the held bytes took half the CPU but raised the peak RSS
        of a snapshot by half: bench/snapshot.py peak_rss_ratio).
        """
        if self._http.is_closed:  # a caller's mistake, not a failure of the read: stays loud
            raise RuntimeError("the GraphClient is closed")
        stats = stats if stats is not None else RequestStats()
        decode = decode or decode_page
        ahead: ReadAhead | None = None
        if read_ahead:
            read = body_reader(decode)
            ahead = ReadAhead(lambda u: self._get_page(tenant_id, u, stats, "GET", None, read)[0],
                              self._may_follow)
        url: str | None = first
        guard = LoopGuard()
        number = 0
        try:
            while url is not None:
                try:
                    if ahead is None:
                        items, next_link = self._get_page(tenant_id, url, stats, "GET", None, decode)
                    else:
                        items, next_link = ahead.take(url).page(decode, url)
                    number += 1
                    guard.check_page(url, items)
                    stats.add(pages=1)
                except TenantAtlasError:
                    raise
                except Exception as exc:
                    raise self._unexpected(url, exc) from None
                page = Page(items=items, url=url, number=number)
                del items  # hold no page while the next one is fetched: memory stays one page deep
                yield page  # a good page is the caller's before its nextLink is judged: nothing is lost
                del page
                if next_link is not None:
                    try:
                        check_next_link(next_link, self.settings.graph_url, url)
                        guard.check_next(url, next_link)
                    except TenantAtlasError:
                        raise
                    except Exception as exc:
                        raise self._unexpected(url, exc) from None
                url = next_link
        finally:
            if ahead is not None:
                ahead.close()

    def _may_follow(self, url: str, guess: str) -> bool:
        """Whether a nextLink read off a body's tail may be requested before the body is decoded: it
        must leave Graph's origin no more than a decoded one may."""
        try:
            check_next_link(guess, self.settings.graph_url, url)
        except TenantAtlasError:
            return False
        return True

    @staticmethod
    def _unexpected(url: str, exc: Exception) -> GraphError:
        """A defect while reading one collection: logged with its traceback, that collection's failure."""
        log.error("reading GET %s failed unexpectedly", safe_url(url), exc_info=exc)
        return GraphError(
            ErrorCode.INTERNAL_ERROR,
            f"reading GET {safe_url(url)} failed unexpectedly ({type(exc).__name__}); the "
            "collection was not read completely",
        )

    # -- one request, with retries ----------------------------------------------------------------
    def _limit(self, tenant_id: str) -> AdaptiveLimit:
        with self._guard:
            limit = self._limits.get(tenant_id)
            if limit is None:
                limit = self._limits[tenant_id] = AdaptiveLimit(self.settings.per_tenant_concurrency)
            return limit

    def _send(
        self, tenant_id: str, url: str, token: str, stats: RequestStats, state: _Attempts,
        method: str = "GET", body: bytes | None = None, decode: _Decode = decode_page,
    ) -> tuple[Any, str | None] | httpx.Response:
        """One GET: a 2xx answer is decoded while its body streams in and returned as
        `(items, next_link)`; any other answer is returned as a response with its (small) body read.

        The body is read inside the tenant's semaphore (a request counts until its last byte), and the
        response is always closed: one whose body was not read to the end drops its connection.
        Transport errors while the body streams propagate like those of the request itself; the
        items decoded so far are discarded with the exception (a page is all or nothing). A reservation
        in `state` is spent when the slot is taken, not before: anything failing earlier leaves it to
        _get_page to hand back, so a tenant's queue can never wait on a reservation nobody holds.
        """
        headers = {"Authorization": f"Bearer {token}", "client-request-id": str(uuid.uuid4())}
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = self._http.build_request(method, url, headers=headers, content=body)
        with self._limit(tenant_id).slot(state.reserved):
            state.reserved = False
            with self._in_flight:
                stats.add(requests=1)
                response = self._http.send(request, stream=True)
                try:
                    if 200 <= response.status_code < 300:
                        try:
                            return decode(response.iter_bytes(), url)
                        except httpx.DecodingError as exc:  # a corrupt gzip body: a defect, not transport
                            raise GraphError(
                                ErrorCode.GRAPH_INVALID_RESPONSE,
                                f"{method} {safe_url(url)} returned a body that cannot be decoded "
                                f"({type(exc).__name__})",
                            ) from None
                    response.read()
                    return response
                finally:
                    response.close()

    def _get_page(
        self, tenant_id: str, url: str, stats: RequestStats, method: str = "GET", body: bytes | None = None,
        decode: _Decode = decode_page,
    ) -> tuple[Any, str | None]:
        """One page, retrying 429/5xx/transport failures per the retry policy."""
        limit = self._limit(tenant_id)
        state = _Attempts()
        try:
            return self._attempt_page(tenant_id, url, stats, limit, state, method, body, decode)
        finally:
            if state.reserved:  # gave up (or failed) while holding a reservation: hand it back
                limit.cancel()

    def _attempt_page(
        self, tenant_id: str, url: str, stats: RequestStats, limit: AdaptiveLimit, state: _Attempts,
        method: str = "GET", body: bytes | None = None, decode: _Decode = decode_page,
    ) -> tuple[Any, str | None]:
        attempt = 0
        waited = 0.0
        refreshed = False
        while True:
            attempt += 1
            self._wait_for_tenant(tenant_id)
            token = self._tokens.token(tenant_id)
            retry_after: float | None = None
            borrowed: float | None = None  # no Retry-After, but the tenant is held: wait for that
            attempt_cap: int | None = None
            tenant_wide = False  # a throttling answer: the whole tenant waits, not just this request
            try:
                answer = self._send(tenant_id, url, token, stats, state, method, body, decode)
            except httpx.TimeoutException as exc:
                error = GraphError(
                    ErrorCode.GRAPH_TIMEOUT,
                    f"{method} {safe_url(url)} timed out ({type(exc).__name__})",
                    retryable=True,
                )
            except httpx.TransportError as exc:
                error = GraphError(
                    ErrorCode.GRAPH_NETWORK,
                    f"{method} {safe_url(url)} failed on the network ({type(exc).__name__})",
                    retryable=True,
                )
            else:
                if not isinstance(answer, httpx.Response):
                    limit.succeeded()
                    return answer  # a 2xx page, decoded
                response = answer
                status = response.status_code
                if status == 401 and not refreshed and is_invalid_token(status, response.content):
                    # A token revoked or expired early: get a fresh one once, then give up.
                    refreshed = True
                    attempt -= 1  # the refresh does not use up an attempt
                    stats.add(retries=1)
                    log.info("Graph rejected the token for tenant %s; refreshing it once", tenant_id)
                    self._tokens.token(tenant_id, force_refresh=True)
                    continue
                error = error_for_response(status, response.content, method, url)
                retry_after = parse_retry_after(response.headers.get("Retry-After"), self._now())
                if status == 429 or (status == 503 and retry_after is not None):
                    stats.add(throttled=1)
                    tenant_wide = True
                    if retry_after is None:
                        # Another request of this tenant was told when its budget frees: that beats
                        # a guess (Intune leaves Retry-After off some 429s of the same burst).
                        borrowed = self._hold_remaining(tenant_id) or None
                if status not in RETRYABLE_STATUSES:
                    raise error
                if status in SHORT_RETRY_STATUSES:
                    attempt_cap = SERVER_ERROR_ATTEMPTS
            rand = self._rand()
            delay = None
            if borrowed is not None:  # a hold that does not fit the budget is no reason to give up
                delay = next_delay(self._policy, attempt, waited, borrowed, rand, attempt_cap)
            if delay is None:
                borrowed = None
                delay = next_delay(self._policy, attempt, waited, retry_after, rand, attempt_cap)
            if delay is None:
                raise error.with_message(
                    f"{error.message}; {self._give_up_reason(attempt, attempt_cap, waited, retry_after)}"
                ) from None
            log.info(
                "tenant %s: %s [%s]; retry %d in %.2fs%s", tenant_id, safe_url(url), error.code, attempt,
                delay,
                " (Retry-After)" if retry_after is not None else " (the tenant's hold)" if borrowed else "",
            )
            stats.add(retries=1, wait_s=delay)
            waited += delay
            if tenant_wide and (retry_after is not None or borrowed is not None):
                # The service said when the tenant's budget frees: every request of the tenant waits
                # that long (the loop's _wait_for_tenant does the waiting) and this one goes first.
                # The limit stays: the hold is the pacing, and a tenant that resumed at a halved limit
                # spent its fresh budget at a fraction of the speed it allows.
                limit.reserve()
                state.reserved = True
                self._hold_tenant(tenant_id, delay)
            else:
                # Throttled without being told for how long: the halved limit is how we find the
                # tenant's rate, and our guess (backoff) holds only this request: holding the whole
                # tenant on a guess stalled it long after its budget had freed. It still retries
                # ahead of new requests of the tenant.
                if tenant_wide:
                    limit.throttled()
                self._sleep(delay)
                if tenant_wide:
                    limit.reserve()
                    state.reserved = True

    def _hold_tenant(self, tenant_id: str, seconds: float) -> None:
        with self._guard:
            until = self._monotonic() + seconds
            self._not_before[tenant_id] = max(self._not_before.get(tenant_id, 0.0), until)

    def _hold_remaining(self, tenant_id: str) -> float:
        """Seconds the tenant is still held for (0.0 when it is not)."""
        with self._guard:
            return max(0.0, self._not_before.get(tenant_id, 0.0) - self._monotonic())

    def _wait_for_tenant(self, tenant_id: str) -> None:
        delay = self._hold_remaining(tenant_id)
        if delay > 0:
            self._sleep(delay)

    def _give_up_reason(
        self, attempt: int, attempt_cap: int | None, waited: float, retry_after: float | None
    ) -> str:
        limit = min(self._policy.max_attempts, attempt_cap or self._policy.max_attempts)
        if attempt >= limit:
            return f"gave up after {attempt} attempt(s) and {waited:.1f}s of waiting"
        if retry_after is not None:
            return (
                f"Retry-After {retry_after:g}s exceeds the remaining retry budget "
                f"({self._policy.budget_s - waited:.1f}s of {self._policy.budget_s:g}s); gave up after "
                f"{attempt} attempt(s)"
            )
        return f"retry budget of {self._policy.budget_s:g}s used up after {attempt} attempt(s)"
