"""Per-tenant request concurrency that adapts to throttling (additive increase, multiplicative decrease).

A tenant's Graph budget (Intune: 1,000 requests per 20 s per app) is shared by every request we send it.
When Graph answers 429 without saying for how long, keeping four requests in flight only buys more 429s,
each paying a backoff: client.py halves the limit on such an answer, and it grows back by about one per
round of successful requests, up to the configured per-tenant concurrency. A 429 with Retry-After holds
the whole tenant instead (client.py) and leaves the limit alone. Together they pace a throttled tenant
close to the rate Graph allows.

Throttled requests go first: a request that was refused reserves the next free slot (client.py takes the
reservation before a Retry-After hold, after its own backoff otherwise), and new requests of the tenant
queue behind it. Without that, the others' traffic could take every slot the budget frees, and the same
request would be refused attempt after attempt until it gave up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class AdaptiveLimit:
    """At most `limit` requests in flight (1 <= limit <= maximum); thread-safe."""

    def __init__(self, maximum: int) -> None:
        if maximum < 1:
            raise ValueError("maximum must be at least 1")
        self.maximum = maximum
        self.limit = float(maximum)
        self.in_flight = 0
        self.reserved = 0  # throttled requests waiting to retry: they take the next slots
        self._cond = threading.Condition()

    @contextmanager
    def slot(self, reserved: bool = False) -> Iterator[None]:
        """Hold one in-flight slot; `reserved` consumes a reservation made by `reserve()`."""
        with self._cond:
            while self.in_flight >= max(1, int(self.limit)) or (not reserved and self.reserved):
                self._cond.wait()
            if reserved:
                self.reserved -= 1
            self.in_flight += 1
        try:
            yield
        finally:
            with self._cond:
                self.in_flight -= 1
                self._cond.notify_all()

    def throttled(self) -> None:
        """Graph said "too many": halve the limit (never below one request)."""
        with self._cond:
            self.limit = max(1.0, self.limit / 2)

    def succeeded(self) -> None:
        """A request went through: grow the limit by 1/limit (about +1 per round of requests)."""
        with self._cond:
            if self.limit < self.maximum:
                self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
                self._cond.notify_all()

    def reserve(self) -> None:
        """A throttled request will retry: new requests wait behind it."""
        with self._cond:
            self.reserved += 1

    def cancel(self) -> None:
        """A reservation that will not be used (the retry gave up or failed before sending)."""
        with self._cond:
            self.reserved -= 1
            self._cond.notify_all()
