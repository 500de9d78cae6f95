"""Typed Python client for Council (``council.v1.CouncilService``).

    import council_client

    with council_client.connect("127.0.0.1:50051") as council:
        review = council.review(council_client.build_suggestion(
            "sug-1", "Raise the cache TTL", risk="low", impact="minimal"))
        for vote in review:                  # each vote as soon as it is cast
            print(vote.reviewer_role, vote.vote)
        print(review.decision.decision)      # then the decision

Before an agent acts, one call submits the suggestion, waits for people if the decision needs
them, and says whether it may::

        verdict = council.guard(suggestion, on_vote=print, timeout=600)
        if not verdict.allowed:
            print(verdict.outcome, verdict.reason)   # e.g. rejected by alice: "not on a Friday"

The same calls with asyncio, on ``grpc.aio``, are in :mod:`council_client.aio`::

    async with council_client.aio.connect("127.0.0.1:50051") as council:
        review = council.review(suggestion)
        async for vote in review:
            print(vote.reviewer_role, vote.vote)
        decision = await review.decision

A reviewer agent serves an external role (SPEC section 11) with a handler and one call; the
asyncio flavour is ``council_client.aio.serve_reviews``::

    def review(task: council_client.ReviewTask) -> council_client.ReviewVote:
        if "BEGIN PRIVATE KEY" in task.suggestion.diff:
            return council_client.ReviewVote("reject", "a key", veto="credential_in_diff")
        return council_client.ReviewVote("approve", "no credential in the diff", confidence=0.9)

    council_client.serve_reviews("127.0.0.1:50051", roles=["safety"], handler=review, token=token)

For LLM tool calling, :func:`tool_definition` is the guard as a tool (a JSON Schema of the
suggestion) and :func:`suggestion_from_tool_input` turns the model's call into a suggestion.

See :class:`CouncilClient` for the calls and :mod:`council_client.errors` for the errors.
"""

from . import aio, errors, pb
from ._client import CouncilClient, DecisionWait, Review, Watch, connect
from ._core import (
    DEFAULT_GUARD_TIMEOUT,
    DEFAULT_REVIEW_TIMEOUT,
    DEFAULT_TIMEOUT,
    DecisionEvent,
    RetryPolicy,
    VoteEvent,
    WatchEvent,
)
from ._reviewer import Reviewer, serve_reviews
from ._reviewer_core import DEFAULT_CONCURRENCY, ReconnectPolicy, ReviewTask, ReviewVote
from ._tool import TOOL_NAME, ToolInputError, suggestion_from_tool_input, tool_definition
from .aio import AsyncCouncilClient, AsyncDecisionWait, AsyncReview, AsyncReviewer, AsyncWatch
from ._guard import GuardOutcome, GuardVerdict, guard_verdict, is_final, status_of
from ._types import (
    Decision,
    DecisionStatus,
    DecisionStatusLike,
    DecisionStatusName,
    DecisionType,
    DecisionTypeLike,
    DecisionTypeName,
    Effort,
    EffortLike,
    EffortName,
    ImpactLevel,
    ImpactLike,
    ImpactName,
    Lesson,
    Outcome,
    OutcomeLike,
    OutcomeName,
    ReviewerProfile,
    ReviewerRole,
    ReviewerRoleLike,
    ReviewerRoleName,
    Reviewers,
    RiskLevel,
    RiskLike,
    RiskName,
    Suggestion,
    Summary,
    Verdict,
    VerdictLike,
    VerdictName,
    VerdictType,
    Vote,
    VoteLike,
    VoteName,
    VoteType,
    build_suggestion,
    decision_status,
    decision_type,
    effort,
    impact_level,
    outcome,
    reviewer_role,
    risk_level,
    short_name,
    verdict_type,
    vote_type,
)
from .errors import (
    AlreadyExists,
    Cancelled,
    CouncilError,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_GUARD_TIMEOUT",
    "DEFAULT_REVIEW_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "TOOL_NAME",
    "AlreadyExists",
    "AsyncCouncilClient",
    "AsyncDecisionWait",
    "AsyncReview",
    "AsyncReviewer",
    "AsyncWatch",
    "Cancelled",
    "CouncilClient",
    "CouncilError",
    "DataLoss",
    "DeadlineExceeded",
    "Decision",
    "DecisionEvent",
    "DecisionStatus",
    "DecisionStatusLike",
    "DecisionStatusName",
    "DecisionType",
    "DecisionTypeLike",
    "DecisionTypeName",
    "DecisionWait",
    "Effort",
    "EffortLike",
    "EffortName",
    "FailedPrecondition",
    "GuardOutcome",
    "GuardVerdict",
    "ImpactLevel",
    "ImpactLike",
    "ImpactName",
    "Internal",
    "InvalidArgument",
    "Lesson",
    "NotFound",
    "Outcome",
    "OutcomeLike",
    "OutcomeName",
    "PermissionDenied",
    "ReconnectPolicy",
    "ResourceExhausted",
    "RetryPolicy",
    "Review",
    "ReviewTask",
    "ReviewVote",
    "Reviewer",
    "ReviewerProfile",
    "ReviewerRole",
    "ReviewerRoleLike",
    "ReviewerRoleName",
    "Reviewers",
    "RiskLevel",
    "RiskLike",
    "RiskName",
    "Suggestion",
    "Summary",
    "ToolInputError",
    "Unauthenticated",
    "Unavailable",
    "Verdict",
    "VerdictLike",
    "VerdictName",
    "VerdictType",
    "Vote",
    "VoteEvent",
    "VoteLike",
    "VoteName",
    "VoteType",
    "Watch",
    "WatchEvent",
    "aio",
    "build_suggestion",
    "connect",
    "decision_status",
    "decision_type",
    "effort",
    "errors",
    "guard_verdict",
    "impact_level",
    "is_final",
    "outcome",
    "pb",
    "reviewer_role",
    "risk_level",
    "serve_reviews",
    "short_name",
    "status_of",
    "suggestion_from_tool_input",
    "tool_definition",
    "verdict_type",
    "vote_type",
]
