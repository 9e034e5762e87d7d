"""How long to wait before retrying a Graph request, as pure functions.

Rules (Microsoft's throttling guidance, and what users of other Intune tools suffered without them):
- a `Retry-After` from the service wins: it is honoured exactly, never shortened;
- otherwise capped exponential backoff with FULL jitter (`uniform(0, min(cap, base * 2**(n-1)))`), so
  parallel workers of one tenant do not retry in lock-step;
- every request has a total wait budget and a maximum number of attempts; when the service asks for
  more than the remaining budget we give up at once instead of sleeping only to fail afterwards.

No clock, sleep or randomness is taken from the environment here: callers pass `now` and `rand` in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    """Limits for one request: attempts (including the first), total seconds of waiting, backoff shape."""

    max_attempts: int = 8
    budget_s: float = 120.0
    base_s: float = 0.5
    cap_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not (self.budget_s >= 0 and self.base_s >= 0 and self.cap_s >= 0):
            raise ValueError("budget_s, base_s and cap_s must be non-negative")


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait according to a `Retry-After` header value, or None if absent or unusable.

    Accepts delta-seconds, fractional too (Graph sends e.g. "2.128"), or an HTTP date (RFC 9110), which
    is measured against `now` (timezone-aware, UTC); a date in the past means "now" (0.0). Negative,
    non-finite or unparseable values are ignored (None) so the caller falls back to backoff.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # RFC 850 / asctime forms carry no zone; HTTP dates are always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def backoff_s(policy: RetryPolicy, attempt: int, rand: float) -> float:
    """Full-jitter exponential backoff after failed attempt number `attempt` (1-based); `rand` in [0, 1)."""
    exponent = min(max(attempt - 1, 0), 62)  # no float overflow for absurd attempt numbers
    ceiling = min(policy.cap_s, policy.base_s * (2.0**exponent))
    return min(max(rand, 0.0), 1.0) * ceiling


def next_delay(
    policy: RetryPolicy,
    attempt: int,
    waited_s: float,
    retry_after_s: float | None,
    rand: float,
    max_attempts: int | None = None,
) -> float | None:
    """Seconds to sleep before the next attempt, or None to give up now.

    `attempt` is the number of attempts made so far, `waited_s` what this request already slept,
    `max_attempts` an optional tighter cap for this failure kind (e.g. plain 500s).
    """
    limit = policy.max_attempts if max_attempts is None else min(policy.max_attempts, max_attempts)
    if attempt >= limit:
        return None
    remaining = policy.budget_s - waited_s
    if retry_after_s is not None:
        # The service told us when it will serve us; waiting less only burns quota, so honour it
        # or stop now if it does not fit the budget.
        return retry_after_s if retry_after_s <= remaining else None
    if remaining <= 0:
        return None
    return min(backoff_s(policy, attempt, rand), remaining)
