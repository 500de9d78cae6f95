"""Human verdicts (SPEC section 9): resolve, await_decision and the guard.

These run against the lifecycle server that the repository's test/clients.test.ts starts, given in
the environment:

- ``COUNCIL_TEST_LIFECYCLE_ADDR``: plaintext, with the auth file of principals and tokens, and a
  policy where HUMAN_APPROVE needs 2 approvals within 10 minutes and DEFER 1 within 1 second;
- ``COUNCIL_TEST_AGENT_TOKEN`` / ``_PRINCIPAL``: role agent (submits reviews);
- ``COUNCIL_TEST_APPROVER_TOKEN`` / ``_PRINCIPAL`` and ``COUNCIL_TEST_APPROVER2_TOKEN`` /
  ``_PRINCIPAL``: two principals with the role approver.

Nothing sleeps for a fixed time: each step waits for the state or callback it needs, bounded.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

import council_client as cc
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


@pytest.fixture(scope="module")
def lifecycle() -> Lifecycle:
    return lifecycle_server()


@pytest.fixture(scope="module")
def agent(lifecycle: Lifecycle) -> Iterator[cc.CouncilClient]:
    with cc.connect(lifecycle.addr, token=lifecycle.agent_token, timeout=10) as c:
        yield c


@pytest.fixture(scope="module")
def alice(lifecycle: Lifecycle) -> Iterator[cc.CouncilClient]:
    with cc.connect(lifecycle.addr, token=lifecycle.alice_token, timeout=10) as c:
        yield c


@pytest.fixture(scope="module")
def bob(lifecycle: Lifecycle) -> Iterator[cc.CouncilClient]:
    with cc.connect(lifecycle.addr, token=lifecycle.bob_token, timeout=10) as c:
        yield c


@pytest.fixture
def background() -> Iterator[ThreadPoolExecutor]:
    """Runs a guard or a wait in another thread while the test plays the approvers."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield pool


class States:
    """The states something reports (from any thread), and a bounded wait for one that matches."""

    def __init__(self) -> None:
        self.seen: list[cc.Decision] = []
        self._cond = threading.Condition()

    def push(self, decision: cc.Decision) -> None:
        with self._cond:
            self.seen.append(decision)
            self._cond.notify_all()

    def until(
        self, match: Callable[[cc.Decision], bool], what: str, timeout: float = 10.0
    ) -> cc.Decision:
        with self._cond:
            found: list[cc.Decision] = []

            def ready() -> bool:
                found[:] = [d for d in self.seen if match(d)]
                return bool(found)

            if not self._cond.wait_for(ready, timeout=timeout):
                pytest.fail(f"no state {what} within {timeout} s; seen {self.describe()}")
            return found[0]

    def describe(self) -> list[tuple[str, int]]:
        return [(cc.short_name(cc.DecisionStatus, d.status), len(d.verdicts)) for d in self.seen]


def pending(verdicts: int) -> Callable[[cc.Decision], bool]:
    return lambda d: d.status == PENDING and len(d.verdicts) == verdicts


def result(future: Future[cc.GuardVerdict], timeout: float = 30.0) -> cc.GuardVerdict:
    return future.result(timeout=timeout)


# resolve


def test_two_distinct_approvers_approve_and_a_repeat_changes_nothing(
    agent: cc.CouncilClient,
    alice: cc.CouncilClient,
    bob: cc.CouncilClient,
    lifecycle: Lifecycle,
    new_id: Callable[[str], str],
) -> None:
    decision = agent.review(needs_people(new_id("s"))).decision
    assert decision.decision == cc.DecisionType.DECISION_TYPE_HUMAN_APPROVE
    assert decision.status == PENDING
    assert decision.approvals_required == 2
    assert decision.HasField("expires_at")
    assert decision.submitted_by == lifecycle.agent

    first = alice.resolve(decision.id, "approve", comment="index looks right")
    assert first.status == PENDING
    assert [(v.by, v.verdict, v.comment) for v in first.verdicts] == [
        (lifecycle.alice, cc.VerdictType.VERDICT_TYPE_APPROVE, "index looks right")
    ]
    # The same verdict again (another request id) returns the decision as it is.
    assert len(alice.resolve(decision.id, cc.VerdictType.VERDICT_TYPE_APPROVE).verdicts) == 1
    # The other verdict from the same principal is refused.
    with pytest.raises(cc.FailedPrecondition):
        alice.resolve(decision.id, "reject", comment="changed my mind")
    # The agent holds no approver role.
    with pytest.raises(cc.PermissionDenied):
        agent.resolve(decision.id, "approve")

    approved = bob.resolve(decision.id, "approve")
    assert approved.status == APPROVED
    assert [v.by for v in approved.verdicts] == [lifecycle.alice, lifecycle.bob]
    assert agent.get_decision(decision.id).status == APPROVED
    assert agent.record_outcome(decision.id, "success").outcome == cc.Outcome.OUTCOME_SUCCESS


def test_a_rejection_needs_a_comment_and_closes_the_decision(
    agent: cc.CouncilClient,
    alice: cc.CouncilClient,
    bob: cc.CouncilClient,
    lifecycle: Lifecycle,
    new_id: Callable[[str], str],
) -> None:
    decision = agent.review(needs_people(new_id("s"))).decision
    with pytest.raises(cc.InvalidArgument) as no_comment:
        alice.resolve(decision.id, "reject")
    assert no_comment.value.field == "comment"
    with pytest.raises(cc.FailedPrecondition):
        agent.record_outcome(decision.id, "success")  # not while pending

    rejected = alice.resolve(decision.id, "reject", comment="not during the sale")
    assert rejected.status == REJECTED
    assert [(v.by, v.verdict, v.comment) for v in rejected.verdicts] == [
        (lifecycle.alice, cc.VerdictType.VERDICT_TYPE_REJECT, "not during the sale")
    ]
    with pytest.raises(cc.FailedPrecondition, match="(?i)rejected"):
        bob.resolve(decision.id, "approve")
    with pytest.raises(cc.FailedPrecondition):
        agent.record_outcome(decision.id, "success")
    with pytest.raises(ValueError, match="verdict"):
        alice.resolve(decision.id, "maybe")  # type: ignore[arg-type]


def test_a_verdict_whose_reply_was_lost_is_retried_with_the_same_request_id(
    agent: cc.CouncilClient, lifecycle: Lifecycle, new_id: Callable[[str], str]
) -> None:
    decision = agent.review(needs_people(new_id("s"))).decision
    retries: list[tuple[str, int]] = []
    policy = cc.RetryPolicy(
        attempts=10,
        initial_backoff=0.05,
        max_backoff=0.5,
        on_retry=lambda method, attempt, _err, _delay: retries.append((method, attempt)),
    )
    with FaultyProxy(lifecycle.addr, cut_after_data_frames=1, lose_reply=True) as proxy:
        with cc.connect(
            proxy.address, token=lifecycle.alice_token, retry=policy, timeout=15
        ) as flaky:
            resolved = flaky.resolve(decision.id, "approve", comment="once")
        assert proxy.cuts == 1  # the reply was lost after the server counted the verdict
    assert retries == [("ResolveDecision", 1)]
    assert [v.by for v in resolved.verdicts] == [lifecycle.alice]
    assert len(agent.get_decision(decision.id).verdicts) == 1


def test_the_approvers_queue_and_the_summary_by_status(
    agent: cc.CouncilClient, alice: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    older = agent.review(needs_people(new_id("old"))).decision
    newer = agent.review(needs_people(new_id("new"))).decision
    queue = [d.id for d in alice.list_decisions(status="pending", oldest_first=True)]
    assert older.id in queue and newer.id in queue
    assert queue.index(older.id) < queue.index(newer.id)
    assert all(d.status == PENDING for d in alice.list_decisions(status=PENDING, page_size=20))
    assert alice.summary().by_status["pending"] >= 2


# await_decision


def test_await_ends_after_the_verdicts_another_principal_gives(
    agent: cc.CouncilClient,
    alice: cc.CouncilClient,
    bob: cc.CouncilClient,
    lifecycle: Lifecycle,
    background: ThreadPoolExecutor,
    new_id: Callable[[str], str],
) -> None:
    decision = agent.review(needs_people(new_id("s"))).decision
    states = States()

    def wait() -> None:
        with agent.await_decision(decision.id, timeout=30) as waiting:
            for state in waiting:
                states.push(state)

    done = background.submit(wait)
    states.until(pending(0), "pending with no verdict")
    alice.resolve(decision.id, "approve")
    states.until(pending(1), "pending with alice's approval")
    bob.resolve(decision.id, "approve", comment="go")
    done.result(timeout=30)  # ends by itself after the final status
    assert [(d.status, len(d.verdicts)) for d in states.seen] == [
        (PENDING, 0),
        (PENDING, 1),
        (APPROVED, 2),
    ]
    assert [v.by for v in states.seen[-1].verdicts] == [lifecycle.alice, lifecycle.bob]


def test_await_resumes_after_a_dropped_connection_without_repeating_a_state(
    agent: cc.CouncilClient,
    alice: cc.CouncilClient,
    bob: cc.CouncilClient,
    lifecycle: Lifecycle,
    background: ThreadPoolExecutor,
    new_id: Callable[[str], str],
) -> None:
    """The proxy drops the connection right after the first state: UNAVAILABLE, retried by
    awaiting again, whose first state (the same one) is not yielded twice."""
    decision = agent.review(needs_people(new_id("s"))).decision
    retried = threading.Event()
    retries: list[tuple[str, int]] = []

    def on_retry(method: str, attempt: int, _err: cc.CouncilError, _delay: float) -> None:
        retries.append((method, attempt))
        retried.set()

    policy = cc.RetryPolicy(attempts=5, initial_backoff=0.05, max_backoff=0.2, on_retry=on_retry)
    states = States()
    with FaultyProxy(lifecycle.addr, cut_after_data_frames=1) as proxy:
        with cc.connect(proxy.address, token=lifecycle.agent_token, retry=policy) as flaky:

            def wait() -> None:
                for state in flaky.await_decision(decision.id, timeout=30):
                    states.push(state)

            done = background.submit(wait)
            states.until(pending(0), "the current state")
            assert retried.wait(10), "the dropped await was not retried"
            alice.resolve(decision.id, "approve")
            states.until(pending(1), "alice's approval, after the resume")
            bob.resolve(decision.id, "approve")
            done.result(timeout=30)
        assert proxy.cuts == 1
    assert retries == [("AwaitDecision", 1)]
    assert [(d.status, len(d.verdicts)) for d in states.seen] == [
        (PENDING, 0),
        (PENDING, 1),
        (APPROVED, 2),
    ]


def test_await_of_a_final_decision_sends_it_once(
    agent: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    decision = agent.review(auto_approved(new_id("s"))).decision
    assert [d.status for d in agent.await_decision(decision.id, timeout=10)] == [APPROVED]


def test_await_timeout_raises_deadline_exceeded_after_the_current_state(
    agent: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    decision = agent.review(needs_people(new_id("s"))).decision
    seen: list[cc.Decision] = []
    started = time.monotonic()
    with pytest.raises(cc.DeadlineExceeded):
        for state in agent.await_decision(decision.id, timeout=0.5):
            seen.append(state)
    assert time.monotonic() - started < 8
    assert [d.status for d in seen] == [PENDING]


def test_cancel_ends_the_await_quietly(
    agent: cc.CouncilClient, background: ThreadPoolExecutor, new_id: Callable[[str], str]
) -> None:
    decision = agent.review(needs_people(new_id("s"))).decision
    waiting = agent.await_decision(decision.id)
    states = States()

    def wait() -> None:
        for state in waiting:
            states.push(state)

    done = background.submit(wait)
    states.until(pending(0), "the current state")
    waiting.cancel()
    done.result(timeout=10)  # no error
    assert len(states.seen) == 1


def test_await_of_an_unknown_decision_is_not_found(agent: cc.CouncilClient) -> None:
    with pytest.raises(cc.NotFound):
        list(agent.await_decision("dec-does-not-exist", timeout=5))


# guard


def test_guard_allows_an_auto_approved_change_at_once(
    agent: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    votes: list[cc.Vote] = []
    states = States()
    verdict = agent.guard(
        auto_approved(new_id("s")), on_vote=votes.append, on_decision=states.push, timeout=15
    )
    assert verdict.allowed
    assert verdict.outcome == "approved" and not verdict.timed_out
    assert verdict.decision_type == cc.DecisionType.DECISION_TYPE_AUTO_APPROVE
    assert verdict.status == APPROVED
    assert verdict.reason.startswith("auto-approved by the council: ")
    assert verdict.approved_by == ()
    assert verdict.conditions == tuple(verdict.decision.conditions)
    assert len(votes) == 5
    assert [d.id for d in states.seen] == [verdict.decision_id]


def test_guard_waits_for_people_and_allows_after_both_approvals(
    agent: cc.CouncilClient,
    alice: cc.CouncilClient,
    bob: cc.CouncilClient,
    lifecycle: Lifecycle,
    background: ThreadPoolExecutor,
    new_id: Callable[[str], str],
) -> None:
    states = States()
    votes: list[cc.Vote] = []
    guarding = background.submit(
        agent.guard,
        needs_people(new_id("s")),
        on_vote=votes.append,
        on_decision=states.push,
        timeout=30,
    )
    # The approvers act on what the agent shows them: the pending decision's id.
    shown = states.until(pending(0), "pending (the council's decision)")
    assert len(votes) == 5, "every vote came before the decision"
    alice.resolve(shown.id, "approve", comment="ship it")
    states.until(pending(1), "alice's approval")
    bob.resolve(shown.id, "approve")
    verdict = result(guarding)
    assert verdict.allowed and verdict.outcome == "approved"
    assert verdict.decision_type == cc.DecisionType.DECISION_TYPE_HUMAN_APPROVE
    assert verdict.approved_by == (lifecycle.alice, lifecycle.bob)
    assert verdict.rejected_by == ()
    assert [v.comment for v in verdict.verdicts] == ["ship it", ""]
    assert verdict.reason == (
        f'approved by {lifecycle.alice} ("ship it"), {lifecycle.bob} (2 of 2 approvals)'
    )
    assert [(d.status, len(d.verdicts)) for d in states.seen] == [
        (PENDING, 0),
        (PENDING, 1),
        (APPROVED, 2),
    ]


def test_guard_does_not_allow_what_an_approver_rejected_and_says_why(
    agent: cc.CouncilClient,
    alice: cc.CouncilClient,
    lifecycle: Lifecycle,
    background: ThreadPoolExecutor,
    new_id: Callable[[str], str],
) -> None:
    states = States()
    guarding = background.submit(
        agent.guard, needs_people(new_id("s")), on_decision=states.push, timeout=30
    )
    shown = states.until(pending(0), "pending")
    alice.resolve(shown.id, "reject", comment="not during the sale")
    verdict = result(guarding)
    assert not verdict.allowed
    assert verdict.outcome == "rejected" and not verdict.timed_out
    assert verdict.status == REJECTED
    assert verdict.rejected_by == (lifecycle.alice,)
    assert verdict.verdicts[0].comment == "not during the sale"
    assert verdict.reason == f'rejected by {lifecycle.alice}: "not during the sale"'


def test_guard_does_not_allow_what_the_council_rejected(
    agent: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    verdict = agent.guard(vetoed(new_id("s")), timeout=15)
    assert not verdict.allowed and verdict.outcome == "rejected"
    assert verdict.decision_type == cc.DecisionType.DECISION_TYPE_REJECT
    assert verdict.reason.startswith(
        "rejected by the council: Vetoed by safety: bypasses_authentication"
    )


def test_guard_does_not_allow_an_expired_decision(
    agent: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    states = States()
    verdict = agent.guard(deferred(new_id("s")), on_decision=states.push, timeout=30)
    assert not verdict.allowed
    assert verdict.outcome == "expired" and not verdict.timed_out
    assert verdict.decision_type == cc.DecisionType.DECISION_TYPE_DEFER
    assert verdict.status == EXPIRED
    assert re.fullmatch(r"expired at \S+ with 0 of 1 approvals", verdict.reason), verdict.reason
    assert [d.status for d in states.seen] == [PENDING, EXPIRED]


def test_guard_timeout_says_timed_out_not_rejected(
    agent: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    started = time.monotonic()
    verdict = agent.guard(needs_people(new_id("s")), timeout=1.5)
    assert not verdict.allowed
    assert verdict.outcome == "timed_out" and verdict.timed_out
    assert verdict.status == PENDING
    assert verdict.rejected_by == ()
    assert re.match(
        rf"timed out after \d+ ms: decision {verdict.decision_id} "
        r"\(DECISION_TYPE_HUMAN_APPROVE\) is still pending \(0 of 2 approvals",
        verdict.reason,
    ), verdict.reason
    assert time.monotonic() - started < 10
    assert agent.get_decision(verdict.decision_id).status == PENDING


def test_guard_of_a_superseded_decision_is_not_allowed(
    agent: cc.CouncilClient, background: ThreadPoolExecutor, new_id: Callable[[str], str]
) -> None:
    states = States()
    first = background.submit(
        agent.guard, needs_people(new_id("first")), on_decision=states.push, timeout=30
    )
    shown = states.until(pending(0), "pending")
    follow_up = agent.review(needs_people(new_id("again")), supersedes=shown.id).decision
    assert follow_up.supersedes == shown.id
    verdict = result(first)
    assert not verdict.allowed and verdict.outcome == "superseded"
    assert verdict.reason == f"superseded by {follow_up.id}"
