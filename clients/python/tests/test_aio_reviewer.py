"""The reviewer SDK, asyncio flavour (:class:`council_client.aio.AsyncReviewer`,
:func:`council_client.aio.serve_reviews`), against the live external-reviewer server (see
reviewer_support.py): a reviewer's vote counts with its principal as ``cast_by``, a veto rejects,
handlers run as concurrent tasks, one that raises sends no vote and one still running at the
deadline is cancelled (the role's failure policy votes), the reviewer reconnects after its
connection is cut, stops cleanly or is cancelled with its handlers, and gives up at once on a
configuration error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import pytest_asyncio

import council_client as cc
from aio_support import eventually
from council_client import aio
from faulty_proxy import FaultyProxy, free_port
from reviewer_support import DIFF, TIMEOUT, External, connected, external_server, vote_of, with_diff

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def ext() -> External:
    return external_server()


@pytest_asyncio.fixture
async def agent(ext: External) -> AsyncIterator[aio.AsyncCouncilClient]:
    async with aio.connect(ext.addr, token=ext.agent_token, timeout=15) as client:
        yield client


async def _approve(task: cc.ReviewTask) -> cc.ReviewVote:
    return cc.ReviewVote("approve", f"{task.role}: looks fine", confidence=0.8)


@asynccontextmanager
async def serving(
    ext: External,
    handler: Callable[[cc.ReviewTask], Awaitable[cc.ReviewVote | None]],
    *,
    address: str | None = None,
    roles: tuple[cc.ReviewerRoleLike, ...] = ("safety", "quality"),
    on_connected: Callable[[], object] | None = None,
) -> AsyncIterator[aio.AsyncReviewer]:
    """A reviewer serving in a task, connected when the block starts, stopped (and checked to
    have ended without error) when it ends."""
    reviewer = aio.AsyncReviewer(
        address or ext.addr,
        roles=roles,
        handler=handler,
        token=ext.reviewer_token,
        on_connected=on_connected,
    )
    async with reviewer:
        assert await reviewer.wait_connected(10), "the reviewer did not connect within 10 s"
        yield reviewer


async def _decision(agent: aio.AsyncCouncilClient, suggestion: cc.Suggestion) -> cc.Decision:
    return await agent.review(suggestion).decision


async def test_the_reviewers_vote_counts_with_its_principal_as_cast_by(
    ext: External, agent: aio.AsyncCouncilClient, new_id: Callable[[str], str]
) -> None:
    seen: list[cc.ReviewTask] = []
    left: list[float] = []

    async def handler(task: cc.ReviewTask) -> cc.ReviewVote:
        seen.append(task)
        left.append(task.remaining())
        await asyncio.sleep(0)  # a real handler awaits its model here
        return cc.ReviewVote("approve", "the diff is clean", concerns=["none"], confidence=0.7)

    stop = asyncio.Event()
    up = asyncio.Event()
    served = asyncio.create_task(
        aio.serve_reviews(
            ext.addr,
            roles=["safety", "quality"],
            handler=handler,
            token=ext.reviewer_token,
            on_connected=up.set,
            stop=stop,
        )
    )
    try:
        await asyncio.wait_for(up.wait(), 10)
        review = agent.review(with_diff(new_id("s")))
        streamed = [v async for v in review]
        decision = await review.decision
        dry = await agent.review(with_diff(new_id("dry")), dry_run=True).decision
    finally:
        stop.set()
    await asyncio.wait_for(served, 10)  # returns (None) once stopped

    safety = vote_of(decision, "safety")
    assert (safety.cast_by, safety.vote, safety.reasoning) == (
        ext.principal,
        cc.VoteType.VOTE_TYPE_APPROVE,
        "the diff is clean",
    )
    assert list(safety.concerns) == ["none"] and safety.confidence == pytest.approx(0.7)
    assert vote_of(decision, "quality").cast_by == ext.principal
    assert decision.decision == cc.DecisionType.DECISION_TYPE_AUTO_APPROVE
    assert sorted(v.cast_by for v in streamed) == sorted([ext.principal] * 2 + ["rules"] * 3)
    assert vote_of(dry, "safety").cast_by == ext.principal

    first = [t for t in seen if t.decision_id == decision.id]
    assert sorted(t.role for t in first) == ["quality", "safety"]
    assert first[0].suggestion.diff == DIFF and not first[0].dry_run
    assert all(0 < seconds <= TIMEOUT for seconds in left)
    assert [t.dry_run for t in seen if t.decision_id == dry.id] == [True, True]


async def test_a_veto_rejects_the_change(
    ext: External, agent: aio.AsyncCouncilClient, new_id: Callable[[str], str]
) -> None:
    async def handler(task: cc.ReviewTask) -> cc.ReviewVote:
        if task.role == "safety":
            return cc.ReviewVote("reject", "the diff deletes tests", veto="deletes_tests")
        return await _approve(task)

    async with serving(ext, handler):
        decision = await _decision(agent, with_diff(new_id("s")))
    assert decision.decision == cc.DecisionType.DECISION_TYPE_REJECT
    safety = vote_of(decision, "safety")
    assert (safety.veto, safety.cast_by) == ("deletes_tests", ext.principal)
    assert "deletes_tests" in decision.final_reasoning


async def test_handlers_run_concurrently(
    ext: External, agent: aio.AsyncCouncilClient, new_id: Callable[[str], str]
) -> None:
    # Each safety handler waits until the other one has started: both must run at once.
    started = 0
    both = asyncio.Event()

    async def handler(task: cc.ReviewTask) -> cc.ReviewVote:
        nonlocal started
        if task.role == "safety":
            started += 1
            if started == 2:
                both.set()
            await both.wait()
        return await _approve(task)

    async with serving(ext, handler):
        decisions = await asyncio.gather(
            *(_decision(agent, with_diff(new_id(label))) for label in "ab")
        )
    assert [vote_of(d, "safety").cast_by for d in decisions] == [ext.principal] * 2


async def test_at_most_concurrency_handlers_run_at_once(
    ext: External,
    agent: aio.AsyncCouncilClient,
    new_id: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    active = calls = peak = 0
    release = asyncio.Event()

    async def handler(task: cc.ReviewTask) -> cc.ReviewVote:
        nonlocal active, calls, peak
        active, calls = active + 1, calls + 1
        peak = max(peak, active)
        try:
            await release.wait()
        finally:
            active -= 1
        return await _approve(task)

    def received() -> int:
        return sum(r.getMessage().endswith(": received") for r in caplog.records)

    async def probe() -> tuple[int, int]:
        return received(), active

    caplog.set_level(logging.DEBUG, logger="council_client")
    reviewer = aio.AsyncReviewer(
        ext.addr, roles=["safety"], handler=handler, token=ext.reviewer_token, concurrency=2
    )
    async with reviewer:
        assert await reviewer.wait_connected(10)
        reviews = [
            asyncio.ensure_future(_decision(agent, with_diff(new_id(label)))) for label in "abc"
        ]
        # Three tasks received, two handlers running: the third waits for a free one.
        await eventually(probe, lambda seen: seen == (3, 2), "3 tasks in, 2 handlers", TIMEOUT)
        assert calls == 2
        release.set()
        decisions = await asyncio.wait_for(asyncio.gather(*reviews), 15)
    assert peak == 2 and calls == 3
    assert [vote_of(d, "safety").cast_by for d in decisions] == [ext.principal] * 3


async def test_a_handler_that_raises_sends_no_vote_and_the_failure_policy_votes(
    ext: External,
    agent: aio.AsyncCouncilClient,
    new_id: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(task: cc.ReviewTask) -> cc.ReviewVote:
        if task.role == "safety":
            raise RuntimeError("the model is down")
        return await _approve(task)

    caplog.set_level(logging.ERROR, logger="council_client")
    async with serving(ext, handler):
        decision = await _decision(agent, with_diff(new_id("s")))
    safety = vote_of(decision, "safety")
    assert (safety.cast_by, safety.vote) == (
        "fallback:needs_more_info",
        cc.VoteType.VOTE_TYPE_NEEDS_MORE_INFO,
    )
    assert safety.reasoning == "[SAFETY] No external vote: timed out"
    assert vote_of(decision, "quality").cast_by == ext.principal
    failures = [r for r in caplog.records if r.exc_info and "model is down" in str(r.exc_info[1])]
    assert len(failures) == 1 and decision.id in failures[0].getMessage()


async def test_a_handler_still_running_at_the_deadline_is_cancelled(
    ext: External,
    agent: aio.AsyncCouncilClient,
    new_id: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cancelled = asyncio.Event()

    async def handler(task: cc.ReviewTask) -> cc.ReviewVote:
        if task.role == "safety":
            try:
                await asyncio.Event().wait()  # never set: the handler hangs
            except asyncio.CancelledError:
                cancelled.set()
                raise
        return await _approve(task)

    caplog.set_level(logging.WARNING, logger="council_client")
    async with serving(ext, handler):
        decision = await _decision(agent, with_diff(new_id("s")))
        await asyncio.wait_for(cancelled.wait(), 5)
    assert vote_of(decision, "safety").reasoning == "[SAFETY] No external vote: timed out"
    late = [r for r in caplog.records if "deadline" in r.getMessage()]
    assert len(late) == 1 and decision.id in late[0].getMessage()


async def test_a_handler_cancelled_at_the_deadline_is_told_apart_by_the_wait_not_the_clock(
    ext: External,
    agent: aio.AsyncCouncilClient,
    new_id: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The wall clock steps back a minute as the handler is cancelled (monkeypatch undoes it when
    # the test ends): the reviewer must still say the handler ran past the deadline, not that it
    # raised.
    real_time = time.time

    async def handler(task: cc.ReviewTask) -> cc.ReviewVote:
        if task.role == "safety":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                monkeypatch.setattr(time, "time", lambda: real_time() - 60)
                raise
        return await _approve(task)

    caplog.set_level(logging.WARNING, logger="council_client")
    async with serving(ext, handler):
        decision = await _decision(agent, with_diff(new_id("s")))
    assert vote_of(decision, "safety").reasoning == "[SAFETY] No external vote: timed out"
    assert not [r for r in caplog.records if "raised" in r.getMessage()]
    late = [r for r in caplog.records if "still running at the deadline" in r.getMessage()]
    assert len(late) == 1 and decision.id in late[0].getMessage()


async def test_it_reconnects_after_the_connection_is_cut(
    ext: External, agent: aio.AsyncCouncilClient, new_id: Callable[[str], str]
) -> None:
    accepted = asyncio.Semaphore(0)
    with FaultyProxy(ext.addr) as proxy:
        async with serving(
            ext, _approve, address=proxy.address, on_connected=accepted.release
        ) as reviewer:
            await asyncio.wait_for(accepted.acquire(), 5)
            proxy.cut()
            await asyncio.wait_for(accepted.acquire(), 10)
            assert reviewer.connections == 2 and proxy.connections >= 2
            decision = await _decision(agent, with_diff(new_id("s")))
    assert vote_of(decision, "safety").cast_by == ext.principal
    assert vote_of(decision, "quality").cast_by == ext.principal


async def test_a_server_that_is_down_is_retried_with_a_growing_backoff() -> None:
    delays: list[tuple[cc.CouncilError | None, float]] = []
    stop = asyncio.Event()

    def retried(error: cc.CouncilError | None, delay: float) -> None:
        delays.append((error, delay))
        if len(delays) == 6:
            stop.set()

    policy = cc.ReconnectPolicy(initial_backoff=0.01, max_backoff=0.08, on_reconnect=retried)
    nobody = f"127.0.0.1:{free_port()}"  # nothing listens there: every stream fails UNAVAILABLE
    await asyncio.wait_for(
        aio.serve_reviews(nobody, roles=["safety"], handler=_approve, reconnect=policy, stop=stop),
        10,
    )
    assert [type(error) for error, _ in delays] == [cc.Unavailable] * 6
    caps = [0.01, 0.02, 0.04, 0.08, 0.08, 0.08]  # full jitter: a random wait up to each cap
    assert all(0 <= delay <= cap for (_, delay), cap in zip(delays, caps))


async def test_stop_ends_serving_cleanly(
    ext: External, agent: aio.AsyncCouncilClient, new_id: Callable[[str], str]
) -> None:
    reviewer = aio.AsyncReviewer(
        ext.addr, roles=["safety"], handler=_approve, token=ext.reviewer_token
    )
    served = asyncio.create_task(reviewer.serve())
    assert await reviewer.wait_connected(10)
    assert reviewer.connected
    assert connected(await agent.reviewers(), "safety") == 1
    reviewer.stop()
    await asyncio.wait_for(served, 10)  # returns (None) once stopped
    assert not reviewer.connected
    # Stopping half-closes the stream and waits for the server's OK: the server has let go of it.
    assert connected(await agent.reviewers(), "safety") == 0
    safety = vote_of(await _decision(agent, with_diff(new_id("s"))), "safety")
    assert safety.reasoning == "[SAFETY] No external vote: no reviewer connected"


async def test_cancelling_the_serving_task_cancels_its_handlers(
    ext: External, agent: aio.AsyncCouncilClient, new_id: Callable[[str], str]
) -> None:
    running = asyncio.Event()
    cancelled = asyncio.Event()

    async def handler(task: cc.ReviewTask) -> cc.ReviewVote:
        running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    reviewer = aio.AsyncReviewer(
        ext.addr, roles=["safety"], handler=handler, token=ext.reviewer_token
    )
    served = asyncio.create_task(reviewer.serve())
    assert await reviewer.wait_connected(10)
    review = asyncio.create_task(_decision(agent, with_diff(new_id("s"))))
    await asyncio.wait_for(running.wait(), 5)
    served.cancel()
    with pytest.raises(asyncio.CancelledError):
        await served
    assert cancelled.is_set()
    # The reviewer went away mid-task: the failure policy votes at once, not at the timeout.
    decision = await asyncio.wait_for(review, 10)
    assert vote_of(decision, "safety").cast_by == "fallback:needs_more_info"
    await eventually(
        agent.reviewers, lambda r: connected(r, "safety") == 0, "the server let go", timeout=5
    )


async def test_a_role_that_is_not_external_raises_failed_precondition(ext: External) -> None:
    up = asyncio.Event()
    stop = asyncio.Event()
    # Were it retried, the first retry would stop serving (and nothing would be raised).
    retries = cc.ReconnectPolicy(on_reconnect=lambda error, delay: stop.set())
    with pytest.raises(cc.FailedPrecondition) as raised:
        await asyncio.wait_for(
            aio.serve_reviews(
                ext.addr,
                roles=["performance"],
                handler=_approve,
                token=ext.reviewer_token,
                on_connected=up.set,
                reconnect=retries,
                stop=stop,
            ),
            10,
        )
    assert "not external" in raised.value.details
    assert not up.is_set() and not stop.is_set()


async def test_configuration_errors_end_serving_without_retrying(ext: External) -> None:
    # A call refused as soon as it starts (no token, or a principal without the role reviewer)
    # races with the hello: when the refusal reaches gRPC's core just as grpc.aio writes the hello,
    # grpc.aio replaces the server's status with INTERNAL "Internal error from Core" (about 1 call
    # in 20 on a loaded machine). That status says nothing, so it is retried like any other, and the
    # next stream shows the real one: such retries are allowed here, no other.
    retried: list[cc.CouncilError | None] = []
    policy = cc.ReconnectPolicy(on_reconnect=lambda error, delay: retried.append(error))
    with pytest.raises(cc.Unauthenticated):  # no token
        await asyncio.wait_for(
            aio.serve_reviews(ext.addr, roles=["safety"], handler=_approve, reconnect=policy), 10
        )
    reviewer = aio.AsyncReviewer(
        ext.addr,
        roles=["quality"],
        handler=_approve,
        token=ext.agent_token,  # a principal without the role reviewer
        reconnect=policy,
    )
    with pytest.raises(cc.PermissionDenied):
        await asyncio.wait_for(reviewer.serve(), 10)
    assert isinstance(reviewer.error, cc.PermissionDenied)
    with pytest.raises(cc.PermissionDenied):
        await reviewer.wait_connected(0)  # the error that ended serving
    assert all(_lost_status(error) for error in retried), retried


def _lost_status(error: cc.CouncilError | None) -> bool:
    return isinstance(error, cc.Internal) and error.details == "Internal error from Core"
