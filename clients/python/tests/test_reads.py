"""Paging, outcomes, lessons, summary, reviewers and watches against the live server."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable

import grpc
import pytest

import council_client as cc
from council_client.pb import council_service_pb2 as pb
from support import ROLES, low_risk, rejected, role


def test_list_decisions_walks_every_page_once(
    client: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    sid = new_id("paging")
    created = [client.review(low_risk(sid)).decision.id for _ in range(120)]
    assert len(set(created)) == 120

    listed = [d.id for d in client.list_decisions(suggestion_id=sid, page_size=25)]
    assert listed == created[::-1]  # each exactly once, newest first

    # The pages themselves, through the stub: four full pages, then 20 and no token.
    sizes, token = [], ""
    for _ in range(10):
        page = client.stub.ListDecisions(
            pb.ListDecisionsRequest(suggestion_id=sid, page_size=25, page_token=token), timeout=10
        )
        sizes.append(len(page.decisions))
        token = page.next_page_token
        if not token:
            break
    assert sizes == [25, 25, 25, 25, 20]

    # Unfiltered, across everything on the server: still each of ours exactly once.
    everything = Counter(d.id for d in client.list_decisions(page_size=25))
    assert all(everything[i] == 1 for i in created)
    assert max(everything.values()) == 1

    only_auto = client.list_decisions(suggestion_id=sid, decision_type="auto_approve", page_size=50)
    assert len(list(only_auto)) == 120
    assert list(client.list_decisions(suggestion_id=sid, decision_type="reject")) == []


def test_raw_stub_errors_convert_to_council_errors(client: cc.CouncilClient) -> None:
    with pytest.raises(grpc.RpcError) as err:
        client.stub.ListDecisions(pb.ListDecisionsRequest(page_token="forged"), timeout=10)
    error = cc.errors.from_rpc_error(err.value)
    assert isinstance(error, cc.InvalidArgument)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.field == "page_token"


def test_outcomes_lessons_and_summary(
    client: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    decision = client.review(low_risk(new_id("s"))).decision
    assert decision.outcome == cc.Outcome.OUTCOME_UNSPECIFIED
    before = client.summary()

    partial = client.record_outcome(decision.id, "partial", notes="half", lessons="first lesson")
    assert partial.outcome == cc.Outcome.OUTCOME_PARTIAL
    assert (partial.outcome_notes, partial.lessons_learned) == ("half", "first lesson")
    assert partial.HasField("implemented_at")
    done = client.record_outcome(
        decision.id, cc.Outcome.OUTCOME_SUCCESS, notes="all", lessons="second lesson"
    )
    assert done.outcome == cc.Outcome.OUTCOME_SUCCESS
    assert client.get_decision(decision.id) == done

    after = client.summary()
    assert after.learning_entries >= before.learning_entries + 2
    assert after.total_decisions >= before.total_decisions
    assert set(after.by_type) == {"auto_approve", "human_approve", "defer", "reject", "escalate"}
    assert set(after.outcomes) == {"success", "failure", "partial", "pending"}
    assert after.outcomes["success"] >= 1

    ours = [lesson for lesson in client.lessons(page_size=7) if lesson.decision_id == decision.id]
    assert [(lesson.outcome, lesson.lessons) for lesson in ours] == [
        (cc.Outcome.OUTCOME_SUCCESS, "second lesson"),
        (cc.Outcome.OUTCOME_PARTIAL, "first lesson"),
    ]

    with pytest.raises(cc.NotFound):
        client.record_outcome(f"dec-missing{uuid.uuid4().hex}", "success")
    with pytest.raises(cc.InvalidArgument) as err:
        client.record_outcome(decision.id, cc.Outcome.OUTCOME_UNSPECIFIED)
    assert err.value.field == "outcome"


def test_reviewers(client: cc.CouncilClient) -> None:
    reviewers = client.reviewers()
    assert [cc.short_name(cc.ReviewerRole, r.role) for r in reviewers.reviewers] == ROLES
    assert reviewers.reviewers[0].risk_tolerance == pytest.approx(0.2)
    assert "exposes_secrets" in reviewers.reviewers[0].veto_conditions
    assert reviewers.policy_version


def test_token_is_sent_as_bearer_metadata(addr: str) -> None:
    with cc.connect(addr, token="s3cret") as authed:
        assert authed.metadata == (("authorization", "Bearer s3cret"),)
        assert authed.reviewers().reviewers  # the server accepts the call


class Events:
    """Consumes a watch on a thread, so that the test can wait for events with a timeout."""

    def __init__(self, watch: cc.Watch) -> None:
        self._queue: queue.Queue[cc.WatchEvent | BaseException] = queue.Queue()
        self._watch = watch
        threading.Thread(target=self._consume, daemon=True).start()

    def _consume(self) -> None:
        try:
            for event in self._watch:
                self._queue.put(event)
        except BaseException as err:  # noqa: BLE001 (handed to the test thread)
            self._queue.put(err)

    def until_decision(self, decision_id: str, timeout: float) -> list[cc.WatchEvent] | None:
        """The events up to and including the decision ``decision_id``; None on timeout."""
        deadline = time.monotonic() + timeout
        seen: list[cc.WatchEvent] = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if isinstance(item, BaseException):
                raise item
            seen.append(item)
            if isinstance(item, cc.DecisionEvent) and item.decision_id == decision_id:
                return seen
        return None

    def wait_live(self, submit: Callable[[], cc.Decision]) -> None:
        """Submits probes until one comes through: the server has started the watch."""
        for _ in range(10):
            if self.until_decision(submit().id, timeout=1.0) is not None:
                return
        pytest.fail("the watch saw none of 10 probe reviews")


def test_watch_streams_a_new_review_with_its_votes(
    client: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    with client.watch(include_votes=True, timeout=60) as watch:
        events = Events(watch)
        events.wait_live(lambda: client.review(low_risk(new_id("probe"))).decision)

        # Neither an idempotent replay nor a dry run is a new review: the watch must not send them.
        request_id, replayed_sid = f"req-{uuid.uuid4()}", new_id("replayed")
        original = client.review(low_risk(replayed_sid), request_id=request_id).decision
        assert events.until_decision(original.id, timeout=10) is not None
        replay = client.review(low_risk(replayed_sid), request_id=request_id).decision
        assert replay.id == original.id
        dry = client.review(low_risk(new_id("dry")), dry_run=True).decision

        decision = client.review(low_risk(new_id("s"))).decision
        got = events.until_decision(decision.id, timeout=10)

    assert got is not None, "the watch did not send the review's decision within 10 s"
    assert all(e.decision_id not in (original.id, dry.id) for e in got)
    ours = [e for e in got if e.decision_id == decision.id]
    assert [type(e) for e in ours] == [cc.VoteEvent] * 5 + [cc.DecisionEvent]
    votes = [e.vote for e in ours if isinstance(e, cc.VoteEvent)]
    assert [role(v) for v in votes] == ROLES
    last = ours[-1]
    assert isinstance(last, cc.DecisionEvent)
    assert last.decision == decision
    assert last.suggestion_id == decision.suggestion_id


def test_watch_filters_by_decision_type(
    client: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    with client.watch(decision_type="reject", timeout=60) as watch:
        events = Events(watch)
        events.wait_live(lambda: client.review(rejected(new_id("probe"))).decision)
        approved = client.review(low_risk(new_id("approved"))).decision
        reject = client.review(rejected(new_id("rejected"))).decision
        assert reject.decision == cc.DecisionType.DECISION_TYPE_REJECT
        got = events.until_decision(reject.id, timeout=10)

    assert got is not None
    assert all(isinstance(e, cc.DecisionEvent) for e in got)  # no votes without include_votes
    assert all(e.decision_id != approved.id for e in got)


def test_cancelled_watch_stops_iterating(client: cc.CouncilClient) -> None:
    watch = client.watch(timeout=30)
    timer = threading.Timer(0.3, watch.cancel)
    timer.start()
    started = time.monotonic()
    for _ in watch:  # ends quietly once cancelled (other runs' events may come first)
        pass
    assert time.monotonic() - started < 10
    timer.join()
