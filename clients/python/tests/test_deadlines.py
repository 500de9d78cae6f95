"""One deadline per call, retries included, in both clients, and the defaults every Council client
shares (clients/README or the repository README has the table).

The proxy holds every answer for 1 s and then drops the connection (UNAVAILABLE), on every
connection: each attempt costs 1 s. With a 2.5 s timeout the call makes about three attempts and
ends at 2.5 s; a deadline per attempt would instead allow four attempts of 1 s each and more.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import grpc
import pytest

import council_client as cc
from council_client import aio
from faulty_proxy import FaultyProxy
from support import low_risk

HOLD = 1.0
TIMEOUT = 2.5
SLACK = 0.8  # a per-attempt deadline would take at least 4 * HOLD = 4 s


def test_the_defaults_are_those_of_every_council_client() -> None:
    assert cc.DEFAULT_TIMEOUT == 30.0
    assert cc.DEFAULT_REVIEW_TIMEOUT == 60.0
    assert cc.DEFAULT_GUARD_TIMEOUT == 600.0
    policy = cc.RetryPolicy()
    assert (policy.attempts, policy.initial_backoff, policy.max_backoff, policy.multiplier) == (
        4,
        0.1,
        2.0,
        2.0,
    )
    # Full jitter: any wait from 0 up to the backoff of the attempt, never more.
    delays = [policy.delay(n) for n in (1, 2, 3, 10) for _ in range(200)]
    assert all(0 <= d <= 2.0 for d in delays)
    assert max(policy.delay(1) for _ in range(200)) <= 0.1
    assert min(policy.delay(3) for _ in range(200)) < 0.1  # not only the upper half
    with cc.connect("127.0.0.1:1") as sync:
        assert (sync.timeout, sync.review_timeout, sync.retry) == (30.0, 60.0, cc.RetryPolicy())
    with pytest.raises(ValueError):
        cc.RetryPolicy(attempts=0)


class Attempts:
    def __init__(self) -> None:
        self.retries: list[tuple[str, int]] = []
        self.policy = cc.RetryPolicy(on_retry=self.on_retry)  # the default policy otherwise

    def on_retry(self, method: str, attempt: int, error: cc.CouncilError, _delay: float) -> None:
        assert error.code is grpc.StatusCode.UNAVAILABLE
        self.retries.append((method, attempt))


def _check(started: float, err: cc.CouncilError, attempts: Attempts, method: str) -> None:
    elapsed = time.monotonic() - started
    # DeadlineExceeded when the deadline cut the last attempt short; Unavailable when the last
    # wait before another attempt would have reached it.
    assert isinstance(err, (cc.DeadlineExceeded, cc.Unavailable)), err
    assert elapsed < TIMEOUT + SLACK, f"{method} took {elapsed:.2f} s with timeout={TIMEOUT}"
    assert elapsed >= HOLD  # at least one attempt waited out its held answer
    assert len(attempts.retries) >= 1 and {m for m, _ in attempts.retries} == {method}


@pytest.mark.parametrize("call", ["unary", "review"])
def test_sync_calls_end_at_their_one_deadline_across_retries(
    addr: str, new_id: Callable[[str], str], call: str
) -> None:
    attempts = Attempts()
    with FaultyProxy(addr, hold_replies_for=HOLD) as proxy:
        with cc.connect(proxy.address, retry=attempts.policy) as flaky:
            started = time.monotonic()
            with pytest.raises(cc.CouncilError) as err:
                if call == "unary":
                    flaky.reviewers(timeout=TIMEOUT)
                else:
                    _ = flaky.review(low_risk(new_id("s")), timeout=TIMEOUT).decision
            method = "ListReviewers" if call == "unary" else "ReviewSuggestion"
            _check(started, err.value, attempts, method)
        assert proxy.cuts >= 2


@pytest.mark.asyncio
@pytest.mark.parametrize("call", ["unary", "review"])
async def test_asyncio_calls_end_at_their_one_deadline_across_retries(
    addr: str, new_id: Callable[[str], str], call: str
) -> None:
    attempts = Attempts()
    with FaultyProxy(addr, hold_replies_for=HOLD) as proxy:
        async with aio.connect(proxy.address, retry=attempts.policy) as flaky:
            started = time.monotonic()
            pending: Awaitable[object] = (
                flaky.reviewers(timeout=TIMEOUT)
                if call == "unary"
                else flaky.review(low_risk(new_id("s")), timeout=TIMEOUT).decision
            )
            with pytest.raises(cc.CouncilError) as err:
                await pending
            method = "ListReviewers" if call == "unary" else "ReviewSuggestion"
            _check(started, err.value, attempts, method)
        assert proxy.cuts >= 2


@pytest.mark.asyncio
async def test_the_client_review_timeout_bounds_a_review_across_retries(
    addr: str, new_id: Callable[[str], str]
) -> None:
    """No timeout on the call: the client's ``review_timeout`` is the one deadline."""
    attempts = Attempts()
    with FaultyProxy(addr, hold_replies_for=HOLD) as proxy:
        async with aio.connect(
            proxy.address, retry=attempts.policy, review_timeout=TIMEOUT, timeout=100
        ) as flaky:
            started = time.monotonic()
            with pytest.raises(cc.CouncilError) as err:
                await flaky.review(low_risk(new_id("s")))
            _check(started, err.value, attempts, "ReviewSuggestion")
