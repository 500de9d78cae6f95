"""What :meth:`CouncilClient.guard` answers an agent: may it act, and why (SPEC section 9).

Pure functions over a decision, so that the rule "allowed means APPROVED" and the wording of the
reason live in one place; ``_client.py`` makes the calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal, TypeAlias

from ._types import Decision, DecisionStatus, DecisionType, Verdict, VerdictType

__all__ = ["GuardOutcome", "GuardVerdict", "guard_verdict", "is_final", "status_of"]

GuardOutcome: TypeAlias = Literal["approved", "rejected", "expired", "superseded", "timed_out"]
"""How a guarded decision ended: its final status in lower case, or ``"timed_out"`` when the
guard's deadline passed while people had not decided yet (the decision is still pending then, and
may still be approved: it is not a rejection)."""

_PENDING = DecisionStatus.DECISION_STATUS_PENDING
_APPROVED = DecisionStatus.DECISION_STATUS_APPROVED
_REJECTED = DecisionStatus.DECISION_STATUS_REJECTED
_EXPIRED = DecisionStatus.DECISION_STATUS_EXPIRED
_SUPERSEDED = DecisionStatus.DECISION_STATUS_SUPERSEDED

_OUTCOMES: dict[int, GuardOutcome] = {
    _APPROVED: "approved",
    _REJECTED: "rejected",
    _EXPIRED: "expired",
    _SUPERSEDED: "superseded",
}


@dataclass(frozen=True)
class GuardVerdict:
    """Whether the agent may act on a guarded suggestion, and why."""

    allowed: bool
    """True only when the decision ended APPROVED (auto-approved, or approved by enough people)."""
    outcome: GuardOutcome
    reason: str
    """One sentence for a log or a person: who decided and why, e.g. ``auto-approved by the
    council: ...``, ``approved by alice ("ship it"), bob (2 of 2 approvals)``, ``rejected by
    alice: "not on a Friday"``, ``expired at ... with 0 of 1 approvals``, ``timed out after 5000
    ms: ... still pending``."""
    decision: Decision
    """The decision as last seen, with the verdicts and status people gave it."""
    decision_id: str
    decision_type: DecisionType.ValueType
    """The council's decision (AUTO_APPROVE, HUMAN_APPROVE, DEFER, REJECT, ESCALATE)."""
    status: DecisionStatus.ValueType
    approved_by: tuple[str, ...]
    """The principals that approved, in the order their verdicts were counted."""
    rejected_by: tuple[str, ...]
    """The principals that rejected (a rejection always has a comment: see ``verdicts``)."""
    verdicts: tuple[Verdict, ...]
    """Every verdict people gave: ``by``, ``verdict``, ``comment``, ``given_at``."""
    conditions: tuple[str, ...]
    """The council's conditions: what the agent must respect if it acts."""

    @property
    def timed_out(self) -> bool:
        """True when the guard stopped waiting at its deadline while the decision was pending."""
        return self.outcome == "timed_out"


def status_of(decision: Decision) -> DecisionStatus.ValueType:
    """The decision's status. A server older than SPEC section 9 sends none: then AUTO_APPROVE
    reads approved, REJECT rejected, and the rest pending, as the server reads such decisions."""
    if decision.status != DecisionStatus.DECISION_STATUS_UNSPECIFIED:
        return decision.status
    if decision.decision == DecisionType.DECISION_TYPE_AUTO_APPROVE:
        return _APPROVED
    if decision.decision == DecisionType.DECISION_TYPE_REJECT:
        return _REJECTED
    return _PENDING


def is_final(decision: Decision) -> bool:
    """True once the decision left PENDING: APPROVED, REJECTED, EXPIRED or SUPERSEDED."""
    return status_of(decision) != _PENDING


def changed(a: Decision, b: Decision) -> bool:
    """Whether ``b`` says anything ``a`` did not: another status, verdict, outcome or successor."""
    return (
        status_of(a) != status_of(b)
        or len(a.verdicts) != len(b.verdicts)
        or a.outcome != b.outcome
        or a.superseded_by != b.superseded_by
    )


def guard_verdict(decision: Decision, waited: float | None = None) -> GuardVerdict:
    """The guard's answer for ``decision``: final, or (with ``waited``, in seconds) still pending
    when the guard's deadline passed."""
    status = status_of(decision)
    outcome: GuardOutcome = _OUTCOMES.get(status, "timed_out")
    return GuardVerdict(
        allowed=status == _APPROVED,
        outcome=outcome,
        reason=_reason(decision, status, waited),
        decision=decision,
        decision_id=decision.id,
        decision_type=decision.decision,
        status=status,
        approved_by=_by(decision, VerdictType.VERDICT_TYPE_APPROVE),
        rejected_by=_by(decision, VerdictType.VERDICT_TYPE_REJECT),
        verdicts=tuple(decision.verdicts),
        conditions=tuple(decision.conditions),
    )


def _by(decision: Decision, verdict: VerdictType.ValueType) -> tuple[str, ...]:
    return tuple(v.by for v in decision.verdicts if v.verdict == verdict)


def _quoted(text: str) -> str:
    # JSON quoting, so that the reason reads the same in every client.
    return json.dumps(text, ensure_ascii=False)


def _reason(d: Decision, status: DecisionStatus.ValueType, waited: float | None) -> str:
    approvals = [v for v in d.verdicts if v.verdict == VerdictType.VERDICT_TYPE_APPROVE]
    tally = f"{len(approvals)} of {d.approvals_required} approvals"
    if status == _APPROVED:
        if not approvals:
            return f"auto-approved by the council: {d.final_reasoning}"
        people = ", ".join(
            f"{v.by} ({_quoted(v.comment)})" if v.comment else v.by for v in approvals
        )
        return f"approved by {people} ({tally})"
    if status == _REJECTED:
        rejections = [v for v in d.verdicts if v.verdict == VerdictType.VERDICT_TYPE_REJECT]
        if not rejections:
            return f"rejected by the council: {d.final_reasoning}"
        return "rejected by " + "; ".join(f"{v.by}: {_quoted(v.comment)}" for v in rejections)
    expires_at = d.expires_at.ToJsonString() if d.HasField("expires_at") else ""
    if status == _EXPIRED:
        return f"expired at {expires_at or 'its deadline'} with {tally}"
    if status == _SUPERSEDED:
        return f"superseded by {d.superseded_by or 'a later review'}"
    expires = f", expires at {expires_at}" if expires_at else ""
    return (
        f"timed out after {round((waited or 0.0) * 1000)} ms: decision {d.id} "
        f"({DecisionType.Name(d.decision)}) is still pending ({tally}{expires})"
    )
