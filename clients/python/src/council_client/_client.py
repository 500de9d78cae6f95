"""The Council client: :func:`connect`, :class:`CouncilClient`, :class:`Review`, :class:`Watch`
and :class:`DecisionWait`; :meth:`CouncilClient.guard` is the one call an agent makes before it
acts. The asyncio client, with the same methods, is in :mod:`council_client.aio`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator
from types import TracebackType
from typing import TypeVar

import grpc

from ._core import (
    DEFAULT_GUARD_TIMEOUT,
    DEFAULT_REVIEW_TIMEOUT,
    DEFAULT_TIMEOUT,
    AwaitProgress,
    ChannelOptions,
    Deadline,
    DecisionEvent,
    RetryPolicy,
    ReviewProgress,
    VoteEvent,
    WatchEvent,
    await_request,
    bearer_metadata,
    channel_options,
    check_credentials,
    list_decisions_request,
    record_outcome_request,
    resolve_request,
    retry_delay,
    review_request,
    uses_tls,
    watch_event,
    watch_request,
)
from ._gen.council.v1 import council_service_pb2 as pb
from ._gen.council.v1.council_service_pb2_grpc import CouncilServiceStub
from ._guard import GuardVerdict, guard_verdict, is_final
from ._types import (
    Decision,
    DecisionStatusLike,
    DecisionTypeLike,
    Lesson,
    OutcomeLike,
    Reviewers,
    Suggestion,
    Summary,
    VerdictLike,
    Vote,
)
from .errors import Cancelled, CouncilError, DeadlineExceeded, Internal, error_for, from_rpc_error

__all__ = [
    "DEFAULT_GUARD_TIMEOUT",
    "DEFAULT_REVIEW_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "CouncilClient",
    "DecisionEvent",
    "DecisionWait",
    "RetryPolicy",
    "Review",
    "VoteEvent",
    "Watch",
    "WatchEvent",
    "connect",
]

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")


class CouncilClient:
    """A client of ``council.v1.CouncilService`` over one gRPC channel.

    Every call has one deadline, retries included: its ``timeout`` argument, else the client's
    ``timeout`` (30 s) for a unary call and ``review_timeout`` (60 s) for a review; a watch and an
    await have none unless given one. Calls that are safe to repeat are retried on
    ``UNAVAILABLE`` as ``retry`` says: reads, and the writes that carry a ``request_id`` (reviews,
    outcomes, verdicts: the same id on every attempt, so a retry after a lost reply returns what
    was stored instead of deciding again or appending a second lesson). Failures raise
    :class:`~council_client.errors.CouncilError`.

    Use :func:`connect` to build one; close it (or use it as a context manager) when done.
    """

    def __init__(
        self,
        channel: grpc.Channel,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        review_timeout: float = DEFAULT_REVIEW_TIMEOUT,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.channel = channel
        self.stub = CouncilServiceStub(channel)
        """The generated stub, for anything this class does not wrap."""
        self.timeout = timeout
        self.review_timeout = review_timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self.metadata: tuple[tuple[str, str], ...] = bearer_metadata(token)
        """Metadata sent with every call (the bearer token, if any)."""

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        self.channel.close()

    def __enter__(self) -> CouncilClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # Reviews and watches.

    def review(
        self,
        suggestion: Suggestion,
        *,
        request_id: str | None = None,
        dry_run: bool = False,
        supersedes: str = "",
        timeout: float | None = None,
    ) -> Review:
        """Submits ``suggestion`` for review and returns the :class:`Review` in progress.

        Iterate over it for the votes as they are cast; ``.decision`` is the decision (it waits
        for the end of the review). ``request_id`` makes the review idempotent; a fresh uuid4 is
        used if none (or "") is given, and the same one is sent again on every retry.
        ``supersedes`` names a pending decision of yours that this review follows up (e.g. a
        DEFER answered with more information): once this one is stored, that one is SUPERSEDED.
        ``timeout`` (default: the client's ``review_timeout``) bounds the whole review, retries
        included.
        """
        request = review_request(suggestion, request_id, dry_run, supersedes)
        return Review(self, request, self.review_timeout if timeout is None else timeout)

    def watch(
        self,
        *,
        decision_type: DecisionTypeLike | None = None,
        include_votes: bool = False,
        include_updates: bool = False,
        timeout: float | None = None,
    ) -> Watch:
        """Starts watching reviews stored from now on; iterate for :data:`WatchEvent` values.

        ``decision_type`` keeps only reviews with that decision; ``include_updates`` also sends a
        stored decision again (a :class:`DecisionEvent`) each time its status, verdicts or
        outcome change. ``ready(timeout)`` waits until the watch is live: every review stored
        from then on is sent. A watch has no deadline unless ``timeout`` is given, and is not
        retried: after an error, watch again (and catch up with :meth:`list_decisions`, since
        reviews stored in between are not replayed).
        """
        request = watch_request(decision_type, include_votes, include_updates)
        return Watch(self, request, timeout)

    # Reads and writes.

    def get_decision(self, decision_id: str, *, timeout: float | None = None) -> Decision:
        """The stored decision ``decision_id``; raises NotFound if there is none."""
        request = pb.GetDecisionRequest(id=decision_id)
        return self._unary("GetDecision", self.stub.GetDecision, request, timeout).decision

    def list_decisions(
        self,
        *,
        decision_type: DecisionTypeLike | None = None,
        suggestion_id: str = "",
        status: DecisionStatusLike | None = None,
        oldest_first: bool = False,
        page_size: int = 100,
        timeout: float | None = None,
    ) -> Iterator[Decision]:
        """Every stored decision, newest first (``oldest_first``: oldest first), fetched page by
        page as the iteration goes.

        ``decision_type``, ``suggestion_id`` and ``status`` (e.g. ``"pending"``) filter; the
        approvers' queue is ``status="pending", oldest_first=True``. ``timeout`` bounds each
        page's call.
        """
        request = list_decisions_request(
            decision_type, suggestion_id, status, oldest_first, page_size
        )
        while True:
            page = self._unary("ListDecisions", self.stub.ListDecisions, request, timeout)
            yield from page.decisions
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    def record_outcome(
        self,
        decision_id: str,
        outcome: OutcomeLike,
        *,
        notes: str = "",
        lessons: str = "",
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> Decision:
        """Records how implementing ``decision_id`` went, appends a lesson entry, and returns the
        updated decision. Only an APPROVED decision takes an outcome (FailedPrecondition
        otherwise).

        ``outcome`` is an Outcome value or ``"success"``, ``"failure"`` or ``"partial"``.
        ``request_id`` makes the call idempotent (AIP-155); a fresh uuid4 is used if none (or "")
        is given, and the same one is sent again on every retry after ``UNAVAILABLE``. A repeat
        with the same ``request_id`` and the same outcome, notes and lessons records nothing and
        returns the decision as stored; with a different outcome, notes or lessons it raises
        :class:`~council_client.errors.FailedPrecondition`. Request ids are per decision.
        """
        request = record_outcome_request(decision_id, outcome, notes, lessons, request_id)
        return self._unary("RecordOutcome", self.stub.RecordOutcome, request, timeout).decision

    def summary(self, *, timeout: float | None = None) -> Summary:
        """Exact counts over every stored decision: by type, by outcome, auto-approved, lessons."""
        return self._unary("GetSummary", self.stub.GetSummary, pb.GetSummaryRequest(), timeout)

    def lessons(self, *, page_size: int = 100, timeout: float | None = None) -> Iterator[Lesson]:
        """Every recorded lesson, newest first, fetched page by page; ``timeout`` is per page."""
        request = pb.ListLessonsRequest(page_size=page_size)
        while True:
            page = self._unary("ListLessons", self.stub.ListLessons, request, timeout)
            yield from page.lessons
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    def reviewers(self, *, timeout: float | None = None) -> Reviewers:
        """The reviewers of the policy in force, in voting order, and its ``policy_version``."""
        request = pb.ListReviewersRequest()
        return self._unary("ListReviewers", self.stub.ListReviewers, request, timeout)

    # Human verdicts (SPEC section 9).

    def resolve(
        self,
        decision_id: str,
        verdict: VerdictLike,
        *,
        comment: str = "",
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> Decision:
        """Gives your verdict on a pending decision and returns it with the verdict counted.

        ``verdict`` is ``"approve"`` or ``"reject"`` (or a VerdictType); a reject needs a
        ``comment`` (:class:`~council_client.errors.InvalidArgument` with ``field == "comment"``
        otherwise). The caller needs the role approver and may not judge a decision it submitted
        (PermissionDenied). One rejection rejects; approvals from ``approvals_required`` distinct
        principals approve. A decision that is not pending, or the other verdict than the one you
        gave, raises FailedPrecondition (the same verdict again returns the decision unchanged).
        ``request_id`` (a fresh uuid4 if none) is sent again on every retry after
        ``UNAVAILABLE``, so a retry after a lost reply returns the same answer.
        """
        request = resolve_request(decision_id, verdict, comment, request_id)
        return self._unary("ResolveDecision", self.stub.ResolveDecision, request, timeout).decision

    def await_decision(self, decision_id: str, *, timeout: float | None = None) -> DecisionWait:
        """Waits for people to decide ``decision_id``; iterate for its states.

        The current state comes at once, then one per change (a verdict, the status); the
        iteration ends after a final status (APPROVED, REJECTED, EXPIRED, SUPERSEDED). ``timeout``
        (seconds, none by default: the decision's expiry ends the wait) bounds the whole wait:
        past it the iteration raises :class:`~council_client.errors.DeadlineExceeded`.
        ``cancel()`` (or leaving a ``with`` block) ends it quietly. ``UNAVAILABLE`` (a replica
        shutting down) is retried by awaiting again, which resumes; a state already yielded is not
        yielded twice.
        """
        return DecisionWait(self, decision_id, Deadline(timeout))

    def guard(
        self,
        suggestion: Suggestion,
        *,
        on_vote: Callable[[Vote], object] | None = None,
        on_decision: Callable[[Decision], object] | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
        supersedes: str = "",
    ) -> GuardVerdict:
        """The one call an agent makes before it acts: may it, and why?

        Submits ``suggestion``, passes each vote to ``on_vote`` as it is cast, then, if the
        council's decision waits for people (HUMAN_APPROVE, DEFER, ESCALATE), waits for their
        verdicts. ``on_decision`` gets the council's decision as soon as it is made (its ``id`` is
        what approvers need), then each change while the guard waits. ``timeout`` (seconds,
        default :data:`DEFAULT_GUARD_TIMEOUT`) bounds the whole guard; the review itself is also
        bounded by the client's ``review_timeout``.

        Returns a :class:`~council_client.GuardVerdict`: ``allowed`` only when the decision ended
        APPROVED; a decision still pending at ``timeout`` gives ``timed_out`` (not allowed, and
        not a rejection). A review that fails raises a
        :class:`~council_client.errors.CouncilError`, as :meth:`review` does.

            verdict = client.guard(suggestion, on_vote=print, timeout=600)
            if not verdict.allowed:
                raise SystemExit(f"not allowed: {verdict.reason}")
        """
        wait = DEFAULT_GUARD_TIMEOUT if timeout is None else timeout
        started = time.monotonic()
        deadline = Deadline(wait)
        review = self.review(
            suggestion,
            request_id=request_id,
            supersedes=supersedes,
            timeout=min(wait, self.review_timeout),
        )
        with review:
            for vote in review:
                if on_vote is not None:
                    on_vote(vote)
            decision = review.decision
        if on_decision is not None:
            on_decision(decision)
        if is_final(decision):
            return guard_verdict(decision)
        with DecisionWait(self, decision.id, deadline, since=decision) as states:
            try:
                for state in states:
                    decision = state
                    if on_decision is not None:
                        on_decision(state)
            except DeadlineExceeded:
                # The only deadline of the wait is the guard's own: the decision is still pending.
                return guard_verdict(decision, waited=time.monotonic() - started)
        if not is_final(decision):
            raise Internal(grpc.StatusCode.INTERNAL, "the wait ended before a final status")
        return guard_verdict(decision)

    # Plumbing.

    def _unary(
        self,
        name: str,
        method: grpc.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        timeout: float | None,
    ) -> _Resp:
        deadline = Deadline(self.timeout if timeout is None else timeout)
        attempt = 1
        while True:
            try:
                return method(request, timeout=deadline.remaining(), metadata=self.metadata)
            except grpc.RpcError as err:
                error = from_rpc_error(err)
                if not self._wait_to_retry(name, attempt, error, deadline):
                    raise error from err
            attempt += 1

    def _wait_to_retry(
        self, name: str, attempt: int, error: CouncilError, deadline: Deadline
    ) -> bool:
        """Sleeps before another attempt and returns True, or returns False if there is none."""
        delay = retry_delay(self.retry, name, attempt, error, deadline)
        if delay is None:
            return False
        time.sleep(delay)
        return True


class Review(Iterator[Vote]):
    """A review in progress: an iterator over its votes, each as soon as it is cast.

    ``decision`` is the council's decision; reading it waits for the rest of the review. After a
    retry the server replays the stored review (same ``request_id``), and the votes already
    yielded are not yielded again. Errors raise :class:`~council_client.errors.CouncilError`, from
    the iteration or from ``decision``. ``cancel()`` (from any thread), ``close()`` or leaving a
    ``with`` block cancels a review still running: the iteration stops without error, and
    ``decision`` raises :class:`~council_client.errors.Cancelled` (the server still stores the
    review: review again with the same ``request_id`` to get it).
    """

    def __init__(
        self, client: CouncilClient, request: pb.ReviewSuggestionRequest, timeout: float | None
    ) -> None:
        self._progress = ReviewProgress(request)
        self.request_id: str = request.request_id
        """The idempotency key sent with every attempt."""
        self.suggestion_id: str = request.suggestion.id
        self.dry_run: bool = request.dry_run
        self._error: CouncilError | None = None
        self._cancelled = False
        self._call: grpc.RpcContext | None = None
        self._events = self._run(client, request, Deadline(timeout))

    @property
    def decision_id(self) -> str:
        """The decision's id, known from the first event on ("" before)."""
        return self._progress.decision_id

    @property
    def votes(self) -> list[Vote]:
        """The votes received so far, in reviewer order."""
        return self._progress.votes

    @property
    def attempts(self) -> int:
        """How many times the review was sent (more than 1 after retries)."""
        return self._progress.attempts

    def __iter__(self) -> Review:
        return self

    def __next__(self) -> Vote:
        try:
            return next(self._events)
        except CouncilError as err:
            self._error = err
            raise

    @property
    def done(self) -> bool:
        """True once the decision has arrived."""
        return self._progress.decision is not None

    @property
    def decision(self) -> Decision:
        """The decision; waits for the remaining votes (kept in ``votes``) if needed."""
        for _ in self:
            pass
        if self._progress.decision is None:
            raise self._error or Cancelled(
                grpc.StatusCode.CANCELLED, "the review was cancelled before its decision arrived"
            )
        return self._progress.decision

    def cancel(self) -> None:
        """Cancels the call (from any thread); the iteration then stops."""
        self._cancelled = True
        call = self._call
        if call is not None:
            call.cancel()

    def close(self) -> None:
        """Stops the iteration and cancels the call if it is still running."""
        self._cancelled = True
        self._events.close()

    def __enter__(self) -> Review:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(
        self, client: CouncilClient, request: pb.ReviewSuggestionRequest, deadline: Deadline
    ) -> Generator[Vote, None, None]:
        progress = self._progress
        while not self._cancelled:
            progress.start_attempt()
            call = client.stub.ReviewSuggestion(
                request, timeout=deadline.remaining(), metadata=client.metadata
            )
            self._call = call
            if self._cancelled:  # cancel() ran before the call was there to cancel
                call.cancel()
            try:
                for message in call:
                    vote = progress.take(message)
                    if vote is not None:
                        yield vote
                    elif progress.decision is not None:
                        _drain(call)
                        return
                raise progress.ended_early()
            except grpc.RpcError as err:
                if self._cancelled and err.code() is grpc.StatusCode.CANCELLED:
                    return
                error = from_rpc_error(err)
                if not progress.may_retry() or not client._wait_to_retry(
                    "ReviewSuggestion", progress.attempts, error, deadline
                ):
                    raise error from err
            finally:
                call.cancel()  # a no-op once the call has ended


class Watch(Iterator[WatchEvent]):
    """A running watch: an iterator over :data:`WatchEvent` values as reviews are stored.

    The call starts when the watch is created; ``ready(timeout)`` waits until it is live (the
    server's response headers: every review stored from then on is sent). ``cancel()`` (from any
    thread), ``close()`` or leaving a ``with`` block ends it, and the iteration then simply stops.
    Errors raise :class:`~council_client.errors.CouncilError`.
    """

    def __init__(
        self, client: CouncilClient, request: pb.WatchDecisionsRequest, timeout: float | None
    ) -> None:
        self._cancelled = False
        self._live = threading.Event()
        self._call = client.stub.WatchDecisions(request, timeout=timeout, metadata=client.metadata)
        # Headers arrive on gRPC's own thread; one small thread per watch turns them into an event.
        live = threading.Thread(target=self._wait_until_live, name="council-watch", daemon=True)
        live.start()

    def ready(self, timeout: float | None = None) -> bool:
        """Waits until the watch is live (the server's response headers: every review stored
        from then on is sent) and returns True; False if ``timeout`` (seconds) passed first.
        Raises the :class:`~council_client.errors.CouncilError` that ended the watch if it is
        over (e.g. Unauthenticated, refused before it was live; Cancelled after ``cancel()``)."""
        if not self._live.wait(timeout):
            return False
        call = self._call
        if not call.is_active():
            code = call.code()
            if code is not grpc.StatusCode.OK:
                raise error_for(code, call.details() or "")
        return True

    def __iter__(self) -> Watch:
        return self

    def __next__(self) -> WatchEvent:
        while True:
            try:
                message = next(self._call)
            except grpc.RpcError as err:
                if self._cancelled and err.code() is grpc.StatusCode.CANCELLED:
                    raise StopIteration from None
                raise from_rpc_error(err) from err
            event = watch_event(message)
            if event is not None:
                return event
            # An event kind newer than this client: skip it.

    def cancel(self) -> None:
        """Ends the watch; the iteration stops."""
        self._cancelled = True
        self._call.cancel()

    close = cancel

    def __enter__(self) -> Watch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cancel()

    def _wait_until_live(self) -> None:
        try:
            self._call.initial_metadata()  # returns at the headers, or once the call has ended
        finally:
            self._live.set()


class DecisionWait(Iterator[Decision]):
    """A wait for people's verdicts on one decision: an iterator over its states.

    The first state is the decision as it stands, then one per change; the iteration ends after a
    final status. ``cancel()`` (from any thread), or leaving a ``with`` block, ends it quietly;
    ``last`` is the latest state seen. Errors raise :class:`~council_client.errors.CouncilError`
    (DeadlineExceeded once the timeout passed, NotFound for an unknown decision).
    """

    def __init__(
        self,
        client: CouncilClient,
        decision_id: str,
        deadline: Deadline,
        *,
        since: Decision | None = None,
    ) -> None:
        self.decision_id = decision_id
        self._progress = AwaitProgress(since)
        self._cancelled = False
        self._call: grpc.RpcContext | None = None
        self._events = self._run(client, deadline)

    @property
    def last(self) -> Decision | None:
        """The latest state seen (None before the first)."""
        return self._progress.last

    def __iter__(self) -> DecisionWait:
        return self

    def __next__(self) -> Decision:
        return next(self._events)

    def cancel(self) -> None:
        """Ends the wait; the iteration stops."""
        self._cancelled = True
        call = self._call
        if call is not None:
            call.cancel()

    close = cancel

    def __enter__(self) -> DecisionWait:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cancel()

    def _run(self, client: CouncilClient, deadline: Deadline) -> Generator[Decision, None, None]:
        request = await_request(self.decision_id)
        progress = self._progress
        while not self._cancelled:
            call = client.stub.AwaitDecision(
                request, timeout=deadline.remaining(), metadata=client.metadata
            )
            self._call = call
            if self._cancelled:  # cancel() ran before the call was there to cancel
                call.cancel()
            try:
                for message in call:
                    state = progress.take(message.decision)
                    if state is not None:
                        yield state
                    if progress.final(message.decision):
                        return
                raise progress.ended_early()
            except grpc.RpcError as err:
                if self._cancelled and err.code() is grpc.StatusCode.CANCELLED:
                    return
                error = from_rpc_error(err)
                progress.failures += 1
                if not client._wait_to_retry("AwaitDecision", progress.failures, error, deadline):
                    raise error from err
            finally:
                call.cancel()  # a no-op once the call has ended


def connect(
    address: str,
    *,
    tls: bool = False,
    root_certificates: bytes | None = None,
    certificate_chain: bytes | None = None,
    private_key: bytes | None = None,
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    review_timeout: float = DEFAULT_REVIEW_TIMEOUT,
    retry: RetryPolicy | None = None,
    options: ChannelOptions = (),
) -> CouncilClient:
    """A client for the Council server at ``address`` (``host:port``).

    ``tls`` secures the channel, trusting the system roots; ``root_certificates`` (PEM bytes)
    trusts a private CA instead. ``certificate_chain`` and ``private_key`` (PEM bytes, both or
    neither) present a client certificate, for a server that requires one (mTLS). Each of the
    three implies ``tls``. ``token`` is sent as ``authorization: Bearer <token>`` on every call
    (in clear text unless TLS is on). ``timeout`` is the default deadline of a unary call and
    ``review_timeout`` that of a review, in seconds, retries included; ``retry`` the policy for
    ``UNAVAILABLE``, ``options`` extra gRPC channel options. The channel connects lazily, on the
    first call.
    """
    check_credentials(certificate_chain, private_key)
    channel_opts = channel_options(options)
    if uses_tls(tls, root_certificates, certificate_chain):
        credentials = grpc.ssl_channel_credentials(
            root_certificates=root_certificates,
            private_key=private_key,
            certificate_chain=certificate_chain,
        )
        channel = grpc.secure_channel(address, credentials, options=channel_opts)
    else:
        channel = grpc.insecure_channel(address, options=channel_opts)
    return CouncilClient(
        channel, token=token, timeout=timeout, review_timeout=review_timeout, retry=retry
    )


def _drain(call: Iterator[object]) -> None:
    """Reads a finished review stream to its end, so that it ends OK rather than cancelled."""
    try:
        for _ in call:
            pass
    except grpc.RpcError:
        pass  # the decision is stored once it is sent; a late error changes nothing
