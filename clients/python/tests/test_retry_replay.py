"""A review retried after a drop that came after some votes: both clients yield each vote once
and end with the decision. Against a stand-in server in the test (not the live one), so that the
first attempt's votes reach the client every time: the live server behind the faulty proxy
(test_aio.py) loses them to the closed connection most runs, which left this path untested and
the asyncio client's bug in it (it took a replayed vote for the decision) hidden.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

import council_client as cc
from council_client import aio
from council_client._gen.council.v1 import council_service_pb2 as pb
from council_client._gen.council.v1 import review_pb2 as rpb
from support import ROLES, low_risk

DECISION_ID = "dec-replayed"


class _DropsAfterTwoVotes:
    """Attempt 1: two votes, then UNAVAILABLE; attempt 2: the stored review replayed in full."""

    def __init__(self) -> None:
        self.attempts = 0

    def review(
        self, request: pb.ReviewSuggestionRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ReviewSuggestionResponse]:
        self.attempts += 1
        votes = [
            pb.ReviewSuggestionResponse(
                vote=rpb.Vote(reviewer_role=role, vote=rpb.VOTE_TYPE_APPROVE, cast_by="rules"),
                decision_id=DECISION_ID,
                suggestion_id=request.suggestion.id,
            )
            for role in (
                rpb.REVIEWER_ROLE_SAFETY,
                rpb.REVIEWER_ROLE_PERFORMANCE,
                rpb.REVIEWER_ROLE_ARCHITECTURE,
                rpb.REVIEWER_ROLE_COMPLIANCE,
                rpb.REVIEWER_ROLE_QUALITY,
            )
        ]
        if self.attempts == 1:
            yield from votes[:2]
            context.abort(grpc.StatusCode.UNAVAILABLE, "the replica went away")
        yield from votes
        yield pb.ReviewSuggestionResponse(
            decision=rpb.Decision(id=DECISION_ID, decision=rpb.DECISION_TYPE_AUTO_APPROVE),
            decision_id=DECISION_ID,
            suggestion_id=request.suggestion.id,
        )


@pytest.fixture
def stand_in() -> Iterator[tuple[str, _DropsAfterTwoVotes]]:
    servicer = _DropsAfterTwoVotes()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    review = grpc.unary_stream_rpc_method_handler(
        servicer.review,
        request_deserializer=pb.ReviewSuggestionRequest.FromString,
        response_serializer=pb.ReviewSuggestionResponse.SerializeToString,
    )
    service = grpc.method_handlers_generic_handler(
        "council.v1.CouncilService", {"ReviewSuggestion": review}
    )
    server.add_generic_rpc_handlers((service,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(None)


POLICY = cc.RetryPolicy(attempts=3, initial_backoff=0.01)


def test_sync_review_yields_each_vote_once_across_a_retry(
    stand_in: tuple[str, _DropsAfterTwoVotes],
) -> None:
    address, servicer = stand_in
    with cc.connect(address, retry=POLICY) as client:
        review = client.review(low_risk("s-replay"))
        votes = [cc.short_name(cc.ReviewerRole, v.reviewer_role) for v in review]
        assert review.decision.id == DECISION_ID
    assert votes == ROLES
    assert servicer.attempts == 2


@pytest.mark.asyncio
async def test_asyncio_review_yields_each_vote_once_across_a_retry(
    stand_in: tuple[str, _DropsAfterTwoVotes],
) -> None:
    address, servicer = stand_in
    async with aio.connect(address, retry=POLICY) as client:
        review = client.review(low_risk("s-replay"))
        votes = [cc.short_name(cc.ReviewerRole, v.reviewer_role) async for v in review]
        assert (await review.decision).id == DECISION_ID
    assert votes == ROLES
    assert servicer.attempts == 2
