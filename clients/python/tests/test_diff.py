"""A suggestion's diff and who cast each vote (issue 13), sync and asyncio, against the live
server: the diff given to ``build_suggestion`` reaches the server and is stored with the decision,
and every vote says who cast it (``cast_by``; the built-in rules: ``"rules"``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import council_client as cc
from council_client import aio

DIFF = (
    "--- a/src/cache.ts\n+++ b/src/cache.ts\n@@ -1 +1 @@\n"
    "-const TTL = 60; // s\n+const TTL = 300; // s, « naïve » ✓\n"
)


def _with_diff(sid: str) -> cc.Suggestion:
    return cc.build_suggestion(sid, "Raise the cache TTL", risk="low", impact="minimal", diff=DIFF)


def test_the_diff_reaches_the_server_and_every_vote_is_cast_by_the_rules(
    client: cc.CouncilClient, new_id: Callable[[str], str]
) -> None:
    review = client.review(_with_diff(new_id("s")), timeout=10)
    votes = list(review)
    decision = review.decision
    assert [v.cast_by for v in votes] == ["rules"] * 5
    assert [v.cast_by for v in decision.votes] == ["rules"] * 5
    assert decision.suggestion.diff == DIFF
    stored = client.get_decision(decision.id)
    assert stored.suggestion.diff == DIFF
    assert [v.cast_by for v in stored.votes] == ["rules"] * 5


@pytest.mark.asyncio
async def test_asyncio_the_diff_reaches_the_server_and_every_vote_is_cast_by_the_rules(
    addr: str, new_id: Callable[[str], str]
) -> None:
    async with aio.connect(addr) as council:
        review = council.review(_with_diff(new_id("s")))
        votes = [v async for v in review]
        decision = await review.decision
        assert [v.cast_by for v in votes] == ["rules"] * 5
        assert decision.suggestion.diff == DIFF
        stored = await council.get_decision(decision.id)
        assert stored.suggestion.diff == DIFF
        assert [v.cast_by for v in stored.votes] == ["rules"] * 5
