"""Messages and enums of council.v1, and typed helpers that accept short names for enum values."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, Protocol, TypeAlias, TypeVar

from ._gen.council.v1.council_service_pb2 import GetSummaryResponse, ListReviewersResponse
from ._gen.council.v1.review_pb2 import (
    Decision,
    DecisionStatus,
    DecisionType,
    Effort,
    ImpactLevel,
    Lesson,
    Outcome,
    ReviewerProfile,
    ReviewerRole,
    RiskLevel,
    Suggestion,
    Verdict,
    VerdictType,
    Vote,
    VoteType,
)

Summary = GetSummaryResponse
"""What :meth:`CouncilClient.summary` returns: exact counts over every stored decision."""
Reviewers = ListReviewersResponse
"""What :meth:`CouncilClient.reviewers` returns: the profiles, in voting order, and the policy."""

RiskName = Literal["trivial", "low", "medium", "high", "critical"]
ImpactName = Literal["minimal", "low", "medium", "high", "transformative"]
EffortName = Literal["small", "medium", "large", "epic"]
DecisionTypeName = Literal["auto_approve", "human_approve", "defer", "reject", "escalate"]
OutcomeName = Literal["success", "failure", "partial"]
DecisionStatusName = Literal["pending", "approved", "rejected", "expired", "superseded"]
VerdictName = Literal["approve", "reject"]
VoteName = Literal["approve", "reject", "abstain", "needs_more_info"]
ReviewerRoleName = Literal["safety", "performance", "architecture", "compliance", "quality"]

# An enum value (RiskLevel.RISK_LEVEL_LOW) or its short name ("low").
RiskLike: TypeAlias = RiskLevel.ValueType | RiskName
ImpactLike: TypeAlias = ImpactLevel.ValueType | ImpactName
EffortLike: TypeAlias = Effort.ValueType | EffortName
DecisionTypeLike: TypeAlias = DecisionType.ValueType | DecisionTypeName
OutcomeLike: TypeAlias = Outcome.ValueType | OutcomeName
DecisionStatusLike: TypeAlias = DecisionStatus.ValueType | DecisionStatusName
VerdictLike: TypeAlias = VerdictType.ValueType | VerdictName
VoteLike: TypeAlias = VoteType.ValueType | VoteName
ReviewerRoleLike: TypeAlias = ReviewerRole.ValueType | ReviewerRoleName

_V_contra = TypeVar("_V_contra", contravariant=True)
_V_co = TypeVar("_V_co", covariant=True)


class _EnumType(Protocol[_V_co]):
    def Value(self, name: str) -> _V_co: ...  # noqa: N802 (protobuf's name)
    def keys(self) -> list[str]: ...


class _NamedEnum(Protocol[_V_contra]):
    def Name(self, number: _V_contra) -> str: ...  # noqa: N802 (protobuf's name)
    def keys(self) -> list[str]: ...


def _enum(enum: _EnumType[_V_co], prefix: str, value: _V_co | str) -> _V_co:
    if not isinstance(value, str):
        return value
    try:
        return enum.Value(prefix + value.upper())
    except ValueError:
        names = [k[len(prefix) :].lower() for k in enum.keys() if not k.endswith("_UNSPECIFIED")]
        raise ValueError(f"unknown {prefix.lower()[:-1]} {value!r}; expected one of {names}") from None


def risk_level(value: RiskLike) -> RiskLevel.ValueType:
    """``"low"`` -> ``RiskLevel.RISK_LEVEL_LOW``; an enum value is returned as is."""
    return _enum(RiskLevel, "RISK_LEVEL_", value)


def impact_level(value: ImpactLike) -> ImpactLevel.ValueType:
    """``"high"`` -> ``ImpactLevel.IMPACT_LEVEL_HIGH``; an enum value is returned as is."""
    return _enum(ImpactLevel, "IMPACT_LEVEL_", value)


def effort(value: EffortLike) -> Effort.ValueType:
    """``"small"`` -> ``Effort.EFFORT_SMALL``; an enum value is returned as is."""
    return _enum(Effort, "EFFORT_", value)


def decision_type(value: DecisionTypeLike) -> DecisionType.ValueType:
    """``"reject"`` -> ``DecisionType.DECISION_TYPE_REJECT``; an enum value is returned as is."""
    return _enum(DecisionType, "DECISION_TYPE_", value)


def outcome(value: OutcomeLike) -> Outcome.ValueType:
    """``"success"`` -> ``Outcome.OUTCOME_SUCCESS``; an enum value is returned as is."""
    return _enum(Outcome, "OUTCOME_", value)


def decision_status(value: DecisionStatusLike) -> DecisionStatus.ValueType:
    """``"pending"`` -> ``DecisionStatus.DECISION_STATUS_PENDING``; an enum value as is."""
    return _enum(DecisionStatus, "DECISION_STATUS_", value)


def verdict_type(value: VerdictLike) -> VerdictType.ValueType:
    """``"approve"`` -> ``VerdictType.VERDICT_TYPE_APPROVE``; an enum value is returned as is."""
    return _enum(VerdictType, "VERDICT_TYPE_", value)


def vote_type(value: VoteLike) -> VoteType.ValueType:
    """``"needs_more_info"`` -> ``VoteType.VOTE_TYPE_NEEDS_MORE_INFO``; an enum value as is."""
    return _enum(VoteType, "VOTE_TYPE_", value)


def reviewer_role(value: ReviewerRoleLike) -> ReviewerRole.ValueType:
    """``"safety"`` -> ``ReviewerRole.REVIEWER_ROLE_SAFETY``; an enum value is returned as is."""
    return _enum(ReviewerRole, "REVIEWER_ROLE_", value)


def build_suggestion(
    id: str,  # noqa: A002 (the proto field's name)
    title: str,
    *,
    risk: RiskLike,
    impact: ImpactLike,
    description: str = "",
    reasoning: str = "",
    auto_fixable: bool = False,
    fix_steps: Iterable[str] = (),
    files_affected: Iterable[str] = (),
    estimated_effort: EffortLike | None = None,
    diff: str = "",
) -> Suggestion:
    """Builds a Suggestion; enum fields take a value or a short name (``risk="low"``).

    ``diff`` is the change itself as a unified diff (at most 1 MiB), for reviewers that read it.
    """
    return Suggestion(
        id=id,
        title=title,
        description=description,
        reasoning=reasoning,
        risk=risk_level(risk),
        impact=impact_level(impact),
        auto_fixable=auto_fixable,
        fix_steps=fix_steps,
        files_affected=files_affected,
        estimated_effort=(
            effort(estimated_effort)
            if estimated_effort is not None
            else Effort.EFFORT_UNSPECIFIED
        ),
        diff=diff,
    )


def short_name(enum: _NamedEnum[_V_contra], value: _V_contra) -> str:
    """``short_name(VoteType, vote.vote)`` -> ``"approve"``: the value's name without its prefix."""
    full = enum.Name(value)
    prefix = enum.keys()[0].removesuffix("UNSPECIFIED")  # every council.v1 enum starts with one
    return full.removeprefix(prefix).lower()


__all__ = [
    "Decision",
    "DecisionStatus",
    "DecisionStatusLike",
    "DecisionStatusName",
    "DecisionType",
    "DecisionTypeLike",
    "DecisionTypeName",
    "Effort",
    "EffortLike",
    "EffortName",
    "ImpactLevel",
    "ImpactLike",
    "ImpactName",
    "Lesson",
    "Outcome",
    "OutcomeLike",
    "OutcomeName",
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
    "Verdict",
    "VerdictLike",
    "VerdictName",
    "VerdictType",
    "Vote",
    "VoteLike",
    "VoteName",
    "VoteType",
    "build_suggestion",
    "decision_status",
    "decision_type",
    "effort",
    "impact_level",
    "outcome",
    "reviewer_role",
    "risk_level",
    "short_name",
    "verdict_type",
    "vote_type",
]
