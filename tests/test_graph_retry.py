"""Retry policy and Retry-After parsing: pure functions, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantatlas_pipelines.graph.retry import RetryPolicy, backoff_s, next_delay, parse_retry_after

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        ("0", 0.0),
        ("2.128", 2.128),
        (" 7 ", 7.0),
        ("120", 120.0),
        (None, None),
        ("", None),
        ("-1", None),
        ("nan", None),
        ("inf", None),
        ("soon", None),
        ("Sat, 01 Mar 2025 12:00:30 GMT", 30.0),
        ("Saturday, 01-Mar-25 12:00:10 GMT", 10.0),  # RFC 850
        ("Sat Mar  1 12:00:05 2025", 5.0),  # asctime, no zone: GMT by definition
        ("Sat, 01 Mar 2025 11:59:00 GMT", 0.0),  # in the past: retry now
        ("Sat, 99 Foo 2025 99:00:00 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    result = parse_retry_after(value, NOW)
    assert result == (pytest.approx(expected) if expected is not None else None)


@given(st.integers(min_value=0, max_value=10**6))
def test_http_date_round_trip(seconds: int) -> None:
    header = format_datetime(NOW + timedelta(seconds=seconds), usegmt=True)
    assert parse_retry_after(header, NOW) == pytest.approx(seconds)


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_delta_seconds_round_trip(seconds: float) -> None:
    assert parse_retry_after(repr(seconds), NOW) == pytest.approx(seconds)


policies = st.builds(
    RetryPolicy,
    max_attempts=st.integers(1, 20),
    budget_s=st.floats(0, 1000),
    base_s=st.floats(0, 10),
    cap_s=st.floats(0, 100),
)


@given(policies, st.integers(1, 10_000), st.floats(0, 1, exclude_max=True))
def test_backoff_bounded_by_cap_and_exponential_ceiling(
    policy: RetryPolicy, attempt: int, rand: float
) -> None:
    delay = backoff_s(policy, attempt, rand)
    assert 0 <= delay <= policy.cap_s
    assert delay <= policy.base_s * 2 ** min(attempt - 1, 62) + 1e-9


def test_backoff_is_full_jitter() -> None:
    policy = RetryPolicy(base_s=1, cap_s=30)
    assert backoff_s(policy, 3, 0.0) == 0.0  # full jitter reaches zero...
    assert backoff_s(policy, 3, 0.999999) == pytest.approx(4.0, rel=1e-5)  # ...and the ceiling 1*2**2
    assert backoff_s(policy, 50, 0.5) == 15.0  # capped at 30, halved by jitter


@given(
    policies,
    st.integers(1, 25),
    st.floats(0, 2000),
    st.one_of(st.none(), st.floats(0, 2000)),
    st.floats(0, 1, exclude_max=True),
)
def test_next_delay_invariants(
    policy: RetryPolicy, attempt: int, waited: float, retry_after: float | None, rand: float
) -> None:
    delay = next_delay(policy, attempt, waited, retry_after, rand)
    remaining = policy.budget_s - waited
    if attempt >= policy.max_attempts:
        assert delay is None
        return
    if delay is None:  # only when the budget cannot hold the wait
        assert (retry_after is not None and retry_after > remaining) or (
            retry_after is None and remaining <= 0
        )
        return
    assert 0 <= delay <= remaining + 1e-9  # never sleeps past the budget
    if retry_after is not None:
        assert delay == retry_after  # Retry-After takes precedence and is honoured exactly
    else:
        assert delay <= policy.cap_s


def test_retry_after_beats_backoff_even_when_shorter_or_longer() -> None:
    policy = RetryPolicy(max_attempts=5, budget_s=60, base_s=10, cap_s=30)
    assert next_delay(policy, 1, 0, 0.25, 0.99) == 0.25
    assert next_delay(policy, 1, 0, 45.0, 0.0) == 45.0


def test_retry_after_beyond_budget_gives_up_now() -> None:
    policy = RetryPolicy(max_attempts=8, budget_s=10)
    assert next_delay(policy, 1, 0, 10.0, 0.5) == 10.0
    assert next_delay(policy, 1, 0, 10.5, 0.5) is None
    assert next_delay(policy, 2, 8.0, 3.0, 0.5) is None


def test_backoff_is_clipped_to_the_remaining_budget() -> None:
    policy = RetryPolicy(max_attempts=8, budget_s=5, base_s=100, cap_s=100)
    assert next_delay(policy, 1, 3.0, None, 0.9) == pytest.approx(2.0)
    assert next_delay(policy, 1, 5.0, None, 0.9) is None


def test_attempt_limits() -> None:
    policy = RetryPolicy(max_attempts=3, budget_s=100)
    assert next_delay(policy, 2, 0, None, 0.1) is not None
    assert next_delay(policy, 3, 0, None, 0.1) is None
    assert next_delay(policy, 2, 0, None, 0.1, max_attempts=2) is None  # tighter per-kind cap
    assert next_delay(policy, 2, 0, None, 0.1, max_attempts=10) is not None  # never looser


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(budget_s=-1)
