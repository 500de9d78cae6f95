"""The lifecycle server of the human verdict tests (test_verdicts.py, test_aio_verdicts.py), and
the suggestions that reach each of its decisions."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

import council_client as cc

_NAMES = (
    "COUNCIL_TEST_LIFECYCLE_ADDR",
    "COUNCIL_TEST_AGENT_TOKEN",
    "COUNCIL_TEST_AGENT_PRINCIPAL",
    "COUNCIL_TEST_APPROVER_TOKEN",
    "COUNCIL_TEST_APPROVER_PRINCIPAL",
    "COUNCIL_TEST_APPROVER2_TOKEN",
    "COUNCIL_TEST_APPROVER2_PRINCIPAL",
)

PENDING = cc.DecisionStatus.DECISION_STATUS_PENDING
APPROVED = cc.DecisionStatus.DECISION_STATUS_APPROVED
REJECTED = cc.DecisionStatus.DECISION_STATUS_REJECTED
EXPIRED = cc.DecisionStatus.DECISION_STATUS_EXPIRED


@dataclass(frozen=True)
class Lifecycle:
    addr: str
    agent_token: str
    agent: str
    alice_token: str
    alice: str
    bob_token: str
    bob: str


def lifecycle_server() -> Lifecycle:
    missing = [name for name in _NAMES if not os.environ.get(name)]
    if missing:
        pytest.fail(
            f"set {', '.join(missing)}: these tests need the lifecycle server that the "
            "repository's test/clients.test.ts starts (npx mocha test/clients.test.ts)",
            pytrace=False,
        )
    env = os.environ
    return Lifecycle(
        addr=env["COUNCIL_TEST_LIFECYCLE_ADDR"],
        agent_token=env["COUNCIL_TEST_AGENT_TOKEN"],
        agent=env["COUNCIL_TEST_AGENT_PRINCIPAL"],
        alice_token=env["COUNCIL_TEST_APPROVER_TOKEN"],
        alice=env["COUNCIL_TEST_APPROVER_PRINCIPAL"],
        bob_token=env["COUNCIL_TEST_APPROVER2_TOKEN"],
        bob=env["COUNCIL_TEST_APPROVER2_PRINCIPAL"],
    )


def needs_people(sid: str) -> cc.Suggestion:
    """Medium risk, five approvals, not auto-fixable: HUMAN_APPROVE (2 approvals, 10 minutes)."""
    return cc.build_suggestion(
        sid,
        "Reindex the orders table",
        risk="medium",
        impact="low",
        description="Rebuild the index on created_at.",
        fix_steps=["Build the new index concurrently", "Drop the old one"],
    )


def auto_approved(sid: str) -> cc.Suggestion:
    return cc.build_suggestion(
        sid,
        "Tidy the retry helper",
        risk="low",
        impact="low",
        auto_fixable=True,
        fix_steps=["Apply the patch", "Run the tests"],
    )


def deferred(sid: str) -> cc.Suggestion:
    """High risk and transformative: two reviewers need more information, DEFER (1 s here)."""
    return cc.build_suggestion(
        sid,
        "Rewrite the storage engine",
        risk="high",
        impact="transformative",
        fix_steps=["Write it", "Migrate"],
    )


def vetoed(sid: str) -> cc.Suggestion:
    return cc.build_suggestion(
        sid, "Temporarily bypasses authentication", risk="medium", impact="low"
    )
