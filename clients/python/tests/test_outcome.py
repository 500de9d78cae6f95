"""Idempotent outcomes (AIP-155): a request_id records once, a reused one with another outcome
fails, and a retry after a reply lost mid-flight (a real network fault) records only once.

The exact learning_entries deltas assume nothing else records outcomes on the server during a
test; the per-decision lesson counts hold regardless.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import grpc
import pytest

import council_client as cc
from faulty_proxy import FaultyProxy
from support import low_risk


def lessons_of(client: cc.CouncilClient, decision_id: str) -> list[cc.Lesson]:
    return [lesson for lesson in client.lessons(page_size=500) if lesson.decision_id == decision_id]


def test_same_request_id_records_the_outcome_once(
    client: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    decision = client.review(low_risk(new_id("s"))).decision
    request_id = f"outcome-{uuid.uuid4()}"
    before = client.summary()

    first = client.record_outcome(
        decision.id, "success", notes="deployed", lessons="once", request_id=request_id
    )
    again = client.record_outcome(
        decision.id, "success", notes="deployed", lessons="once", request_id=request_id
    )

    assert first == again
    assert first.id == decision.id
    assert first.outcome == cc.Outcome.OUTCOME_SUCCESS
    assert (first.outcome_notes, first.lessons_learned) == ("deployed", "once")
    assert client.get_decision(decision.id) == first
    assert client.summary().learning_entries - before.learning_entries == 1
    assert [lesson.lessons for lesson in lessons_of(client, decision.id)] == ["once"]


def test_without_request_id_each_call_gets_a_new_one_and_records(
    client: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    decision = client.review(low_risk(new_id("s"))).decision
    before = client.summary()
    client.record_outcome(decision.id, "partial", lessons="twice")
    client.record_outcome(decision.id, "partial", lessons="twice")
    assert client.summary().learning_entries - before.learning_entries == 2
    assert [lesson.lessons for lesson in lessons_of(client, decision.id)] == ["twice", "twice"]


@pytest.mark.parametrize(
    ("outcome", "notes", "lessons"),
    [
        ("failure", "notes", "lesson"),
        ("success", "other notes", "lesson"),
        ("success", "notes", "another lesson"),
    ],
)
def test_same_request_id_with_another_outcome_is_failed_precondition(
    client: cc.CouncilClient,
    addr: str,
    new_id: Callable[[str], str],
    outcome: cc.OutcomeName,
    notes: str,
    lessons: str,
) -> None:
    decision = client.review(low_risk(new_id("s"))).decision
    request_id = f"outcome-{uuid.uuid4()}"
    recorded = client.record_outcome(
        decision.id, "success", notes="notes", lessons="lesson", request_id=request_id
    )
    before = client.summary()

    retries: list[str] = []
    policy = cc.RetryPolicy(on_retry=lambda method, *_: retries.append(method))
    with cc.connect(addr, retry=policy) as other:
        with pytest.raises(cc.FailedPrecondition) as err:
            other.record_outcome(
                decision.id, outcome, notes=notes, lessons=lessons, request_id=request_id
            )
    assert err.value.code is grpc.StatusCode.FAILED_PRECONDITION
    assert request_id in err.value.details
    assert retries == []  # only UNAVAILABLE is retried
    assert client.get_decision(decision.id) == recorded  # unchanged
    assert client.summary().learning_entries == before.learning_entries
    assert len(lessons_of(client, decision.id)) == 1


def test_retry_after_a_lost_reply_records_the_outcome_once(
    client: cc.CouncilClient, addr: str, new_id: Callable[[str], str]
) -> None:
    """The first attempt reaches the server, which records the outcome and replies; the proxy
    drops that reply and the connection. The retry sends the same (generated) request_id, so the
    server returns the stored decision without appending a second lesson."""
    decision = client.review(low_risk(new_id("s"))).decision
    retries: list[tuple[str, int, grpc.StatusCode]] = []

    def on_retry(method: str, attempt: int, error: cc.CouncilError, delay: float) -> None:
        retries.append((method, attempt, error.code))

    policy = cc.RetryPolicy(attempts=10, initial_backoff=0.05, max_backoff=0.5, on_retry=on_retry)
    before = client.summary()
    with FaultyProxy(addr, cut_after_data_frames=1, lose_reply=True) as proxy:
        with cc.connect(proxy.address, retry=policy, timeout=15) as flaky:
            updated = flaky.record_outcome(
                decision.id, "success", notes="deployed", lessons="lost reply"
            )
        assert proxy.cuts == 1  # the first connection was cut with the reply in flight
        assert proxy.connections == 2  # and the retry came over a new one
    after = client.summary()

    assert retries == [("RecordOutcome", 1, grpc.StatusCode.UNAVAILABLE)]
    assert updated.id == decision.id
    assert updated.outcome == cc.Outcome.OUTCOME_SUCCESS
    assert (updated.outcome_notes, updated.lessons_learned) == ("deployed", "lost reply")
    assert client.get_decision(decision.id) == updated
    assert after.learning_entries - before.learning_entries == 1
    assert [lesson.lessons for lesson in lessons_of(client, decision.id)] == ["lost reply"]
