"""What the sync client (``_client.py``) and the asyncio client (``aio.py``) share: the defaults,
the retry policy and its decisions, deadlines, how requests are built from arguments, and the
bookkeeping of a review stream and of an await. None of it does I/O, so that both clients make
the same decisions and differ only in how they wait (a thread blocks, a coroutine awaits).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import grpc

from ._gen.council.v1 import council_service_pb2 as pb
from ._guard import changed, is_final
from ._types import (
    Decision,
    DecisionStatus,
    DecisionStatusLike,
    DecisionType,
    DecisionTypeLike,
    OutcomeLike,
    Suggestion,
    VerdictLike,
    Vote,
    decision_status,
    decision_type,
    verdict_type,
)
from ._types import outcome as _outcome
from .errors import CouncilError, Internal

__all__ = [
    "DEFAULT_GUARD_TIMEOUT",
    "DEFAULT_REVIEW_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "AwaitProgress",
    "Deadline",
    "DecisionEvent",
    "RetryPolicy",
    "ReviewProgress",
    "VoteEvent",
    "WatchEvent",
    "await_request",
    "bearer_metadata",
    "channel_options",
    "check_credentials",
    "list_decisions_request",
    "record_outcome_request",
    "resolve_request",
    "retry_delay",
    "review_request",
    "watch_event",
    "watch_request",
]

log = logging.getLogger("council_client")

DEFAULT_TIMEOUT = 30.0
"""Seconds a unary call may take, retries included, unless the call or the client says
otherwise. The same in the TypeScript and Go clients."""

DEFAULT_REVIEW_TIMEOUT = 60.0
"""Seconds a review (the stream of votes, then the decision) may take, retries included."""

DEFAULT_GUARD_TIMEOUT = 600.0
"""Seconds ``guard`` may take in all, unless told otherwise: people are slow."""


def full_jitter(failures: int, initial: float, maximum: float, multiplier: float) -> float:
    """A random wait between 0 and ``min(maximum, initial * multiplier**(failures-1))`` seconds
    after ``failures`` (from 1) failures in a row: the retries' and the reviewers' reconnects'."""
    return random.uniform(0.0, min(maximum, initial * multiplier ** (failures - 1)))


@dataclass(frozen=True)
class RetryPolicy:
    """How calls are retried after ``UNAVAILABLE``, the only status that is retried.

    After failed attempt ``n`` (from 1) the client waits a random time between 0 and
    ``min(max_backoff, initial_backoff * multiplier**(n-1))`` seconds ("full jitter", so that
    clients that failed together do not come back together), then tries again; there are at most
    ``attempts`` attempts, all within the call's one deadline: a wait that would end past it is
    not started. ``on_retry(method, attempt, error, delay)`` is called before each wait (for
    logging or metrics). The defaults are those of every Council client: 4 attempts, 0.1 s
    doubling to at most 2 s. ``RetryPolicy(attempts=1)`` turns retries off.
    """

    attempts: int = 4
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    multiplier: float = 2.0
    on_retry: Callable[[str, int, CouncilError, float], None] | None = None

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("RetryPolicy backoffs must be >= 0 and its multiplier >= 1")

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt ``attempt`` (from 1)."""
        return full_jitter(attempt, self.initial_backoff, self.max_backoff, self.multiplier)


class Deadline:
    """One deadline for a whole call, its retries and the waits between them (None: no end)."""

    def __init__(self, timeout: float | None) -> None:
        self._end = None if timeout is None else time.monotonic() + timeout

    def remaining(self) -> float | None:
        return None if self._end is None else max(0.0, self._end - time.monotonic())


def retry_delay(
    policy: RetryPolicy, name: str, attempt: int, error: CouncilError, deadline: Deadline
) -> float | None:
    """How long to wait before attempt ``attempt + 1`` of ``name``, or None if there is none: the
    error is not retryable, the attempts are used up, or the wait would reach the deadline."""
    if not error.retryable or attempt >= policy.attempts:
        return None
    delay = policy.delay(attempt)
    remaining = deadline.remaining()
    if remaining is not None and remaining <= delay:
        return None
    log.info("%s: attempt %d failed (%s); retrying in %.2fs", name, attempt, error, delay)
    if policy.on_retry is not None:
        policy.on_retry(name, attempt, error, delay)
    return delay


# Channels.

ChannelOptions: TypeAlias = Sequence[tuple[str, str | int]]


def check_credentials(certificate_chain: bytes | None, private_key: bytes | None) -> None:
    if (certificate_chain is None) != (private_key is None):
        raise ValueError(
            "connect: certificate_chain and private_key go together "
            "(mTLS needs both, plain TLS neither)"
        )


def channel_options(options: ChannelOptions) -> list[tuple[str, str | int]]:
    return [
        # Reconnect soon after a failure, so that retries are not failed fast by a channel
        # still waiting out gRPC's default reconnect backoff (1 s, growing to 120 s).
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 2000),
        *options,
    ]


def uses_tls(tls: bool, root_certificates: bytes | None, certificate_chain: bytes | None) -> bool:
    return tls or root_certificates is not None or certificate_chain is not None


def bearer_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


# Requests, from the arguments the two clients take alike.


def review_request(
    suggestion: Suggestion, request_id: str | None, dry_run: bool, supersedes: str
) -> pb.ReviewSuggestionRequest:
    # One request_id for every attempt: a retry replays the stored review instead of a second one.
    return pb.ReviewSuggestionRequest(
        suggestion=suggestion,
        request_id=request_id or str(uuid.uuid4()),
        dry_run=dry_run,
        supersedes=supersedes,
    )


def watch_request(
    decision_type: DecisionTypeLike | None, include_votes: bool, include_updates: bool
) -> pb.WatchDecisionsRequest:
    return pb.WatchDecisionsRequest(
        decision_type=_decision_type_or_all(decision_type),
        include_votes=include_votes,
        include_updates=include_updates,
    )


def list_decisions_request(
    decision_type: DecisionTypeLike | None,
    suggestion_id: str,
    status: DecisionStatusLike | None,
    oldest_first: bool,
    page_size: int,
) -> pb.ListDecisionsRequest:
    return pb.ListDecisionsRequest(
        decision_type=_decision_type_or_all(decision_type),
        suggestion_id=suggestion_id,
        status=(
            DecisionStatus.DECISION_STATUS_UNSPECIFIED
            if status is None
            else decision_status(status)
        ),
        oldest_first=oldest_first,
        page_size=page_size,
    )


def record_outcome_request(
    decision_id: str, outcome: OutcomeLike, notes: str, lessons: str, request_id: str | None
) -> pb.RecordOutcomeRequest:
    return pb.RecordOutcomeRequest(
        decision_id=decision_id,
        outcome=_outcome(outcome),
        notes=notes,
        lessons=lessons,
        request_id=request_id or str(uuid.uuid4()),
    )


def resolve_request(
    decision_id: str, verdict: VerdictLike, comment: str, request_id: str | None
) -> pb.ResolveDecisionRequest:
    return pb.ResolveDecisionRequest(
        decision_id=decision_id,
        verdict=verdict_type(verdict),
        comment=comment,
        request_id=request_id or str(uuid.uuid4()),
    )


def await_request(decision_id: str) -> pb.AwaitDecisionRequest:
    return pb.AwaitDecisionRequest(decision_id=decision_id)


def _decision_type_or_all(value: DecisionTypeLike | None) -> DecisionType.ValueType:
    return DecisionType.DECISION_TYPE_UNSPECIFIED if value is None else decision_type(value)


# Streams.


@dataclass(frozen=True)
class VoteEvent:
    """A vote of a review that a watch saw stored (sent only with ``include_votes``)."""

    decision_id: str
    suggestion_id: str
    vote: Vote


@dataclass(frozen=True)
class DecisionEvent:
    """A decision that a watch saw stored (it comes after its votes), or changed (with
    ``include_updates``)."""

    decision_id: str
    suggestion_id: str
    decision: Decision


WatchEvent: TypeAlias = VoteEvent | DecisionEvent
"""What a watch yields."""


def watch_event(message: pb.WatchDecisionsResponse) -> WatchEvent | None:
    """The event of a watch's message, or None for an event kind newer than this client."""
    kind = message.WhichOneof("event")
    if kind == "vote":
        return VoteEvent(message.decision_id, message.suggestion_id, message.vote)
    if kind == "decision":
        return DecisionEvent(message.decision_id, message.suggestion_id, message.decision)
    return None


class ReviewProgress:
    """What a review has received so far, across attempts.

    After a retry the server replays the stored review (same ``request_id``): the first votes of
    the new attempt are those already yielded, and are skipped.
    """

    def __init__(self, request: pb.ReviewSuggestionRequest) -> None:
        self.request_id: str = request.request_id
        self.dry_run: bool = request.dry_run
        self.decision_id = ""
        self.votes: list[Vote] = []
        self.attempts = 0
        self.decision: Decision | None = None
        self._seen = 0

    def start_attempt(self) -> None:
        self.attempts += 1
        self._seen = 0

    def take(self, message: pb.ReviewSuggestionResponse) -> Vote | None:
        """The vote to yield for ``message``, if any; a decision is kept in ``decision``."""
        self._check_decision_id(message.decision_id)
        kind = message.WhichOneof("event")
        if kind == "vote":
            self._seen += 1
            if self._seen > len(self.votes):
                self.votes.append(message.vote)
                return message.vote
        elif kind == "decision":
            self.decision = message.decision
        return None

    def may_retry(self) -> bool:
        # A dry run ignores request_id: a retry would be a new dry run, with a new decision id.
        return not self.dry_run or not self.decision_id

    @staticmethod
    def ended_early() -> Internal:
        return Internal(grpc.StatusCode.INTERNAL, "the review stream ended with no decision")

    def _check_decision_id(self, decision_id: str) -> None:
        if not decision_id:
            return
        if self.decision_id and decision_id != self.decision_id:
            raise Internal(
                grpc.StatusCode.INTERNAL,
                f"a retry of request {self.request_id} returned decision {decision_id}, "
                f"not {self.decision_id}",
            )
        self.decision_id = decision_id


class AwaitProgress:
    """The states of an await already yielded, across attempts: awaiting again sends the current
    state first, which is yielded only if it says something new."""

    def __init__(self, since: Decision | None) -> None:
        self.last = since
        self.failures = 0

    def take(self, decision: Decision) -> Decision | None:
        """The state to yield, if it is new."""
        self.failures = 0  # a message arrived: the connection works again
        if self.last is None or changed(self.last, decision):
            self.last = decision
            return decision
        return None

    @staticmethod
    def ended_early() -> Internal:
        return Internal(
            grpc.StatusCode.INTERNAL,
            "the await stream ended before the decision reached a final status",
        )

    @staticmethod
    def final(decision: Decision) -> bool:
        return is_final(decision)
