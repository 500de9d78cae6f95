"""What the reviewer SDK tests share: the external-reviewer server of the repository's
test/clients.test.ts and the suggestions its reviewers see.

That server (``COUNCIL_TEST_EXTERNAL_ADDR``, one per language) runs a policy where safety is
external (3 s, ``on_failure: needs_more_info``) and quality too (3 s, ``on_failure: reject``); the
other three roles are the built-in rules. The agent token (``COUNCIL_TEST_AGENT_TOKEN``) submits
reviews; the reviewer token (``COUNCIL_TEST_REVIEWER_TOKEN``, principal
``COUNCIL_TEST_REVIEWER_PRINCIPAL``, role reviewer) serves. The tests of one run use this server one
at a time: a reviewer left connected by one test would take the next test's tasks, so each test
stops its reviewers before it ends.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

import council_client as cc

_NAMES = (
    "COUNCIL_TEST_EXTERNAL_ADDR",
    "COUNCIL_TEST_AGENT_TOKEN",
    "COUNCIL_TEST_REVIEWER_TOKEN",
    "COUNCIL_TEST_REVIEWER_PRINCIPAL",
)

TIMEOUT = 3.0
"""Seconds the external server's reviews wait for safety's and quality's external votes."""

DIFF = (
    "--- a/src/cache.ts\n+++ b/src/cache.ts\n@@ -1 +1 @@\n"
    "-const TTL = 60; // s\n+const TTL = 300; // s\n"
)


@dataclass(frozen=True)
class External:
    addr: str
    agent_token: str
    reviewer_token: str
    principal: str
    """The reviewer token's principal: every vote its reviewers cast has this ``cast_by``."""


def external_server() -> External:
    missing = [name for name in _NAMES if not os.environ.get(name)]
    if missing:
        pytest.fail(
            f"set {', '.join(missing)}: these tests need the external-reviewer server that the "
            "repository's test/clients.test.ts starts (npx mocha test/clients.test.ts -g Python)",
            pytrace=False,
        )
    env = os.environ
    return External(
        addr=env["COUNCIL_TEST_EXTERNAL_ADDR"],
        agent_token=env["COUNCIL_TEST_AGENT_TOKEN"],
        reviewer_token=env["COUNCIL_TEST_REVIEWER_TOKEN"],
        principal=env["COUNCIL_TEST_REVIEWER_PRINCIPAL"],
    )


def with_diff(suggestion_id: str, diff: str = DIFF, files: tuple[str, ...] = ()) -> cc.Suggestion:
    """A low-risk change that the built-in rules approve, with ``diff``."""
    return cc.build_suggestion(
        suggestion_id,
        "Raise the cache TTL",
        risk="low",
        impact="minimal",
        description="Raise the TTL of the read cache from 60 s to 300 s.",
        auto_fixable=True,
        fix_steps=["Change the TTL constant", "Run the cache tests"],
        files_affected=files or ("src/cache.ts",),
        estimated_effort="small",
        diff=diff,
    )


def vote_of(decision: cc.Decision, role: str) -> cc.Vote:
    """The decision's vote of ``role`` (e.g. "safety")."""
    for vote in decision.votes:
        if cc.short_name(cc.ReviewerRole, vote.reviewer_role) == role:
            return vote
    raise AssertionError(f"no {role} vote in decision {decision.id}")


def connected(reviewers: cc.Reviewers, role: str) -> int:
    """How many reviewer agents serve ``role``, as ListReviewers reports it."""
    for profile in reviewers.reviewers:
        if cc.short_name(cc.ReviewerRole, profile.role) == role:
            return profile.connected
    raise AssertionError(f"no {role} reviewer in the policy")
