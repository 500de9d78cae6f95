"""Human verdicts with the asyncio client, against the lifecycle server (see verdict_support.py):
resolve, await_decision (ended by other principals' verdicts, by its timeout, by cancel(), by
cancelling its task, resumed after a dropped connection) and the guard (allowed at once, after
two approvals, rejected with the approver's comment, expired, timed out), with async callbacks.

The agent and the approvers run as tasks of one event loop: a guard that blocked the loop would
never see the approvals.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
import pytest_asyncio

import council_client as cc
from council_client import aio
from faulty_proxy import FaultyProxy
from verdict_support import (
    APPROVED,
    EXPIRED,
    PENDING,
    REJECTED,
    Lifecycle,
    auto_approved,
    deferred,
    lifecycle_server,
    needs_people,
    vetoed,
)

pytestmark = pytest.mark.asyncio


@dataclass
class People:
    lifecycle: Lifecycle
    agent: aio.AsyncCouncilClient
    alice: aio.AsyncCouncilClient
    bob: aio.AsyncCouncilClient


@pytest_asyncio.fixture
async def people() -> AsyncIterator[People]:
    lc = lifecycle_server()
    async with (
        aio.connect(lc.addr, token=lc.agent_token) as agent,
        aio.connect(lc.addr, token=lc.alice_token) as alice,
        aio.connect(lc.addr, token=lc.bob_token) as bob,
    ):
        yield People(lc, agent, alice, bob)


class States:
    """The states something reports, and a bounded wait for one that matches."""

    def __init__(self) -> None:
        self.seen: list[cc.Decision] = []
        self._changed = asyncio.Condition()

    async def push(self, decision: cc.Decision) -> None:
        async with self._changed:
            self.seen.append(decision)
            self._changed.notify_all()

    async def until(self, status: int, verdicts: int, timeout: float = 10.0) -> cc.Decision:
        def match() -> bool:
            return any(d.status == status and len(d.verdicts) == verdicts for d in self.seen)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(match), timeout)
        return next(d for d in self.seen if d.status == status and len(d.verdicts) == verdicts)

    def describe(self) -> list[tuple[int, int]]:
        return [(d.status, len(d.verdicts)) for d in self.seen]


async def test_resolve_counts_two_approvals_and_refuses_what_it_must(
    people: People, new_id: Callable[[str], str]
) -> None:
    lc = people.lifecycle
    decision = await people.agent.review(needs_people(new_id("s")))
    assert decision.status == PENDING and decision.approvals_required == 2
    first = await people.alice.resolve(decision.id, "approve", comment="looks right")
    assert first.status == PENDING and [v.by for v in first.verdicts] == [lc.alice]
    with pytest.raises(cc.FailedPrecondition):
        await people.alice.resolve(decision.id, "reject", comment="changed my mind")
    with pytest.raises(cc.PermissionDenied):
        await people.agent.resolve(decision.id, "approve")
    approved = await people.bob.resolve(decision.id, "approve")
    assert approved.status == APPROVED
    assert [v.by for v in approved.verdicts] == [lc.alice, lc.bob]
    outcome = await people.agent.record_outcome(decision.id, "success")
    assert outcome.outcome == cc.Outcome.OUTCOME_SUCCESS

    other = await people.agent.review(needs_people(new_id("r")))
    with pytest.raises(cc.InvalidArgument) as no_comment:
        await people.alice.resolve(other.id, "reject")
    assert no_comment.value.field == "comment"
    rejected = await people.alice.resolve(other.id, "reject", comment="not during the sale")
    assert rejected.status == REJECTED


async def test_a_verdict_whose_reply_was_lost_is_retried_with_the_same_request_id(
    people: People, new_id: Callable[[str], str]
) -> None:
    decision = await people.agent.review(needs_people(new_id("s")))
    retries: list[tuple[str, int]] = []
    policy = cc.RetryPolicy(
        attempts=10,
        initial_backoff=0.05,
        on_retry=lambda method, attempt, *_: retries.append((method, attempt)),
    )
    lc = people.lifecycle
    with FaultyProxy(lc.addr, cut_after_data_frames=1, lose_reply=True) as proxy:
        async with aio.connect(proxy.address, token=lc.alice_token, retry=policy) as flaky:
            resolved = await flaky.resolve(decision.id, "approve", comment="once")
        assert proxy.cuts == 1
    assert retries == [("ResolveDecision", 1)]
    assert [v.by for v in resolved.verdicts] == [lc.alice]
    assert len((await people.agent.get_decision(decision.id)).verdicts) == 1


async def test_await_ends_after_the_verdicts_other_principals_give(
    people: People, new_id: Callable[[str], str]
) -> None:
    decision = await people.agent.review(needs_people(new_id("s")))
    states = States()

    async def wait() -> None:
        async with people.agent.await_decision(decision.id, timeout=30) as waiting:
            async for state in waiting:
                await states.push(state)

    waiter = asyncio.create_task(wait())
    await states.until(PENDING, 0)
    await people.alice.resolve(decision.id, "approve")
    await states.until(PENDING, 1)
    await people.bob.resolve(decision.id, "approve", comment="go")
    await asyncio.wait_for(waiter, 30)  # ends by itself after the final status
    assert states.describe() == [(PENDING, 0), (PENDING, 1), (APPROVED, 2)]


async def test_await_resumes_after_a_dropped_connection_without_repeating_a_state(
    people: People, new_id: Callable[[str], str]
) -> None:
    decision = await people.agent.review(needs_people(new_id("s")))
    retried = asyncio.Event()
    policy = cc.RetryPolicy(
        attempts=5, initial_backoff=0.05, max_backoff=0.2, on_retry=lambda *_: retried.set()
    )
    states = States()
    lc = people.lifecycle
    with FaultyProxy(lc.addr, cut_after_data_frames=1) as proxy:
        async with aio.connect(proxy.address, token=lc.agent_token, retry=policy) as flaky:
            waiting = flaky.await_decision(decision.id, timeout=30)

            async def wait() -> None:
                async for state in waiting:
                    await states.push(state)

            waiter = asyncio.create_task(wait())
            await states.until(PENDING, 0)
            await asyncio.wait_for(retried.wait(), 10)
            await people.alice.resolve(decision.id, "approve")
            await states.until(PENDING, 1)
            await people.bob.resolve(decision.id, "approve")
            await asyncio.wait_for(waiter, 30)
        assert proxy.cuts == 1
    assert states.describe() == [(PENDING, 0), (PENDING, 1), (APPROVED, 2)]
    assert waiting.last is not None and waiting.last.status == APPROVED


async def test_await_timeout_cancel_task_cancel_and_not_found(
    people: People, new_id: Callable[[str], str]
) -> None:
    decision = await people.agent.review(needs_people(new_id("s")))
    seen: list[cc.Decision] = []
    started = time.monotonic()
    with pytest.raises(cc.DeadlineExceeded):
        async for state in people.agent.await_decision(decision.id, timeout=0.5):
            seen.append(state)
    assert time.monotonic() - started < 8
    assert [d.status for d in seen] == [PENDING]

    # cancel() from another task: the iteration ends quietly.
    states = States()
    waiting = people.agent.await_decision(decision.id)

    async def wait() -> None:
        async for state in waiting:
            await states.push(state)

    waiter = asyncio.create_task(wait())
    await states.until(PENDING, 0)
    waiting.cancel()
    await asyncio.wait_for(waiter, 10)  # no error
    assert len(states.seen) == 1

    # Cancelling the task that awaits: CancelledError in that task, promptly.
    states = States()
    waiter = asyncio.create_task(wait_into(people.agent.await_decision(decision.id), states))
    await states.until(PENDING, 0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiter, 5)

    final = await people.agent.review(auto_approved(new_id("a")))
    assert [d.status async for d in people.agent.await_decision(final.id, timeout=10)] == [
        APPROVED
    ]
    with pytest.raises(cc.NotFound):
        async for _ in people.agent.await_decision("dec-does-not-exist", timeout=5):
            pass


async def wait_into(waiting: cc.AsyncDecisionWait, states: States) -> None:
    async for state in waiting:
        await states.push(state)


async def test_guard_allows_an_auto_approved_change_at_once(
    people: People, new_id: Callable[[str], str]
) -> None:
    votes: list[cc.Vote] = []
    states = States()
    verdict = await people.agent.guard(
        auto_approved(new_id("s")), on_vote=votes.append, on_decision=states.push, timeout=15
    )
    assert verdict.allowed and verdict.outcome == "approved"
    assert verdict.reason.startswith("auto-approved by the council: ")
    assert len(votes) == 5
    assert [d.id for d in states.seen] == [verdict.decision_id]  # the async callback was awaited


async def test_guard_waits_for_people_while_the_approvers_act_on_the_same_loop(
    people: People, new_id: Callable[[str], str]
) -> None:
    lc = people.lifecycle
    states = States()
    guarding = asyncio.create_task(
        people.agent.guard(needs_people(new_id("s")), on_decision=states.push, timeout=30)
    )
    shown = await states.until(PENDING, 0)
    await people.alice.resolve(shown.id, "approve", comment="ship it")
    await states.until(PENDING, 1)
    await people.bob.resolve(shown.id, "approve")
    verdict = await asyncio.wait_for(guarding, 30)
    assert verdict.allowed and verdict.outcome == "approved"
    assert verdict.approved_by == (lc.alice, lc.bob)
    assert verdict.reason == f'approved by {lc.alice} ("ship it"), {lc.bob} (2 of 2 approvals)'
    assert states.describe() == [(PENDING, 0), (PENDING, 1), (APPROVED, 2)]


async def test_guard_rejected_expired_and_timed_out(
    people: People, new_id: Callable[[str], str]
) -> None:
    lc = people.lifecycle
    states = States()
    guarding = asyncio.create_task(
        people.agent.guard(needs_people(new_id("r")), on_decision=states.push, timeout=30)
    )
    shown = await states.until(PENDING, 0)
    await people.alice.resolve(shown.id, "reject", comment="not during the sale")
    rejected = await asyncio.wait_for(guarding, 30)
    assert not rejected.allowed and rejected.outcome == "rejected"
    assert rejected.reason == f'rejected by {lc.alice}: "not during the sale"'

    vetoed_verdict = await people.agent.guard(vetoed(new_id("v")), timeout=15)
    assert vetoed_verdict.outcome == "rejected"
    assert vetoed_verdict.decision_type == cc.DecisionType.DECISION_TYPE_REJECT

    expired = await people.agent.guard(deferred(new_id("d")), timeout=30)
    assert expired.outcome == "expired" and expired.status == EXPIRED
    assert re.fullmatch(r"expired at \S+ with 0 of 1 approvals", expired.reason), expired.reason

    started = time.monotonic()
    timed_out = await people.agent.guard(needs_people(new_id("t")), timeout=1.5)
    assert timed_out.timed_out and not timed_out.allowed and timed_out.status == PENDING
    assert time.monotonic() - started < 10
    assert (await people.agent.get_decision(timed_out.decision_id)).status == PENDING
