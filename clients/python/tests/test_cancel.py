"""Cancelling reviews and watches mid-stream, with the sync and the asyncio client, against the
held server (see aio_support.py): each review pauses before its second vote, so the test cancels
it after the first, and reads from the server's metrics that the server saw CANCELLED. The review
itself still runs to its stored decision (the server finishes what it started), which a replay
with the same request_id returns.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

import council_client as cc
from aio_support import Held, eventually, held_server, wait_until
from council_client import aio
from support import ROLES, low_risk, role

REVIEW = "ReviewSuggestion"
WATCH = "WatchDecisions"


@pytest.fixture(scope="module")
def held() -> Held:
    return held_server()


async def _stored(council: aio.AsyncCouncilClient, review: cc.AsyncReview) -> cc.Decision:
    """The decision of a review cancelled mid-stream, once the server has stored it."""

    async def probe() -> cc.Decision | None:
        try:
            return await council.get_decision(review.decision_id)
        except cc.NotFound:
            return None

    decision = await eventually(probe, lambda d: d is not None, "the cancelled review stored")
    assert decision is not None
    return decision


@pytest.mark.asyncio
async def test_cancelling_the_task_cancels_the_review_and_the_server_sees_it(
    held: Held, new_id: Callable[[str], str]
) -> None:
    before = await asyncio.to_thread(held.calls, REVIEW, "CANCELLED")
    async with aio.connect(held.addr) as council:
        review = council.review(low_risk(new_id("s")))
        first = asyncio.Event()

        async def consume() -> None:
            async for _ in review:
                first.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 10)
        # The server now pauses before the second vote: the review is mid-stream.
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - cancelled_at < 1.0, "the task did not end promptly"
        assert [role(v) for v in review.votes] == ROLES[:1]
        with pytest.raises(cc.Cancelled):
            await review.decision

        await asyncio.to_thread(
            wait_until,
            lambda: held.calls(REVIEW, "CANCELLED") == before + 1,
            "the server counting the review CANCELLED",
        )
        stored = await _stored(council, review)
        assert [role(v) for v in stored.votes] == ROLES
        # The same request_id replays it, whole.
        replay = council.review(low_risk(review.suggestion_id), request_id=review.request_id)
        assert (await replay).id == stored.id


@pytest.mark.asyncio
async def test_leaving_the_async_for_early_cancels_the_review(
    held: Held, new_id: Callable[[str], str]
) -> None:
    before = await asyncio.to_thread(held.calls, REVIEW, "CANCELLED")
    async with aio.connect(held.addr) as council:
        started = time.monotonic()
        review = council.review(low_risk(new_id("s")))
        async for _ in review:
            break
        assert time.monotonic() - started < held.pause, "the loop waited for the next vote"
        await asyncio.to_thread(
            wait_until,
            lambda: held.calls(REVIEW, "CANCELLED") == before + 1,
            "the server counting the review CANCELLED",
        )
        with pytest.raises(cc.Cancelled):
            await review
        assert len((await _stored(council, review)).votes) == 5


@pytest.mark.asyncio
async def test_cancel_from_another_task_ends_the_votes_quietly(
    held: Held, new_id: Callable[[str], str]
) -> None:
    before = await asyncio.to_thread(held.calls, REVIEW, "CANCELLED")
    async with aio.connect(held.addr) as council:
        review = council.review(low_risk(new_id("s")))
        first = asyncio.Event()
        seen: list[cc.Vote] = []

        async def consume() -> None:
            async for vote in review:
                seen.append(vote)
                first.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 10)
        review.cancel()
        await asyncio.wait_for(task, 5)  # ends without error
        assert len(seen) == 1
        with pytest.raises(cc.Cancelled):
            await review.decision
    await asyncio.to_thread(
        wait_until,
        lambda: held.calls(REVIEW, "CANCELLED") == before + 1,
        "the server counting the review CANCELLED",
    )


@pytest.mark.asyncio
async def test_cancelling_a_guard_cancels_its_review(
    held: Held, new_id: Callable[[str], str]
) -> None:
    before = await asyncio.to_thread(held.calls, REVIEW, "CANCELLED")
    async with aio.connect(held.addr) as council:
        first = asyncio.Event()
        guard = asyncio.create_task(
            council.guard(low_risk(new_id("s")), on_vote=lambda _v: first.set())
        )
        await asyncio.wait_for(first.wait(), 10)
        guard.cancel()
        with pytest.raises(asyncio.CancelledError):
            await guard
    await asyncio.to_thread(
        wait_until,
        lambda: held.calls(REVIEW, "CANCELLED") == before + 1,
        "the server counting the guard's review CANCELLED",
    )


@pytest.mark.asyncio
async def test_fifty_held_reviews_run_at_once_not_one_after_another(
    held: Held, new_id: Callable[[str], str]
) -> None:
    """Each review pauses ``held.pause`` (3 s): fifty in turn would take 150 s; under gather on
    one channel they take about one pause, because no call blocks the event loop."""
    async with aio.connect(held.addr) as council:
        started = time.monotonic()
        reviews = [council.review(low_risk(new_id(f"g{i}"))) for i in range(50)]
        decisions = await asyncio.wait_for(asyncio.gather(*(r.decision for r in reviews)), 60)
        elapsed = time.monotonic() - started
    assert elapsed < 10 * held.pause, f"50 held reviews took {elapsed:.1f} s"
    assert len({d.id for d in decisions}) == 50
    assert all([role(v) for v in d.votes] == ROLES for d in decisions)
    assert [d.suggestion_id for d in decisions] == [r.suggestion_id for r in reviews]


@pytest.mark.asyncio
async def test_cancelling_a_watch_task_cancels_the_watch_on_the_server(held: Held) -> None:
    before = await asyncio.to_thread(held.calls, WATCH, "CANCELLED")
    watchers = await asyncio.to_thread(held.metric, "council_watchers")
    async with aio.connect(held.addr) as council:
        watch = council.watch(include_votes=True)
        await asyncio.wait_for(watch.ready(), 10)
        await asyncio.to_thread(
            wait_until, lambda: held.metric("council_watchers") == watchers + 1, "one more watcher"
        )

        async def consume() -> None:
            async for _ in watch:
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0)  # let it start reading
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.to_thread(
            wait_until,
            lambda: held.calls(WATCH, "CANCELLED") == before + 1
            and held.metric("council_watchers") == watchers,
            "the server ending the watch as CANCELLED",
        )


def test_sync_leaving_a_review_block_cancels_it_and_the_server_sees_it(
    held: Held, new_id: Callable[[str], str]
) -> None:
    before = held.calls(REVIEW, "CANCELLED")
    with cc.connect(held.addr) as council:
        started = time.monotonic()
        with council.review(low_risk(new_id("s"))) as review:
            first = next(review)
        assert time.monotonic() - started < held.pause
        assert role(first) == ROLES[0]
        with pytest.raises(cc.Cancelled):
            _ = review.decision
        wait_until(
            lambda: held.calls(REVIEW, "CANCELLED") == before + 1,
            "the server counting the review CANCELLED",
        )
        replay = council.review(low_risk(review.suggestion_id), request_id=review.request_id)
        assert [role(v) for v in replay] == ROLES  # stored whole, replayed
        assert replay.decision.id == review.decision_id


def test_sync_cancel_from_another_thread_ends_the_votes_quietly(
    held: Held, new_id: Callable[[str], str]
) -> None:
    before = held.calls(REVIEW, "CANCELLED")
    with cc.connect(held.addr) as council:
        review = council.review(low_risk(new_id("s")))
        seen: list[cc.Vote] = []
        for vote in review:
            seen.append(vote)
            threading.Thread(target=review.cancel).start()
        assert len(seen) == 1  # the loop ended without error after the cancel
        with pytest.raises(cc.Cancelled):
            _ = review.decision
    wait_until(lambda: held.calls(REVIEW, "CANCELLED") == before + 1, "CANCELLED on the server")


def test_sync_watch_is_ready_and_cancel_ends_it_on_the_server(held: Held) -> None:
    before = held.calls(WATCH, "CANCELLED")
    with cc.connect(held.addr) as council:
        watch = council.watch()
        assert watch.ready(10)
        threading.Timer(0.2, watch.cancel).start()
        for _ in watch:  # ends quietly once cancelled
            pass
        with pytest.raises(cc.Cancelled):
            watch.ready(0)
    wait_until(lambda: held.calls(WATCH, "CANCELLED") == before + 1, "CANCELLED on the server")
