"""The reviewer SDK, blocking flavour (:class:`council_client.Reviewer`,
:func:`council_client.serve_reviews`), against the live external-reviewer server (see
reviewer_support.py): a reviewer's vote counts with its principal as ``cast_by``, a veto rejects,
tasks are handled concurrently, a handler that raises or answers late sends no vote (the role's
failure policy votes), the reviewer reconnects after its connection is cut, stops cleanly, and
gives up at once on a configuration error.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

import council_client as cc
from aio_support import wait_until
from faulty_proxy import FaultyProxy, free_port
from reviewer_support import DIFF, TIMEOUT, External, connected, external_server, vote_of, with_diff


@pytest.fixture(scope="module")
def ext() -> External:
    return external_server()


@pytest.fixture
def agent(ext: External) -> Iterator[cc.CouncilClient]:
    with cc.connect(ext.addr, token=ext.agent_token, timeout=15) as client:
        yield client


def _approve(task: cc.ReviewTask) -> cc.ReviewVote:
    return cc.ReviewVote("approve", f"{task.role}: looks fine", confidence=0.8)


@contextmanager
def serving(
    ext: External,
    handler: Callable[[cc.ReviewTask], cc.ReviewVote | None],
    *,
    address: str | None = None,
    roles: tuple[cc.ReviewerRoleLike, ...] = ("safety", "quality"),
    on_connected: Callable[[], object] | None = None,
) -> Iterator[cc.Reviewer]:
    """A reviewer serving in the background, connected when the block starts, stopped (and
    checked to have ended without error) when it ends."""
    reviewer = cc.Reviewer(
        address or ext.addr,
        roles=roles,
        handler=handler,
        token=ext.reviewer_token,
        on_connected=on_connected,
    ).start()
    try:
        assert reviewer.wait_connected(10), "the reviewer did not connect within 10 s"
        yield reviewer
    finally:
        assert reviewer.stop(timeout=10), "the reviewer did not stop within 10 s"
    reviewer.wait(0)  # raises the error that ended it, if any


def test_the_reviewers_vote_counts_with_its_principal_as_cast_by(
    ext: External, agent: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    seen: list[cc.ReviewTask] = []
    left: list[float] = []

    def handler(task: cc.ReviewTask) -> cc.ReviewVote:
        seen.append(task)
        left.append(task.remaining())
        return cc.ReviewVote(
            "approve", "the diff is clean", concerns=["none"], conditions=["run the tests"],
            confidence=0.7,
        )

    stop = threading.Event()
    up = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        served = pool.submit(
            cc.serve_reviews,
            ext.addr,
            roles=["safety", "quality"],
            handler=handler,
            token=ext.reviewer_token,
            on_connected=up.set,
            stop=stop,
        )
        try:
            assert up.wait(10), "the reviewer did not connect within 10 s"
            review = agent.review(with_diff(new_id("s")))
            streamed = list(review)
            decision = review.decision
        finally:
            stop.set()
        assert served.result(timeout=10) is None

    safety = vote_of(decision, "safety")
    assert safety.cast_by == ext.principal
    assert safety.vote == cc.VoteType.VOTE_TYPE_APPROVE
    assert safety.reasoning == "the diff is clean"
    assert list(safety.concerns) == ["none"] and list(safety.conditions) == ["run the tests"]
    assert safety.confidence == pytest.approx(0.7)
    assert vote_of(decision, "quality").cast_by == ext.principal
    assert vote_of(decision, "performance").cast_by == "rules"
    assert decision.decision == cc.DecisionType.DECISION_TYPE_AUTO_APPROVE
    # The external votes were streamed as they were cast, like the built-in ones.
    assert sorted(v.cast_by for v in streamed) == sorted([ext.principal] * 2 + ["rules"] * 3)

    assert sorted(t.role for t in seen) == ["quality", "safety"]
    task = seen[0]
    assert task.decision_id == decision.id and task.task_id
    assert task.suggestion.diff == DIFF and task.suggestion.id == decision.suggestion_id
    assert not task.dry_run
    assert all(0 < seconds <= TIMEOUT for seconds in left)
    assert task.deadline.tzinfo is not None


def test_a_veto_rejects_the_change(
    ext: External, agent: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    def handler(task: cc.ReviewTask) -> cc.ReviewVote:
        if task.role == "safety":
            return cc.ReviewVote("reject", "the diff deletes tests", veto="deletes_tests")
        return _approve(task)

    with serving(ext, handler):
        decision = agent.review(with_diff(new_id("s"))).decision
    assert decision.decision == cc.DecisionType.DECISION_TYPE_REJECT
    safety = vote_of(decision, "safety")
    assert (safety.vote, safety.veto, safety.cast_by) == (
        cc.VoteType.VOTE_TYPE_REJECT,
        "deletes_tests",
        ext.principal,
    )
    assert "deletes_tests" in decision.final_reasoning


def test_tasks_are_handled_concurrently(
    ext: External, agent: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    # Each safety handler waits until the other one runs too: it passes only if both run at once.
    both = threading.Barrier(2, timeout=TIMEOUT - 0.5)

    def handler(task: cc.ReviewTask) -> cc.ReviewVote:
        if task.role == "safety":
            both.wait()
        return _approve(task)

    with serving(ext, handler), ThreadPoolExecutor(2) as pool:
        reviews = [pool.submit(lambda: agent.review(with_diff(new_id("s"))).decision) for _ in "ab"]
        decisions = [r.result(timeout=15) for r in reviews]
    assert [vote_of(d, "safety").cast_by for d in decisions] == [ext.principal] * 2


def test_at_most_concurrency_handlers_run_at_once(
    ext: External,
    agent: cc.CouncilClient,
    new_id: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    lock = threading.Lock()
    active = calls = peak = 0
    release = threading.Event()

    def handler(task: cc.ReviewTask) -> cc.ReviewVote:
        nonlocal active, calls, peak
        with lock:
            active, calls = active + 1, calls + 1
            peak = max(peak, active)
        release.wait(task.remaining())
        with lock:
            active -= 1
        return _approve(task)

    def received() -> int:
        return sum(r.getMessage().endswith(": received") for r in caplog.records)

    caplog.set_level(logging.DEBUG, logger="council_client")
    reviewer = cc.Reviewer(
        ext.addr, roles=["safety"], handler=handler, token=ext.reviewer_token, concurrency=2
    )
    with reviewer, ThreadPoolExecutor(3) as pool:
        assert reviewer.wait_connected(10)
        reviews = [
            pool.submit(lambda: agent.review(with_diff(new_id("s"))).decision) for _ in "abc"
        ]
        # Three tasks received, two handlers running: the third waits for a free one.
        wait_until(lambda: received() == 3 and active == 2, "3 tasks in, 2 handlers", TIMEOUT)
        assert calls == 2
        release.set()
        decisions = [r.result(timeout=15) for r in reviews]
    assert peak == 2 and calls == 3
    assert [vote_of(d, "safety").cast_by for d in decisions] == [ext.principal] * 3


def test_a_handler_that_raises_sends_no_vote_and_the_failure_policy_votes(
    ext: External,
    agent: cc.CouncilClient,
    new_id: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    def handler(task: cc.ReviewTask) -> cc.ReviewVote:
        if task.role == "safety":
            raise RuntimeError("the model is down")
        return _approve(task)

    caplog.set_level(logging.ERROR, logger="council_client")
    with serving(ext, handler):
        decision = agent.review(with_diff(new_id("s"))).decision
    safety = vote_of(decision, "safety")
    assert safety.cast_by == "fallback:needs_more_info"
    assert safety.vote == cc.VoteType.VOTE_TYPE_NEEDS_MORE_INFO
    assert safety.reasoning == "[SAFETY] No external vote: timed out"
    assert vote_of(decision, "quality").cast_by == ext.principal
    failures = [r for r in caplog.records if r.exc_info and "model is down" in str(r.exc_info[1])]
    assert len(failures) == 1 and decision.id in failures[0].getMessage()


def test_a_vote_the_handler_returns_after_the_deadline_is_dropped(
    ext: External,
    agent: cc.CouncilClient,
    new_id: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    never = threading.Event()

    def handler(task: cc.ReviewTask) -> cc.ReviewVote:
        if task.role == "safety":
            never.wait(task.remaining() + 0.3)  # past the deadline, on purpose
        return _approve(task)

    caplog.set_level(logging.WARNING, logger="council_client")
    with serving(ext, handler):
        decision = agent.review(with_diff(new_id("s"))).decision
        assert vote_of(decision, "safety").reasoning == "[SAFETY] No external vote: timed out"
        wait_until(
            lambda: any("dropped" in r.getMessage() for r in caplog.records),
            "the late vote logged as dropped",
            timeout=10,
        )
    late = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(late) == 1 and decision.id in late[0].getMessage()


def test_it_reconnects_after_the_connection_is_cut(
    ext: External, agent: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    accepted = threading.Semaphore(0)
    with FaultyProxy(ext.addr) as proxy:
        with serving(ext, _approve, address=proxy.address, on_connected=accepted.release) as rev:
            assert accepted.acquire(timeout=5)
            proxy.cut()
            assert accepted.acquire(timeout=10), "no new stream within 10 s of the cut"
            assert rev.connections == 2 and proxy.connections >= 2
            decision = agent.review(with_diff(new_id("s"))).decision
    assert vote_of(decision, "safety").cast_by == ext.principal
    assert vote_of(decision, "quality").cast_by == ext.principal


def test_a_server_that_is_down_is_retried_with_a_growing_backoff(ext: External) -> None:
    delays: list[tuple[cc.CouncilError | None, float]] = []
    stop = threading.Event()

    def retried(error: cc.CouncilError | None, delay: float) -> None:
        delays.append((error, delay))
        if len(delays) == 6:
            stop.set()

    policy = cc.ReconnectPolicy(initial_backoff=0.01, max_backoff=0.08, on_reconnect=retried)
    nobody = f"127.0.0.1:{free_port()}"  # nothing listens there: every stream fails UNAVAILABLE
    cc.serve_reviews(nobody, roles=["safety"], handler=_approve, reconnect=policy, stop=stop)
    assert [type(error) for error, _ in delays] == [cc.Unavailable] * 6
    caps = [0.01, 0.02, 0.04, 0.08, 0.08, 0.08]  # full jitter: a random wait up to each cap
    assert all(0 <= delay <= cap for (_, delay), cap in zip(delays, caps))


def test_stop_ends_serving_cleanly(
    ext: External, agent: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    reviewer = cc.Reviewer(
        ext.addr, roles=["safety"], handler=_approve, token=ext.reviewer_token
    ).start()
    assert reviewer.wait_connected(10)
    assert reviewer.connected
    assert connected(agent.reviewers(), "safety") == 1
    assert reviewer.stop(timeout=10) is True
    assert not reviewer.connected and reviewer.error is None
    reviewer.wait(0)
    # Stopping half-closes the stream and waits for the server's OK: the server has let go of it.
    assert connected(agent.reviewers(), "safety") == 0
    safety = vote_of(agent.review(with_diff(new_id("s"))).decision, "safety")
    assert safety.reasoning == "[SAFETY] No external vote: no reviewer connected"
    assert reviewer.stop(timeout=1) is True  # again: nothing to do


def test_a_role_that_is_not_external_raises_failed_precondition(ext: External) -> None:
    up = threading.Event()
    stop = threading.Event()
    # Were it retried, the first retry would stop serving (and nothing would be raised).
    retries = cc.ReconnectPolicy(on_reconnect=lambda error, delay: stop.set())
    with pytest.raises(cc.FailedPrecondition) as raised:
        cc.serve_reviews(
            ext.addr,
            roles=["performance"],
            handler=_approve,
            token=ext.reviewer_token,
            on_connected=up.set,
            reconnect=retries,
            stop=stop,
        )
    assert "not external" in raised.value.details
    assert not up.is_set() and not stop.is_set()


def test_configuration_errors_end_serving_without_retrying(ext: External) -> None:
    attempts: list[cc.CouncilError | None] = []
    stop = threading.Event()

    def retried(error: cc.CouncilError | None, delay: float) -> None:
        attempts.append(error)
        stop.set()  # a retry would then end serving, with nothing raised

    policy = cc.ReconnectPolicy(on_reconnect=retried)
    with pytest.raises(cc.Unauthenticated):  # no token
        cc.serve_reviews(ext.addr, roles=["safety"], handler=_approve, reconnect=policy, stop=stop)
    reviewer = cc.Reviewer(
        ext.addr,
        roles=["safety"],
        handler=_approve,
        token=ext.agent_token,  # a principal without the role reviewer
        reconnect=policy,
        stop=stop,
    ).start()
    with pytest.raises(cc.PermissionDenied):
        reviewer.wait(10)
    assert isinstance(reviewer.error, cc.PermissionDenied)
    assert attempts == []
    with pytest.raises(ValueError):
        cc.Reviewer(ext.addr, roles=[], handler=_approve)
    with pytest.raises(ValueError):
        cc.ReviewVote("approve", confidence=1.5)
    with pytest.raises(ValueError):
        cc.ReviewVote("approve", veto="not_on_an_approve")
    with pytest.raises(ValueError):
        cc.ReviewVote("reject", veto="Not Snake Case")
