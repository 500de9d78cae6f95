"""What the blocking reviewer (``_reviewer.py``) and the asyncio one (``_aio_reviewer.py``) share:
the task and vote a handler sees and returns, the reconnect policy and its backoff, which errors
end serving, and what is done with a handler's answer. None of it does I/O, so that both flavours
make the same decisions and differ only in how they wait.

The protocol (SPEC section 11, ``ServeReviews``): the reviewer sends a hello naming its roles; the
server answers with response headers once it has accepted them (that is "connected"), then sends
one task per review that needs one of those roles' votes; each task is answered with one vote
before its deadline. A vote that arrives late is ignored by the server, and one that never arrives
lets the role's failure policy vote, at the deadline.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import grpc

from ._core import full_jitter
from ._gen.council.v1 import council_service_pb2 as pb
from ._types import (
    ReviewerRole,
    ReviewerRoleLike,
    Suggestion,
    VoteLike,
    VoteType,
    reviewer_role,
    short_name,
    vote_type,
)
from .errors import CouncilError

__all__ = [
    "DEFAULT_CONCURRENCY",
    "GIVE_UP",
    "STOP_GRACE",
    "Backoff",
    "ReconnectPolicy",
    "ReviewTask",
    "ReviewVote",
    "check_concurrency",
    "check_roles",
    "describe",
    "gives_up",
    "hello_request",
    "role_names",
    "task_from_message",
    "vote_request_for",
]

log = logging.getLogger("council_client.reviewer")

DEFAULT_CONCURRENCY = 16
"""How many tasks a reviewer handles at once unless told otherwise; the others wait their turn
(and are skipped if their deadline passes while they wait)."""

STOP_GRACE = 5.0
"""Seconds that stopping waits for the server to end the half-closed stream (OK) before it cancels
the call."""

GIVE_UP = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
"""Statuses that end serving with an error instead of a reconnect: a wrong or missing token, a
principal without the role reviewer, a role that is not external in the policy in force, a bad
hello, a server without ServeReviews. Retrying would only get the same answer."""

_VETO = re.compile(r"[a-z0-9_]{1,64}")


@dataclass(frozen=True)
class ReviewTask:
    """A review that needs this reviewer's vote, as the handler gets it."""

    task_id: str
    """The task's id (the SDK answers it with the handler's vote)."""
    decision_id: str
    """The decision the vote will be part of."""
    suggestion: Suggestion
    """The change under review, its ``diff`` included."""
    role: str
    """The role the vote is cast in: ``"safety"``, ``"performance"``, ``"architecture"``,
    ``"compliance"`` or ``"quality"``."""
    deadline: datetime
    """When the review stops waiting for this vote (UTC, the server's clock); a vote returned later
    is not sent."""
    dry_run: bool
    """True when the review stores nothing."""

    def remaining(self) -> float:
        """Seconds left before ``deadline`` (negative once it has passed)."""
        return self.deadline.timestamp() - time.time()


@dataclass(frozen=True)
class ReviewVote:
    """The vote a handler returns for a task.

    ``vote`` is a VoteType or its short name (``"approve"``, ``"reject"``, ``"abstain"``,
    ``"needs_more_info"``); ``confidence`` is from 0 to 1; ``veto`` (snake_case, ``[a-z0-9_]``, at
    most 64 characters, e.g. ``"credential_in_diff"``) goes only with a ``"reject"`` and counts
    like a built-in veto: under the ``default`` policy it rejects the change. Those rules are
    checked here (``ValueError``); the server also limits the text (reasoning 16 KiB, at most 16
    concerns and 16 conditions of 1 KiB each) and counts a vote over them as the role's failure.
    """

    vote: VoteLike
    reasoning: str = ""
    concerns: Sequence[str] = ()
    conditions: Sequence[str] = ()
    confidence: float = 1.0
    veto: str = ""

    def __post_init__(self) -> None:
        kind = vote_type(self.vote)
        if kind == VoteType.VOTE_TYPE_UNSPECIFIED:
            raise ValueError("ReviewVote.vote must be approve, reject, abstain or needs_more_info")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"ReviewVote.confidence {self.confidence} is outside [0, 1]")
        if self.veto:
            if kind != VoteType.VOTE_TYPE_REJECT:
                raise ValueError("ReviewVote.veto goes only with a reject")
            if not _VETO.fullmatch(self.veto):
                raise ValueError(
                    f"ReviewVote.veto {self.veto!r} must be 1-64 characters of a-z, 0-9 and _"
                )
        # Frozen copies, so that a list the handler keeps using cannot change the vote.
        object.__setattr__(self, "concerns", tuple(self.concerns))
        object.__setattr__(self, "conditions", tuple(self.conditions))

    def request(self, task_id: str) -> pb.ServeReviewsRequest:
        """The stream message that answers ``task_id`` with this vote."""
        return pb.ServeReviewsRequest(
            vote=pb.TaskVote(
                task_id=task_id,
                vote=vote_type(self.vote),
                reasoning=self.reasoning,
                concerns=self.concerns,
                conditions=self.conditions,
                confidence=self.confidence,
                veto=self.veto,
            )
        )


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a reviewer reconnects after its stream ends (the server went away, the connection was
    lost, a replica shut down): forever, after a wait of a random time between 0 and
    ``min(max_backoff, initial_backoff * multiplier**(n-1))`` seconds after the ``n``-th failure
    in a row ("full jitter", so that reviewers that lost one server do not all come back at the same
    moment). A stream that the server accepted resets ``n``. The statuses in which retrying cannot
    help (UNAUTHENTICATED, PERMISSION_DENIED, FAILED_PRECONDITION, INVALID_ARGUMENT,
    UNIMPLEMENTED) are raised instead. ``on_reconnect(error, delay)`` is called before each wait
    (``error`` is None when the server ended the stream with OK), for logging or metrics.
    """

    initial_backoff: float = 0.1
    max_backoff: float = 10.0
    multiplier: float = 2.0
    on_reconnect: Callable[[CouncilError | None, float], None] | None = None

    def __post_init__(self) -> None:
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("ReconnectPolicy backoffs must be >= 0 and its multiplier >= 1")

    def delay(self, failures: int) -> float:
        """The wait after ``failures`` failures in a row (from 1)."""
        return full_jitter(failures, self.initial_backoff, self.max_backoff, self.multiplier)


class Backoff:
    """The waits between the streams of one reviewer."""

    def __init__(self, policy: ReconnectPolicy) -> None:
        self._policy = policy
        self._failures = 0

    def accepted(self) -> None:
        """The server accepted a stream: the next wait starts from the shortest again."""
        self._failures = 0

    def next(self, error: CouncilError | None) -> float:
        """The wait before the next stream, after one that ended with ``error`` (None: OK)."""
        self._failures += 1
        delay = self._policy.delay(self._failures)
        log.warning(
            "ServeReviews ended (%s); reconnecting in %.2f s",
            error if error is not None else "the server ended the stream",
            delay,
        )
        if self._policy.on_reconnect is not None:
            self._policy.on_reconnect(error, delay)
        return delay


def gives_up(error: CouncilError) -> bool:
    """Whether ``error`` ends serving (a configuration error) instead of a reconnect."""
    return error.code in GIVE_UP


def check_roles(roles: Iterable[ReviewerRoleLike]) -> tuple[ReviewerRole.ValueType, ...]:
    checked = tuple(dict.fromkeys(reviewer_role(r) for r in roles))
    if not checked:
        raise ValueError("a reviewer serves at least one role")
    if ReviewerRole.REVIEWER_ROLE_UNSPECIFIED in checked:
        raise ValueError("a reviewer serves named roles (safety, performance, ...)")
    return checked


def check_concurrency(concurrency: int) -> int:
    if concurrency < 1:
        raise ValueError("a reviewer's concurrency must be at least 1")
    return concurrency


def hello_request(roles: Sequence[ReviewerRole.ValueType]) -> pb.ServeReviewsRequest:
    return pb.ServeReviewsRequest(hello=pb.ReviewerHello(roles=roles))


def task_from_message(message: pb.ReviewTask) -> ReviewTask:
    try:
        role = short_name(ReviewerRole, message.role)
    except ValueError:  # a role newer than this client
        role = str(int(message.role))
    return ReviewTask(
        task_id=message.task_id,
        decision_id=message.decision_id,
        suggestion=message.suggestion,
        role=role,
        deadline=message.deadline.ToDatetime(tzinfo=timezone.utc),
        dry_run=message.dry_run,
    )


def role_names(roles: Iterable[ReviewerRole.ValueType]) -> str:
    return ", ".join(short_name(ReviewerRole, r) for r in roles)


def describe(task: ReviewTask) -> str:
    """How the logs name a task."""
    return f"task {task.task_id} ({task.role} on decision {task.decision_id})"


def vote_request_for(task: ReviewTask, answer: object) -> pb.ServeReviewsRequest | None:
    """The message that sends the handler's ``answer`` to ``task``, or None (logged) when there is
    nothing to send: no vote, something that is not a ReviewVote, or an answer past the deadline,
    which the server would ignore."""
    if answer is None:
        log.info("%s: the handler returned no vote; none is sent", describe(task))
        return None
    if not isinstance(answer, ReviewVote):
        log.error(
            "%s: the handler returned a %s, not a ReviewVote; no vote is sent",
            describe(task),
            type(answer).__name__,
        )
        return None
    late = -task.remaining()
    if late > 0:
        log.warning(
            "%s: the handler answered %.2f s after the deadline; its vote is dropped",
            describe(task),
            late,
        )
        return None
    return answer.request(task.task_id)
