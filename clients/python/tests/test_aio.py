"""The asyncio client (council_client.aio) against the live plaintext server: every call, the
stream order, idempotent retries through real network faults, typed errors, watches with their
live signal, and 50 reviews at once under asyncio.gather."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

import council_client as cc
from council_client import aio
from faulty_proxy import FaultyProxy
from support import ROLES, low_risk, rejected, role

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def council(addr: str) -> AsyncIterator[aio.AsyncCouncilClient]:
    async with aio.connect(addr) as c:
        yield c


async def test_review_streams_votes_then_the_decision(
    council: aio.AsyncCouncilClient, new_id: Callable[[str], str]
) -> None:
    sid = new_id("s")
    review = council.review(low_risk(sid))
    assert isinstance(review, cc.AsyncReview)
    seen: list[str] = []
    async for vote in review:
        assert not review.done, "the decision arrived before a vote"
        seen.append(role(vote))
    decision = await review.decision
    assert seen == ROLES
    assert review.done and review.attempts == 1
    assert decision.id.startswith("dec-") and decision.id == review.decision_id
    assert decision.suggestion_id == sid
    assert decision.decision == cc.DecisionType.DECISION_TYPE_AUTO_APPROVE
    assert list(decision.votes) == review.votes
    assert await review == decision  # awaiting the review is awaiting its decision
    assert await council.get_decision(decision.id) == decision


async def test_awaiting_a_review_without_iterating_gives_the_decision(
    council: aio.AsyncCouncilClient, new_id: Callable[[str], str]
) -> None:
    review = council.review(low_risk(new_id("s")))
    decision = await review
    assert [role(v) for v in review.votes] == ROLES
    assert decision.id == review.decision_id


async def test_the_same_request_id_replays_and_another_suggestion_is_refused(
    council: aio.AsyncCouncilClient, new_id: Callable[[str], str]
) -> None:
    sid = new_id("s")
    request_id = f"req-{uuid.uuid4()}"
    first = await council.review(low_risk(sid), request_id=request_id)
    second = council.review(low_risk(sid), request_id=request_id)
    assert (await second).id == first.id
    assert second.request_id == request_id
    assert [d.id async for d in council.list_decisions(suggestion_id=sid)] == [first.id]
    with pytest.raises(cc.FailedPrecondition, match="request_id"):
        await council.review(low_risk(new_id("other")), request_id=request_id)


async def test_a_bad_suggestion_is_invalid_argument_naming_the_field(
    council: aio.AsyncCouncilClient, new_id: Callable[[str], str]
) -> None:
    suggestion = low_risk(new_id("s"))
    suggestion.title = " "
    review = council.review(suggestion)
    with pytest.raises(cc.InvalidArgument) as err:
        async for _ in review:
            pass
    assert err.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.field == "suggestion.title"
    assert review.attempts == 1  # not retried
    with pytest.raises(cc.InvalidArgument):
        await review.decision  # the same error again


async def test_dry_run_stores_nothing_and_not_found_is_typed(
    council: aio.AsyncCouncilClient, new_id: Callable[[str], str]
) -> None:
    sid = new_id("s")
    decision = await council.review(low_risk(sid), dry_run=True)
    with pytest.raises(cc.NotFound) as err:
        await council.get_decision(decision.id)
    assert err.value.code is grpc.StatusCode.NOT_FOUND
    assert [d async for d in council.list_decisions(suggestion_id=sid)] == []


async def test_paging_outcome_lessons_summary_and_reviewers(
    council: aio.AsyncCouncilClient, new_id: Callable[[str], str]
) -> None:
    sid = new_id("paging")
    created = [(await council.review(low_risk(sid))).id for _ in range(7)]
    listed = [d.id async for d in council.list_decisions(suggestion_id=sid, page_size=3)]
    assert listed == created[::-1]  # every page, each decision once, newest first
    assert [
        d.id async for d in council.list_decisions(suggestion_id=sid, oldest_first=True)
    ] == created

    before = await council.summary()
    lesson = f"lesson {uuid.uuid4()}"
    request_id = f"out-{uuid.uuid4()}"
    recorded = await council.record_outcome(
        created[0], "success", notes="deployed", lessons=lesson, request_id=request_id
    )
    assert recorded.outcome == cc.Outcome.OUTCOME_SUCCESS
    again = await council.record_outcome(
        created[0], "success", notes="deployed", lessons=lesson, request_id=request_id
    )
    assert again == recorded  # the same request_id records once
    after = await council.summary()
    assert after.learning_entries == before.learning_entries + 1
    assert after.total_decisions >= before.total_decisions

    found = False
    async for entry in council.lessons(page_size=50):
        if entry.lessons == lesson and entry.decision_id == created[0]:
            found = True
            break
    assert found

    reviewers = await council.reviewers()
    assert [cc.short_name(cc.ReviewerRole, r.role) for r in reviewers.reviewers] == ROLES
    assert reviewers.policy_version


async def test_retry_after_a_mid_stream_drop_replays_without_repeating_votes(
    council: aio.AsyncCouncilClient, addr: str, new_id: Callable[[str], str]
) -> None:
    retries: list[tuple[str, int, grpc.StatusCode]] = []
    policy = cc.RetryPolicy(
        attempts=10,
        initial_backoff=0.05,
        on_retry=lambda method, attempt, err, _delay: retries.append((method, attempt, err.code)),
    )
    sid = new_id("s")
    with FaultyProxy(addr, cut_after_data_frames=1) as proxy:
        async with aio.connect(proxy.address, retry=policy) as flaky:
            review = flaky.review(low_risk(sid))
            votes = [role(v) async for v in review]
            decision = await review.decision
        assert proxy.cuts == 1
    assert retries == [("ReviewSuggestion", 1, grpc.StatusCode.UNAVAILABLE)]
    assert votes == ROLES
    assert review.attempts == 2
    assert [d.id async for d in council.list_decisions(suggestion_id=sid)] == [decision.id]


async def test_an_outcome_whose_reply_was_lost_is_recorded_once(
    council: aio.AsyncCouncilClient, addr: str, new_id: Callable[[str], str]
) -> None:
    decision = await council.review(low_risk(new_id("s")))
    retries: list[int] = []
    policy = cc.RetryPolicy(
        attempts=10, initial_backoff=0.05, on_retry=lambda _m, attempt, *_: retries.append(attempt)
    )
    before = (await council.summary()).learning_entries
    with FaultyProxy(addr, cut_after_data_frames=1, lose_reply=True) as proxy:
        async with aio.connect(proxy.address, retry=policy) as flaky:
            recorded = await flaky.record_outcome(decision.id, "partial", lessons="once")
        assert proxy.cuts == 1
    assert retries == [1]
    assert recorded.outcome == cc.Outcome.OUTCOME_PARTIAL
    assert (await council.summary()).learning_entries == before + 1


async def test_unavailable_is_raised_after_the_retries(new_id: Callable[[str], str]) -> None:
    proxy = FaultyProxy("127.0.0.1:9")  # bound, never listening: every connection is refused
    attempts: list[int] = []
    policy = cc.RetryPolicy(
        attempts=3, initial_backoff=0.01, on_retry=lambda _m, n, *_: attempts.append(n)
    )
    try:
        async with aio.connect(proxy.address, retry=policy) as down:
            with pytest.raises(cc.Unavailable) as err:
                await down.reviewers(timeout=10)
            review = down.review(low_risk(new_id("s")), timeout=10)
            with pytest.raises(cc.Unavailable):
                await review
    finally:
        proxy.close()
    assert err.value.retryable
    assert attempts == [1, 2, 1, 2]  # three attempts of each call
    assert review.attempts == 3


async def test_watch_is_live_once_ready_and_sends_the_next_review(
    council: aio.AsyncCouncilClient, new_id: Callable[[str], str]
) -> None:
    """Once ``ready()`` returns, a review stored right after is sent: no probe reviews needed."""
    async with council.watch(include_votes=True) as watch:
        await asyncio.wait_for(watch.ready(), 10)
        decision = await council.review(low_risk(new_id("s")))

        async def ours() -> list[cc.WatchEvent]:
            got: list[cc.WatchEvent] = []
            async for event in watch:
                if event.decision_id == decision.id:
                    got.append(event)
                    if isinstance(event, cc.DecisionEvent):
                        return got
            return got

        got = await asyncio.wait_for(ours(), 10)
    assert [type(e) for e in got] == [cc.VoteEvent] * 5 + [cc.DecisionEvent]
    last = got[-1]
    assert isinstance(last, cc.DecisionEvent) and last.decision == decision


async def test_watch_filters_by_decision_type(
    council: aio.AsyncCouncilClient, new_id: Callable[[str], str]
) -> None:
    watch = council.watch(decision_type="reject")
    try:
        await asyncio.wait_for(watch.ready(), 10)
        approved = await council.review(low_risk(new_id("approved")))
        reject = await council.review(rejected(new_id("rejected")))

        async def until_reject() -> list[cc.WatchEvent]:
            got: list[cc.WatchEvent] = []
            async for event in watch:
                got.append(event)
                if event.decision_id == reject.id:
                    break  # leaving the loop cancels the watch
            return got

        got = await asyncio.wait_for(until_reject(), 10)
    finally:
        watch.cancel()
    assert all(isinstance(e, cc.DecisionEvent) for e in got)
    assert all(e.decision_id != approved.id for e in got)


async def test_watch_cancel_from_another_task_ends_the_iteration_quietly(
    council: aio.AsyncCouncilClient,
) -> None:
    watch = council.watch()
    await asyncio.wait_for(watch.ready(), 10)

    async def consume() -> int:
        n = 0
        async for _ in watch:  # other runs' reviews may come first
            n += 1
        return n

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)  # let it start reading
    watch.cancel()
    await asyncio.wait_for(task, 10)  # no error
    with pytest.raises(cc.Cancelled):
        await watch.ready()  # a cancelled watch is not live


async def test_a_watch_with_a_timeout_ends_with_deadline_exceeded(
    council: aio.AsyncCouncilClient,
) -> None:
    started = time.monotonic()
    with pytest.raises(cc.DeadlineExceeded) as err:
        async for _ in council.watch(decision_type="escalate", timeout=0.5):
            pass
    assert err.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 5


async def test_fifty_reviews_at_once_under_gather(
    council: aio.AsyncCouncilClient, new_id: Callable[[str], str]
) -> None:
    """50 reviews on one channel under gather: each gets its own five votes in order and its own
    stored decision. (How the streams interleave is up to the server, which may answer one review
    whole before it reads the next; that they run at once is shown by test_cancel.py's fifty
    held reviews, which take about one pause.)"""
    events: list[tuple[int, str]] = []

    async def one(i: int) -> tuple[str, cc.Decision]:
        sid = new_id(f"g{i}")
        review = council.review(low_risk(sid))
        async for vote in review:
            events.append((i, role(vote)))
        decision = await review.decision
        events.append((i, "decision"))
        return sid, decision

    results = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(50))), 60)
    assert len({d.id for _, d in results}) == 50
    for i, (sid, decision) in enumerate(results):
        assert decision.suggestion_id == sid
        assert [role(v) for v in decision.votes] == ROLES
        assert [what for j, what in events if j == i] == [*ROLES, "decision"]
    stored = await asyncio.gather(*(council.get_decision(d.id) for _, d in results))
    assert [s.id for s in stored] == [d.id for _, d in results]


async def test_a_token_over_tls_with_the_asyncio_client(new_id: Callable[[str], str]) -> None:
    """TLS with a private CA and a bearer token, through grpc.aio's secure channel."""
    names = ("COUNCIL_TEST_TLS_ADDR", "COUNCIL_TEST_CA_FILE", "COUNCIL_TEST_AGENT_TOKEN")
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        pytest.fail(f"set {', '.join(missing)} (test/clients.test.ts does)", pytrace=False)
    ca = Path(os.environ["COUNCIL_TEST_CA_FILE"]).read_bytes()
    addr = os.environ["COUNCIL_TEST_TLS_ADDR"]
    token = os.environ["COUNCIL_TEST_AGENT_TOKEN"]
    async with aio.connect(addr, root_certificates=ca, token=token) as c:
        decision = await c.review(low_risk(new_id("s")))
        assert decision.submitted_by == os.environ["COUNCIL_TEST_AGENT_PRINCIPAL"]
    async with aio.connect(addr, root_certificates=ca, retry=cc.RetryPolicy(attempts=1)) as anon:
        with pytest.raises(cc.Unauthenticated):
            await anon.reviewers()
        watch = anon.watch()
        with pytest.raises(cc.Unauthenticated):
            await asyncio.wait_for(watch.ready(), 10)  # refused before it was live
    with pytest.raises(ValueError, match="go together"):
        aio.connect(addr, certificate_chain=b"x")
