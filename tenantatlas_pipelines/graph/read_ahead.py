"""The requests of one collection read, sent ahead of its decoding (GraphClient.iter_pages(read_ahead=True)).

A collection's pages come one after the other: page n+1 can be asked for only with page n's nextLink,
which Graph writes after `value`, at the very end of the body. Waiting for each body to be decoded (and
for its objects to be stored) before asking for the next put all of that on the read's critical path.
Here one helper thread receives each body whole, reads the nextLink off its last bytes
(`paging.tail_next_link`) and sends the request for it at once, up to `depth` bodies ahead of the
reader; the reader decodes each body and only then takes the next one.

The guess is only a guess: the decoded page's own nextLink decides which body is taken next. A guess is
requested only if it passes what the decoded link will have to pass (`may_follow`: Graph's origin), is
not the link it came from and was not requested before in this read. When the decoded link differs from
the guess (a body that is not what its tail looks like), every body ahead is dropped and the decoded
link is requested: one request more, never a page lost or taken from the wrong link. A failed request
raises where its page is taken, as it would have without read-ahead.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .paging import tail_next_link

# A body read ahead is held as bytes until it is decoded; a larger one is decoded while it streams
# instead (no guess, no read-ahead for it), so memory stays bounded by this times the depth.
READ_AHEAD_MAX_BYTES = 32 * 1024 * 1024
# Bodies received ahead of the reader at most (besides the one it decodes).
READ_AHEAD_DEPTH = 2

Decoded = tuple[list[Any], str | None]


@dataclass(frozen=True)
class Body:
    """A 2xx page body as received, or — past READ_AHEAD_MAX_BYTES — already decoded."""

    raw: bytes | None
    decoded: Decoded | None = None

    def page(self, decode: Callable[[Iterable[bytes], str], Decoded], url: str) -> Decoded:
        """`(items, next_link)`: decoded already, or now from the bytes held, with `decode`."""
        if self.raw is not None:
            return decode((self.raw,), url)
        if self.decoded is None:
            raise ValueError("a Body holds its bytes or its decoded page")
        return self.decoded


def body_reader(
    decode: Callable[[Iterable[bytes], str], Decoded]
) -> Callable[[Iterable[bytes], str], tuple[Body, None]]:
    """A body decoder for GraphClient._send that keeps the body as bytes (a `Body`), or decodes it with
    `decode` as it streams once it outgrows READ_AHEAD_MAX_BYTES."""

    def read(chunks: Iterable[bytes], url: str) -> tuple[Body, None]:
        limit = READ_AHEAD_MAX_BYTES
        held: list[bytes] = []
        size = 0
        stream = iter(chunks)
        for chunk in stream:
            held.append(chunk)
            size += len(chunk)
            if size > limit:
                return Body(None, decode(itertools.chain(held, stream), url)), None
        return Body(b"".join(held)), None

    return read


class ReadAhead:
    """One collection read's requests: `take(url)` gives the body of `url`, requested ahead when a
    previous body's tail named it. Not shared between reads; `close()` drops what is still ahead."""

    def __init__(
        self, fetch: Callable[[str], Body], may_follow: Callable[[str, str], bool],
        depth: int = READ_AHEAD_DEPTH,
    ) -> None:
        self._fetch = fetch
        self._may_follow = may_follow
        self._depth = depth
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graph-read-ahead")
        self._lock = threading.Lock()
        self._ahead: dict[str, Future[Body]] = {}  # requested (by a guess), not taken yet
        self._requested: set[str] = set()  # every guess requested in this read: never one twice
        self._held_back: tuple[str, int] | None = None  # a guess waiting for room, with its epoch
        self._epoch = 0  # bumped when a guess turns out wrong: requests of older epochs guess no more
        self._closed = False

    def take(self, url: str) -> Body:
        """The body of `url` (raising what its request raised), from the requests ahead if one of them
        was for `url`; otherwise everything ahead is dropped and `url` is requested now."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the read-ahead is closed")
            future = self._ahead.pop(url, None)
            stale: list[Future[Body]] = []
            if future is None:
                stale = list(self._ahead.values())
                self._ahead.clear()
                self._held_back = None
                self._epoch += 1
                future = self._pool.submit(self._run, url, self._epoch)
            self._send_held_back()
        for request in stale:  # a wrong guess: its answer is dropped whatever it was
            if not request.cancel():
                with contextlib.suppress(Exception):
                    request.result()
        return future.result()

    def close(self) -> None:
        """Drop every body ahead; a request on the wire finishes on its own and is dropped."""
        with self._lock:
            self._closed = True
            self._ahead.clear()
            self._held_back = None
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self, url: str, epoch: int) -> Body:
        body = self._fetch(url)
        if body.raw is not None:
            guess = tail_next_link(body.raw)
            if guess is not None:
                self._guessed(url, guess, epoch)
        return body

    def _guessed(self, url: str, guess: str, epoch: int) -> None:
        with self._lock:
            if (self._closed or epoch != self._epoch or guess == url or guess in self._requested
                    or not self._may_follow(url, guess)):
                return
            self._requested.add(guess)
            self._held_back = (guess, epoch)
            self._send_held_back()

    def _send_held_back(self) -> None:
        """Request the guess held back, if there is room ahead (the caller holds the lock)."""
        if self._held_back is None or self._closed or len(self._ahead) >= self._depth:
            return
        guess, epoch = self._held_back
        self._held_back = None
        if epoch == self._epoch:
            self._ahead[guess] = self._pool.submit(self._run, guess, epoch)
