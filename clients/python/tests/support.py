"""Suggestions and small helpers shared by the tests."""

from __future__ import annotations

import council_client as cc

ROLES = ["safety", "performance", "architecture", "compliance", "quality"]


def low_risk(suggestion_id: str, title: str = "Raise the cache TTL") -> cc.Suggestion:
    return cc.build_suggestion(
        suggestion_id,
        title,
        risk="low",
        impact="minimal",
        description="Raise the TTL of the read cache from 60 s to 300 s.",
        auto_fixable=True,
        fix_steps=["Change the TTL constant", "Run the cache tests"],
        estimated_effort="small",
    )


def role(vote: cc.Vote) -> str:
    return cc.short_name(cc.ReviewerRole, vote.reviewer_role)


def rejected(suggestion_id: str) -> cc.Suggestion:
    """Two vetoes (safety: bypasses_authentication, performance: infinite_loop_risk): REJECT."""
    return cc.build_suggestion(
        suggestion_id,
        "Temporarily bypasses authentication",
        risk="medium",
        impact="low",
        description="Works around an infinite loop risk in the login retry.",
    )
