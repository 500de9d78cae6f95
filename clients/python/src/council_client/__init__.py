"""Typed Python client for Council (``council.v1.CouncilService``).

    import council_client

    with council_client.connect("127.0.0.1:50051") as council:
        review = council.review(council_client.build_suggestion(
            "sug-1", "Raise the cache TTL", risk="low", impact="minimal"))
        for vote in review:                  # each vote as soon as it is cast
            print(vote.reviewer_role, vote.vote)
        print(review.decision.decision)      # then the decision

See :class:`CouncilClient` for the calls and :mod:`council_client.errors` for the errors.
"""

from . import errors, pb
from ._client import (
    DEFAULT_TIMEOUT,
    CouncilClient,
    DecisionEvent,
    RetryPolicy,
    Review,
    VoteEvent,
    Watch,
    WatchEvent,
    connect,
)
from ._types import (
    Decision,
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
    Reviewers,
    RiskLevel,
    RiskLike,
    RiskName,
    Suggestion,
    Summary,
    Vote,
    VoteType,
    build_suggestion,
    decision_type,
    effort,
    impact_level,
    outcome,
    risk_level,
    short_name,
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
    "DEFAULT_TIMEOUT",
    "AlreadyExists",
    "Cancelled",
    "CouncilClient",
    "CouncilError",
    "DataLoss",
    "DeadlineExceeded",
    "Decision",
    "DecisionEvent",
    "DecisionType",
    "DecisionTypeLike",
    "DecisionTypeName",
    "Effort",
    "EffortLike",
    "EffortName",
    "FailedPrecondition",
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
    "ResourceExhausted",
    "RetryPolicy",
    "Review",
    "ReviewerProfile",
    "ReviewerRole",
    "Reviewers",
    "RiskLevel",
    "RiskLike",
    "RiskName",
    "Suggestion",
    "Summary",
    "Unauthenticated",
    "Unavailable",
    "Vote",
    "VoteEvent",
    "VoteType",
    "Watch",
    "WatchEvent",
    "build_suggestion",
    "connect",
    "decision_type",
    "effort",
    "errors",
    "impact_level",
    "outcome",
    "pb",
    "risk_level",
    "short_name",
]
