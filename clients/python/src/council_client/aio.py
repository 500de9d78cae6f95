"""The asyncio client of Council, on ``grpc.aio``: the same calls, arguments, defaults, retries and
errors as :class:`council_client.CouncilClient`, awaited instead of blocking.

    import council_client as cc
    from council_client import aio

    async with aio.connect("127.0.0.1:50051") as council:
        review = council.review(suggestion)
        async for vote in review:               # each vote as soon as it is cast
            print(vote.reviewer_role, vote.vote)
        decision = await review.decision        # then the decision

        verdict = await council.guard(suggestion, on_vote=print)   # may the agent act?

Cancelling the task that awaits a call cancels the call (the server sees CANCELLED); leaving an
``async for`` early (``break``, an exception) cancels a review, a watch or an await; ``cancel()``
from another task ends their iteration quietly. Streams must be used from inside a running event
loop, and from one task at a time.

A reviewer agent serves an external role with a coroutine handler (task -> vote) and one call::

    async def review(task: cc.ReviewTask) -> cc.ReviewVote:
        return cc.ReviewVote("approve", "the diff is clean", confidence=0.9)

    await aio.serve_reviews("127.0.0.1:50051", roles=["safety"], handler=review, token=token)

(:func:`serve_reviews`, :class:`AsyncReviewer`).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator
from types import TracebackType
from typing import TypeVar, cast

import grpc
import grpc.aio

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
from ._aio_reviewer import AsyncReviewer, serve_reviews
from ._gen.council.v1 import council_service_pb2 as pb
from ._gen.council.v1.council_service_pb2_grpc import CouncilServiceStub
from ._guard import GuardVerdict, guard_verdict, is_final
from ._reviewer_core import ReconnectPolicy, ReviewTask, ReviewVote
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
    "AsyncCouncilClient",
    "AsyncDecisionWait",
    "AsyncReview",
    "AsyncReviewer",
    "AsyncWatch",
    "DecisionEvent",
    "ReconnectPolicy",
    "RetryPolicy",
    "ReviewTask",
    "ReviewVote",
    "VoteEvent",
    "WatchEvent",
    "connect",
    "serve_reviews",
]

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")
_T = TypeVar("_T")


class AsyncCouncilClient:
    """A client of ``council.v1.CouncilService`` over one ``grpc.aio`` channel.

    The same calls as :class:`council_client.CouncilClient`, with the same deadlines (the call's
    ``timeout``, else the client's ``timeout``, 30 s, for unary calls and ``review_timeout``,
    60 s, for reviews; none for watches and awaits; retries included), the same retries (only
    ``UNAVAILABLE``, only calls safe to repeat) and the same errors
    (:class:`~council_client.errors.CouncilError` and its subclasses).

    Use :func:`connect` to build one; ``await close()`` it (or use ``async with``) when done.
    """

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        review_timeout: float = DEFAULT_REVIEW_TIMEOUT,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.channel = channel
        self.stub = CouncilServiceStub(channel)
        """The generated asyncio stub, for anything this class does not wrap."""
        self.timeout = timeout
        self.review_timeout = review_timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self.metadata: tuple[tuple[str, str], ...] = bearer_metadata(token)
        """Metadata sent with every call (the bearer token, if any)."""

    async def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        await self.channel.close()

    async def __aenter__(self) -> AsyncCouncilClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # Reviews and watches.

    def review(
        self,
        suggestion: Suggestion,
        *,
        request_id: str | None = None,
        dry_run: bool = False,
        supersedes: str = "",
        timeout: float | None = None,
    ) -> AsyncReview:
        """Submits ``suggestion`` for review and returns the :class:`AsyncReview` in progress.

        ``async for`` over it for the votes as they are cast; ``await review.decision`` (or
        ``await review``) for the decision. The call starts with the first of these. Arguments
        as in :meth:`council_client.CouncilClient.review`; ``timeout`` (default: the client's
        ``review_timeout``) bounds the whole review, retries included.
        """
        request = review_request(suggestion, request_id, dry_run, supersedes)
        return AsyncReview(self, request, self.review_timeout if timeout is None else timeout)

    def watch(
        self,
        *,
        decision_type: DecisionTypeLike | None = None,
        include_votes: bool = False,
        include_updates: bool = False,
        timeout: float | None = None,
    ) -> AsyncWatch:
        """Starts watching reviews stored from now on (call it inside a running event loop).

        ``await w.ready()`` returns once the watch is live: every review stored from then on is
        sent. ``async for`` over it for :data:`WatchEvent` values. No deadline unless ``timeout``
        is given; not retried: after an error, watch again (reviews stored in between are not
        replayed: catch up with :meth:`list_decisions`).
        """
        request = watch_request(decision_type, include_votes, include_updates)
        return AsyncWatch(self, request, timeout)

    # Reads and writes.

    async def get_decision(self, decision_id: str, *, timeout: float | None = None) -> Decision:
        """The stored decision ``decision_id``; raises NotFound if there is none."""
        request = pb.GetDecisionRequest(id=decision_id)
        response = await self._unary("GetDecision", self.stub.GetDecision, request, timeout)
        return response.decision

    async def list_decisions(
        self,
        *,
        decision_type: DecisionTypeLike | None = None,
        suggestion_id: str = "",
        status: DecisionStatusLike | None = None,
        oldest_first: bool = False,
        page_size: int = 100,
        timeout: float | None = None,
    ) -> AsyncIterator[Decision]:
        """Every stored decision, newest first (``oldest_first``: oldest first), fetched page by
        page as the ``async for`` goes; filters as in the sync client; ``timeout`` is per page."""
        request = list_decisions_request(
            decision_type, suggestion_id, status, oldest_first, page_size
        )
        while True:
            page = await self._unary("ListDecisions", self.stub.ListDecisions, request, timeout)
            for decision in page.decisions:
                yield decision
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    async def record_outcome(
        self,
        decision_id: str,
        outcome: OutcomeLike,
        *,
        notes: str = "",
        lessons: str = "",
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> Decision:
        """Records how implementing an APPROVED decision went (see the sync client); the same
        ``request_id`` (a fresh uuid4 if none) is sent on every retry."""
        request = record_outcome_request(decision_id, outcome, notes, lessons, request_id)
        response = await self._unary("RecordOutcome", self.stub.RecordOutcome, request, timeout)
        return response.decision

    async def summary(self, *, timeout: float | None = None) -> Summary:
        """Exact counts over every stored decision: by type, by outcome, auto-approved, lessons."""
        return await self._unary(
            "GetSummary", self.stub.GetSummary, pb.GetSummaryRequest(), timeout
        )

    async def lessons(
        self, *, page_size: int = 100, timeout: float | None = None
    ) -> AsyncIterator[Lesson]:
        """Every recorded lesson, newest first, fetched page by page; ``timeout`` is per page."""
        request = pb.ListLessonsRequest(page_size=page_size)
        while True:
            page = await self._unary("ListLessons", self.stub.ListLessons, request, timeout)
            for lesson in page.lessons:
                yield lesson
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    async def reviewers(self, *, timeout: float | None = None) -> Reviewers:
        """The reviewers of the policy in force, in voting order, and its ``policy_version``."""
        request = pb.ListReviewersRequest()
        return await self._unary("ListReviewers", self.stub.ListReviewers, request, timeout)

    # Human verdicts (SPEC section 9).

    async def resolve(
        self,
        decision_id: str,
        verdict: VerdictLike,
        *,
        comment: str = "",
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> Decision:
        """Gives your verdict (``"approve"`` or ``"reject"``, which needs a ``comment``) on a
        pending decision and returns it with the verdict counted (see the sync client)."""
        request = resolve_request(decision_id, verdict, comment, request_id)
        response = await self._unary(
            "ResolveDecision", self.stub.ResolveDecision, request, timeout
        )
        return response.decision

    def await_decision(
        self, decision_id: str, *, timeout: float | None = None
    ) -> AsyncDecisionWait:
        """Waits for people to decide ``decision_id``; ``async for`` over it for its states: the
        current one at once, then one per change, ending after a final status. ``timeout`` (none
        by default) bounds the whole wait (DeadlineExceeded past it); ``UNAVAILABLE`` is retried
        by awaiting again, without repeating a state."""
        return AsyncDecisionWait(self, decision_id, Deadline(timeout))

    async def guard(
        self,
        suggestion: Suggestion,
        *,
        on_vote: Callable[[Vote], object] | None = None,
        on_decision: Callable[[Decision], object] | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
        supersedes: str = "",
    ) -> GuardVerdict:
        """The one call an agent makes before it acts: may it, and why? As
        :meth:`council_client.CouncilClient.guard`; ``on_vote`` and ``on_decision`` may also be
        coroutine functions (they are awaited). Cancelling the task cancels the review or the
        wait in progress.

            verdict = await council.guard(suggestion, timeout=600)
            if not verdict.allowed:
                return f"not allowed: {verdict.reason}"
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
        async with review:
            async for vote in review:
                await _call_back(on_vote, vote)
            decision = await review.decision
        await _call_back(on_decision, decision)
        if is_final(decision):
            return guard_verdict(decision)
        async with AsyncDecisionWait(self, decision.id, deadline, since=decision) as states:
            try:
                async for state in states:
                    decision = state
                    await _call_back(on_decision, state)
            except DeadlineExceeded:
                # The only deadline of the wait is the guard's own: the decision is still pending.
                return guard_verdict(decision, waited=time.monotonic() - started)
        if not is_final(decision):
            raise Internal(grpc.StatusCode.INTERNAL, "the wait ended before a final status")
        return guard_verdict(decision)

    # Plumbing.

    async def _unary(
        self,
        name: str,
        method: grpc.aio.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        timeout: float | None,
    ) -> _Resp:
        deadline = Deadline(self.timeout if timeout is None else timeout)
        attempt = 1
        while True:
            call = method(request, timeout=deadline.remaining(), metadata=self.metadata)
            try:
                return await call
            except grpc.RpcError as err:
                error = from_rpc_error(err)
                delay = retry_delay(self.retry, name, attempt, error, deadline)
                if delay is None:
                    raise error from err
            except asyncio.CancelledError:
                # grpc.aio leaves the call running when the task awaiting it is cancelled.
                call.cancel()
                raise
            await asyncio.sleep(delay)
            attempt += 1


class AsyncReview:
    """A review in progress: ``async for`` over it for its votes, each as soon as it is cast, and
    ``await review.decision`` (or ``await review``) for the decision.

    After a retry the server replays the stored review (same ``request_id``), and the votes
    already yielded are not yielded again. Errors raise
    :class:`~council_client.errors.CouncilError`, from the iteration or from ``decision``.
    Cancelling the task, leaving the ``async for`` early, leaving an ``async with`` block or
    ``cancel()`` cancels a review still running (the server sees CANCELLED, and still stores the
    review: review again with the same ``request_id`` to get it); ``decision`` then raises
    :class:`~council_client.errors.Cancelled`.
    """

    def __init__(
        self, client: AsyncCouncilClient, request: pb.ReviewSuggestionRequest, timeout: float | None
    ) -> None:
        self._client = client
        self._request = request
        self._deadline = Deadline(timeout)
        self._progress = ReviewProgress(request)
        self.request_id: str = request.request_id
        """The idempotency key sent with every attempt."""
        self.suggestion_id: str = request.suggestion.id
        self.dry_run: bool = request.dry_run
        self._call: grpc.aio.UnaryStreamCall[
            pb.ReviewSuggestionRequest, pb.ReviewSuggestionResponse
        ] | None = None
        self._error: CouncilError | None = None
        self._cancelled = False
        self._lock = asyncio.Lock()

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

    @property
    def done(self) -> bool:
        """True once the decision has arrived."""
        return self._progress.decision is not None

    @property
    def decision(self) -> Awaitable[Decision]:
        """Awaitable: the decision, once the remaining votes (kept in ``votes``) have arrived."""
        return self._finish()

    def __await__(self) -> Generator[object, None, Decision]:
        return self._finish().__await__()

    def __aiter__(self) -> AsyncIterator[Vote]:
        return self._votes()

    def cancel(self) -> None:
        """Cancels the call; the iteration stops without error."""
        self._cancelled = True
        if self._call is not None:
            self._call.cancel()

    close = cancel

    async def __aenter__(self) -> AsyncReview:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.done:
            self.cancel()

    async def _votes(self) -> AsyncGenerator[Vote, None]:
        complete = False
        try:
            while (vote := await self._next_vote()) is not None:
                yield vote
            complete = True
        finally:
            # Left early (break, an exception, the task cancelled): nobody reads the votes now.
            if not complete and not self.done:
                self.cancel()

    async def _finish(self) -> Decision:
        while await self._next_vote() is not None:
            pass
        if self._progress.decision is None:
            raise self._error or Cancelled(
                grpc.StatusCode.CANCELLED, "the review was cancelled before its decision arrived"
            )
        return self._progress.decision

    async def _next_vote(self) -> Vote | None:
        """The next vote not yet yielded, or None once the decision arrived (or after cancel())."""
        async with self._lock:
            try:
                return await self._read()
            except asyncio.CancelledError:
                if self._call is not None:
                    self._call.cancel()
                raise
            except CouncilError as err:
                self._error = err
                if self._call is not None:
                    self._call.cancel()
                raise

    async def _read(self) -> Vote | None:
        progress = self._progress
        client = self._client
        while progress.decision is None:
            if self._error is not None:
                raise self._error
            if self._cancelled:
                return None
            call = self._call
            if call is None:
                progress.start_attempt()
                call = self._call = client.stub.ReviewSuggestion(
                    self._request, timeout=self._deadline.remaining(), metadata=client.metadata
                )
            try:
                message = await call.read()
            except asyncio.CancelledError:
                if self._cancelled and not _task_cancelling():
                    return None  # our own cancel(): grpc.aio reads a cancelled call that way
                raise
            except grpc.RpcError as err:
                self._call = None
                if self._cancelled and _code(err) is grpc.StatusCode.CANCELLED:
                    return None
                error = from_rpc_error(err)
                delay = (
                    retry_delay(
                        client.retry, "ReviewSuggestion", progress.attempts, error, self._deadline
                    )
                    if progress.may_retry()
                    else None
                )
                if delay is None:
                    raise error from err
                await asyncio.sleep(delay)
                continue
            if message is grpc.aio.EOF:
                raise progress.ended_early()
            vote = progress.take(cast(pb.ReviewSuggestionResponse, message))
            if vote is not None:
                return vote
            if progress.decision is not None:
                # The decision: read the stream to its end, so that it ends OK, not cancelled.
                await _drain(call)
            # Otherwise a vote an earlier attempt already yielded (a retry replays them): read on.
        return None


class AsyncWatch:
    """A running watch: ``async for`` over it for :data:`WatchEvent` values as reviews are stored.

    ``await ready()`` returns once the watch is live. ``cancel()`` (or leaving an ``async with``
    block) ends it, and the ``async for`` then simply stops; leaving the ``async for`` early or
    cancelling the task that runs it cancels the call too. Errors raise
    :class:`~council_client.errors.CouncilError`.
    """

    def __init__(
        self,
        client: AsyncCouncilClient,
        request: pb.WatchDecisionsRequest,
        timeout: float | None,
    ) -> None:
        self._cancelled = False
        self._call = client.stub.WatchDecisions(request, timeout=timeout, metadata=client.metadata)

    async def ready(self) -> None:
        """Returns once the watch is live (the server's response headers: every review stored
        from then on is sent). Raises the :class:`~council_client.errors.CouncilError` that ended
        the watch if it is over (e.g. Unauthenticated, refused before it was live; Cancelled
        after ``cancel()``)."""
        call = self._call
        try:
            await call.initial_metadata()
        except asyncio.CancelledError:
            if not (self._cancelled and not _task_cancelling()):
                raise
        # A call refused before it was live (a trailers-only error) is done by now.
        if call.done():
            code = await call.code()
            if code is not grpc.StatusCode.OK:
                raise error_for(code, await call.details() or "")

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self._events()

    def cancel(self) -> None:
        """Ends the watch; the iteration stops."""
        self._cancelled = True
        self._call.cancel()

    close = cancel

    async def __aenter__(self) -> AsyncWatch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cancel()

    async def _events(self) -> AsyncGenerator[WatchEvent, None]:
        try:
            while True:
                message = await _read_or_end(self._call, lambda: self._cancelled)
                if message is None:
                    return
                event = watch_event(message)
                if event is not None:  # None: an event kind newer than this client
                    yield event
        finally:
            # Ended, or left early (break, an exception, the task cancelled): cancel the call (a
            # no-op once it has ended).
            self._call.cancel()


class AsyncDecisionWait:
    """A wait for people's verdicts on one decision: ``async for`` over its states.

    The first state is the decision as it stands, then one per change; the iteration ends after a
    final status. ``cancel()``, or leaving an ``async with`` block, ends it quietly; ``last`` is
    the latest state seen. Errors raise :class:`~council_client.errors.CouncilError`
    (DeadlineExceeded once the timeout passed, NotFound for an unknown decision).
    """

    def __init__(
        self,
        client: AsyncCouncilClient,
        decision_id: str,
        deadline: Deadline,
        *,
        since: Decision | None = None,
    ) -> None:
        self.decision_id = decision_id
        self._client = client
        self._deadline = deadline
        self._progress = AwaitProgress(since)
        self._cancelled = False
        self._call: grpc.aio.UnaryStreamCall[
            pb.AwaitDecisionRequest, pb.AwaitDecisionResponse
        ] | None = None

    @property
    def last(self) -> Decision | None:
        """The latest state seen (None before the first)."""
        return self._progress.last

    def __aiter__(self) -> AsyncIterator[Decision]:
        return self._states()

    def cancel(self) -> None:
        """Ends the wait; the iteration stops."""
        self._cancelled = True
        if self._call is not None:
            self._call.cancel()

    close = cancel

    async def __aenter__(self) -> AsyncDecisionWait:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cancel()

    async def _states(self) -> AsyncGenerator[Decision, None]:
        client = self._client
        progress = self._progress
        request = await_request(self.decision_id)
        while not self._cancelled:
            call = self._call = client.stub.AwaitDecision(
                request, timeout=self._deadline.remaining(), metadata=client.metadata
            )
            try:
                while True:
                    message = await _read_or_end(call, lambda: self._cancelled)
                    if message is None:
                        if self._cancelled:
                            return
                        raise progress.ended_early()
                    state = progress.take(message.decision)
                    if state is not None:
                        yield state
                    if progress.final(message.decision):
                        return
            except CouncilError as error:
                # UNAVAILABLE (a replica shutting down): await again, which resumes.
                progress.failures += 1
                delay = retry_delay(
                    client.retry, "AwaitDecision", progress.failures, error, self._deadline
                )
                if delay is None:
                    raise
            finally:
                call.cancel()  # a no-op once the call has ended
            await asyncio.sleep(delay)


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
) -> AsyncCouncilClient:
    """An asyncio client for the Council server at ``address`` (``host:port``); the arguments are
    those of :func:`council_client.connect`. The channel connects lazily, on the first call."""
    check_credentials(certificate_chain, private_key)
    channel_opts = channel_options(options)
    if uses_tls(tls, root_certificates, certificate_chain):
        credentials = grpc.ssl_channel_credentials(
            root_certificates=root_certificates,
            private_key=private_key,
            certificate_chain=certificate_chain,
        )
        channel = grpc.aio.secure_channel(address, credentials, options=channel_opts)
    else:
        channel = grpc.aio.insecure_channel(address, options=channel_opts)
    return AsyncCouncilClient(
        channel, token=token, timeout=timeout, review_timeout=review_timeout, retry=retry
    )


# Plumbing.


def _task_cancelling() -> bool:
    """Whether the current task is being cancelled (Python 3.11+; False before: a cancel() of
    ours and a cancellation of the task at the same moment then read as ours)."""
    task = asyncio.current_task()
    cancelling: Callable[[], int] | None = getattr(task, "cancelling", None)
    return cancelling is not None and cancelling() > 0


def _code(err: grpc.RpcError) -> grpc.StatusCode | None:
    code = getattr(err, "code", None)
    return code() if callable(code) else None


async def _read_or_end(
    call: grpc.aio.UnaryStreamCall[_Req, _T], cancelled: Callable[[], bool]
) -> _T | None:
    """The next message of ``call``; None at its end, or once ``cancelled()`` (our own cancel):
    grpc.aio reports a locally cancelled call by raising CancelledError in the reader, which must
    not be mistaken for the task's own cancellation. A real cancellation of the task cancels the
    call (grpc.aio would leave it running) and propagates."""
    try:
        message = await call.read()
    except asyncio.CancelledError:
        if cancelled() and not _task_cancelling():
            return None
        call.cancel()
        raise
    except grpc.RpcError as err:
        if cancelled() and _code(err) is grpc.StatusCode.CANCELLED:
            return None
        raise from_rpc_error(err) from err
    if message is grpc.aio.EOF:
        return None
    return cast(_T, message)


async def _drain(
    call: grpc.aio.UnaryStreamCall[pb.ReviewSuggestionRequest, pb.ReviewSuggestionResponse],
) -> None:
    """Reads a finished review stream to its end, so that it ends OK rather than cancelled."""
    try:
        while await call.read() is not grpc.aio.EOF:
            pass
    except grpc.RpcError:
        pass  # the decision is stored once it is sent; a late error changes nothing


async def _call_back(callback: Callable[[_T], object] | None, value: _T) -> None:
    if callback is None:
        return
    result = callback(value)
    if inspect.isawaitable(result):
        await result
