"""Reviews: streaming order, idempotent retries (with real network faults), dry runs, errors."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import grpc
import pytest

import council_client as cc
from council_client.pb import council_service_pb2 as pb
from faulty_proxy import FaultyProxy
from support import ROLES, low_risk, role

def test_votes_stream_in_reviewer_order_before_the_decision(
    client: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    sid = new_id("s")
    arrivals: list[tuple[str, float]] = []
    review = client.review(low_risk(sid), timeout=10)
    for vote in review:
        assert not review.done, "the decision arrived before a vote"
        arrivals.append((role(vote), time.monotonic()))
    decision = review.decision
    arrivals.append(("decision", time.monotonic()))

    assert [name for name, _ in arrivals] == [*ROLES, "decision"]
    assert [t for _, t in arrivals] == sorted(t for _, t in arrivals)
    assert decision.id.startswith("dec-") and decision.id == review.decision_id
    assert decision.suggestion_id == sid
    assert decision.decision == cc.DecisionType.DECISION_TYPE_AUTO_APPROVE
    assert [role(v) for v in decision.votes] == ROLES
    assert list(decision.votes) == review.votes
    assert review.attempts == 1
    assert client.get_decision(decision.id) == decision


def test_raw_stream_events_are_five_votes_then_the_decision(
    client: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    """The same order, as the generated stub sees it, with every event's ids."""
    sid = new_id("s")
    request = pb.ReviewSuggestionRequest(suggestion=low_risk(sid), request_id=str(uuid.uuid4()))
    events = list(client.stub.ReviewSuggestion(request, timeout=10))
    assert [e.WhichOneof("event") for e in events] == ["vote"] * 5 + ["decision"]
    assert [role(e.vote) for e in events[:5]] == ROLES
    assert len({e.decision_id for e in events}) == 1
    assert events[0].decision_id == events[5].decision.id
    assert {e.suggestion_id for e in events} == {sid}


def test_same_request_id_replays_the_same_decision(
    client: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    sid = new_id("s")
    request_id = f"req-{uuid.uuid4()}"
    first = client.review(low_risk(sid), request_id=request_id)
    second = client.review(low_risk(sid), request_id=request_id)
    assert first.request_id == second.request_id == request_id
    assert second.decision.id == first.decision.id
    assert second.votes == first.votes
    assert [d.id for d in client.list_decisions(suggestion_id=sid)] == [first.decision.id]
    assert client.get_decision(first.decision.id).request_id == request_id

    with pytest.raises(cc.FailedPrecondition) as err:
        _ = client.review(low_risk(new_id("other")), request_id=request_id).decision
    assert err.value.code is grpc.StatusCode.FAILED_PRECONDITION
    assert "request_id" in err.value.details


def test_retries_unavailable_until_the_server_listens(
    client: cc.CouncilClient, addr: str, new_id: Callable[[str], str]
) -> None:
    """Nothing listens on the port at first (connection refused: UNAVAILABLE); a proxy to the
    live server starts listening there when the client announces its first retry."""
    proxy = FaultyProxy(addr)  # bound, not listening yet: connections are refused
    retries: list[tuple[str, int, grpc.StatusCode]] = []

    def on_retry(method: str, attempt: int, error: cc.CouncilError, delay: float) -> None:
        retries.append((method, attempt, error.code))
        if attempt == 1:
            proxy.start()

    policy = cc.RetryPolicy(attempts=20, initial_backoff=0.05, max_backoff=0.3, on_retry=on_retry)
    sid = new_id("s")
    try:
        with cc.connect(proxy.address, retry=policy, timeout=15) as flaky:
            review = flaky.review(low_risk(sid))
            votes = [role(v) for v in review]
            decision = review.decision
    finally:
        proxy.close()

    assert retries and retries[0] == ("ReviewSuggestion", 1, grpc.StatusCode.UNAVAILABLE)
    assert review.attempts == len(retries) + 1
    assert votes == ROLES
    stored = client.get_decision(decision.id)
    assert stored.request_id == review.request_id  # the same request_id on every attempt
    assert [d.id for d in client.list_decisions(suggestion_id=sid)] == [decision.id]


def test_retry_after_a_mid_stream_drop_replays_without_repeating_votes(
    client: cc.CouncilClient, addr: str, new_id: Callable[[str], str]
) -> None:
    """The connection drops right after the first vote reaches the client; the retry (same
    request_id) replays the stored review, and the client yields only the four votes not seen."""
    retries: list[tuple[int, int]] = []
    sid = new_id("s")
    with FaultyProxy(addr, cut_after_data_frames=1) as proxy:
        review: cc.Review | None = None

        def on_retry(method: str, attempt: int, error: cc.CouncilError, delay: float) -> None:
            assert error.code is grpc.StatusCode.UNAVAILABLE
            retries.append((attempt, len(review.votes) if review else -1))

        policy = cc.RetryPolicy(attempts=10, initial_backoff=0.05, on_retry=on_retry)
        with cc.connect(proxy.address, retry=policy, timeout=15) as flaky:
            review = flaky.review(low_risk(sid))
            votes = [role(v) for v in review]
            decision = review.decision
        assert proxy.cuts == 1

    assert retries == [(1, 1)]  # one retry, after exactly one vote had been yielded
    assert votes == ROLES
    assert review.attempts == 2
    assert decision.id == review.decision_id
    assert [d.id for d in client.list_decisions(suggestion_id=sid)] == [decision.id]


def test_dry_run_streams_a_decision_and_stores_nothing(
    client: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    sid = new_id("s")
    review = client.review(low_risk(sid), dry_run=True)
    assert [role(v) for v in review] == ROLES
    decision = review.decision
    assert decision.id.startswith("dec-") and decision.id == review.decision_id
    assert decision.decision == cc.DecisionType.DECISION_TYPE_AUTO_APPROVE
    with pytest.raises(cc.NotFound) as err:
        client.get_decision(decision.id)
    assert err.value.code is grpc.StatusCode.NOT_FOUND
    assert list(client.list_decisions(suggestion_id=sid)) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": ""}, "suggestion.title"),
        ({"title": "   "}, "suggestion.title"),
        ({"id": ""}, "suggestion.id"),
        ({"risk": cc.RiskLevel.RISK_LEVEL_UNSPECIFIED}, "suggestion.risk"),
        ({"impact": cc.ImpactLevel.IMPACT_LEVEL_UNSPECIFIED}, "suggestion.impact"),
    ],
)
def test_bad_suggestion_is_invalid_argument_naming_the_field(
    client: cc.CouncilClient, new_id: Callable[[str], str], change: dict[str, object], field: str
) -> None:
    suggestion = low_risk(new_id("s"))
    for name, value in change.items():
        setattr(suggestion, name, value)
    review = client.review(suggestion)
    with pytest.raises(cc.InvalidArgument) as err:
        list(review)
    assert err.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert field in err.value.details
    assert err.value.field == field
    assert review.attempts == 1  # not retried
    with pytest.raises(cc.InvalidArgument):
        _ = review.decision  # the same error again


def test_short_names_are_checked(new_id: Callable[[str], str]) -> None:
    with pytest.raises(ValueError, match="expected one of"):
        cc.build_suggestion(new_id("s"), "t", risk="huge", impact="low")  # type: ignore[arg-type]
    suggestion = cc.build_suggestion(new_id("s"), "t", risk="critical", impact="transformative")
    assert suggestion.risk == cc.RiskLevel.RISK_LEVEL_CRITICAL
    assert suggestion.impact == cc.ImpactLevel.IMPACT_LEVEL_TRANSFORMATIVE
    assert suggestion.estimated_effort == cc.Effort.EFFORT_UNSPECIFIED


def test_deadline_exceeded_is_raised_with_its_status(client: cc.CouncilClient) -> None:
    started = time.monotonic()
    with pytest.raises(cc.DeadlineExceeded) as err:
        # A watch on a type nobody produces here sends nothing until its deadline.
        for _ in client.watch(decision_type="escalate", timeout=0.5):
            pass
    assert err.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 5
