"""Serving a reviewer role, asyncio flavour: :class:`AsyncReviewer` and :func:`serve_reviews`,
exported by :mod:`council_client.aio`. The same protocol, backoff and rules as the blocking
flavour (``_reviewer.py``); handlers are coroutines, run as tasks."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, cast

import grpc
import grpc.aio

from ._core import ChannelOptions, check_credentials
from ._gen.council.v1 import council_service_pb2 as pb
from ._reviewer_core import (
    DEFAULT_CONCURRENCY,
    STOP_GRACE,
    Backoff,
    ReconnectPolicy,
    ReviewTask,
    ReviewVote,
    check_concurrency,
    check_roles,
    describe,
    gives_up,
    hello_request,
    log,
    role_names,
    task_from_message,
    vote_request_for,
)
from ._types import ReviewerRoleLike
from .errors import CouncilError, error_for, from_rpc_error

if TYPE_CHECKING:
    from .aio import AsyncCouncilClient

__all__ = ["AsyncReviewer", "serve_reviews"]

AsyncHandler = Callable[[ReviewTask], Awaitable[ReviewVote | None]]

_Call = grpc.aio.StreamStreamCall[pb.ServeReviewsRequest, pb.ServeReviewsResponse]


class _Stream:
    """One ServeReviews call: its writes (one at a time), and the handler tasks of its tasks,
    which are cancelled when it ends (their votes could no longer be sent)."""

    def __init__(self, call: _Call) -> None:
        self.call = call
        self.open = True
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def send(self, request: pb.ServeReviewsRequest) -> bool:
        """Writes ``request``; False if the stream has ended (the request is dropped)."""
        async with self._lock:
            if not self.open:
                return False
            try:
                await self.call.write(request)
            except (grpc.RpcError, asyncio.InvalidStateError) as err:
                log.debug("ServeReviews write failed: %s", err)
                return False
            return True

    async def half_close(self) -> None:
        """Ends the stream from this side: the server then ends it with OK."""
        async with self._lock:
            if not self.open:
                return
            self.close()
            try:
                await self.call.done_writing()
            except (grpc.RpcError, asyncio.InvalidStateError) as err:
                log.debug("ServeReviews half-close failed: %s", err)

    def spawn(self, handling: Awaitable[None], every: set[asyncio.Task[None]]) -> None:
        task = asyncio.ensure_future(handling)
        for tasks in (self._tasks, every):
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        task.add_done_callback(_log_unexpected)

    def close(self) -> None:
        self.open = False
        for task in self._tasks:
            task.cancel()


class AsyncReviewer:
    """A reviewer agent serving ``roles`` with ``handler``, asyncio flavour, on ``grpc.aio``.

    ``await serve()`` serves until ``stop()`` or ``stop`` (an ``asyncio.Event``) is set, then
    returns None; it raises the :class:`~council_client.errors.CouncilError` that ended serving
    when retrying cannot help (``Unauthenticated``, ``PermissionDenied``, ``FailedPrecondition``
    for a role that is not external, ``InvalidArgument``, or code UNIMPLEMENTED), and reconnects
    after every other end of the stream, with the backoff of ``reconnect``. Cancelling the task
    that runs ``serve()`` cancels the call and the handlers. ``async with AsyncReviewer(...) as
    r:`` serves in a task, and stops at the end.

    ``handler(task)`` is a coroutine function: it gets a :class:`ReviewTask` and returns a
    :class:`ReviewVote` (or None: no vote). Up to ``concurrency`` handlers (16) run at once, each a
    task; the others wait their turn, and are skipped if their deadline passes while they wait. A
    handler that raises is logged (logger ``council_client.reviewer``) and sends no vote; one still
    running at the task's deadline is cancelled: in both cases the role's failure policy votes.

    ``await wait_connected(timeout)`` returns True once the server has accepted the stream;
    ``connected`` says whether it is now; ``on_connected()`` (a function or a coroutine function)
    is called each time a stream is accepted; ``connections`` counts them. The connection
    arguments are those of :func:`council_client.aio.connect`; ``token`` is the bearer token of a
    principal with the role reviewer.
    """

    def __init__(
        self,
        address: str,
        *,
        roles: Iterable[ReviewerRoleLike],
        handler: AsyncHandler,
        tls: bool = False,
        root_certificates: bytes | None = None,
        certificate_chain: bytes | None = None,
        private_key: bytes | None = None,
        token: str | None = None,
        options: ChannelOptions = (),
        concurrency: int = DEFAULT_CONCURRENCY,
        reconnect: ReconnectPolicy | None = None,
        on_connected: Callable[[], object] | None = None,
        stop: asyncio.Event | None = None,
    ) -> None:
        self.roles = check_roles(roles)
        check_credentials(certificate_chain, private_key)
        self._concurrency = check_concurrency(concurrency)
        self._handler = handler
        from .aio import connect  # imported here: council_client.aio imports this module

        self._connect = functools.partial(
            connect,
            address,
            tls=tls,
            root_certificates=root_certificates,
            certificate_chain=certificate_chain,
            private_key=private_key,
            token=token,
            options=options,
        )
        self._reconnect = reconnect if reconnect is not None else ReconnectPolicy()
        self._on_connected = on_connected
        self._stop_event = stop
        self._stopping = asyncio.Event()
        self._state = asyncio.Condition()
        self._serving = False
        self._ended = False
        self._connected = False
        self._connections = 0
        self._error: CouncilError | None = None
        self._stream: _Stream | None = None
        self._task: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(self._concurrency)

    # State.

    @property
    def connected(self) -> bool:
        """Whether the server has accepted the current stream."""
        return self._connected

    @property
    def connections(self) -> int:
        """How many streams the server has accepted so far (1 + the reconnects)."""
        return self._connections

    @property
    def error(self) -> CouncilError | None:
        """The error that ended serving, if one did."""
        return self._error

    async def wait_connected(self, timeout: float | None = None) -> bool:
        """Returns True once the server has accepted a stream; False if ``timeout`` (seconds)
        passed first or serving was stopped. Raises the error that ended serving."""
        def settled() -> bool:
            return self._connected or self._ended

        async with self._state:
            if not settled():
                try:
                    await asyncio.wait_for(self._state.wait_for(settled), timeout)
                except asyncio.TimeoutError:
                    return False
            if self._connected:
                return True
        if self._error is not None:
            raise self._error
        return False

    # Control.

    def stop(self) -> None:
        """Stops serving: the stream is half-closed, so that the server lets go of it and gives
        any task still open to another reviewer (the call is cancelled if the server has not ended
        it within 5 s); handlers still running are cancelled; ``serve()`` then returns. Call it
        from the event loop's thread (from another: ``loop.call_soon_threadsafe(r.stop)``)."""
        self._stopping.set()

    async def serve(self) -> None:
        """Serves until stopped (returns None) or a configuration error (raised)."""
        if self._serving:
            raise RuntimeError("an AsyncReviewer serves once; make a new one to serve again")
        self._serving = True
        client = self._connect()
        handlers: set[asyncio.Task[None]] = set()
        watchers = [asyncio.ensure_future(self._end_when_stopped())]
        if self._stop_event is not None:
            watchers.append(asyncio.ensure_future(self._stop_when(self._stop_event)))
        try:
            await self._loop(client, handlers)
        except CouncilError as err:
            self._error = err
            raise
        finally:
            for watcher in watchers:
                watcher.cancel()
            for task in handlers:
                task.cancel()
            if handlers:
                await asyncio.wait(handlers, timeout=STOP_GRACE)
            async with self._state:
                self._ended = True
                self._connected = False
                self._state.notify_all()
            await client.close()

    async def __aenter__(self) -> AsyncReviewer:
        if not self._serving:
            self._task = asyncio.ensure_future(self.serve())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self._task is None:
            return
        try:
            await self._task
        except CouncilError:
            if exc_type is None:
                raise
            # The block's own exception is the one to see; this one is kept in ``error``.

    # Serving.

    async def _loop(self, client: AsyncCouncilClient, handlers: set[asyncio.Task[None]]) -> None:
        backoff = Backoff(self._reconnect)
        while not self._stopping.is_set():
            error = await self._one_stream(client, handlers, backoff)
            if self._stopping.is_set():
                return
            if error is not None and gives_up(error):
                raise error
            try:
                await asyncio.wait_for(self._stopping.wait(), backoff.next(error))
                return
            except asyncio.TimeoutError:
                pass

    async def _one_stream(
        self, client: AsyncCouncilClient, handlers: set[asyncio.Task[None]], backoff: Backoff
    ) -> CouncilError | None:
        """One stream, from the hello to its end; the error it ended with (None: OK, or stopped)."""
        call: _Call = client.stub.ServeReviews(metadata=client.metadata)
        stream = self._stream = _Stream(call)
        try:
            # A refusal at the start of the call (a token, the role) that crosses this write makes
            # grpc.aio replace the server's status with INTERNAL "Internal error from Core"; that
            # is retried like any other INTERNAL, and the next stream shows the real status.
            await stream.send(hello_request(self.roles))
            # Returns at the server's response headers (the hello was accepted), or once the call
            # has ended (refused: its status is read below).
            await call.initial_metadata()
            if not call.done():
                backoff.accepted()
                await self._set_connected()
            while True:
                message = await call.read()
                if message is grpc.aio.EOF:
                    break
                response = cast(pb.ServeReviewsResponse, message)
                if response.HasField("task"):
                    task = task_from_message(response.task)
                    log.debug("%s: received", describe(task))
                    stream.spawn(self._handle(stream, task), handlers)
            code = await call.code()
            if code is grpc.StatusCode.OK:
                return None
            if code is grpc.StatusCode.CANCELLED and self._stopping.is_set():
                return None
            return error_for(code, await call.details() or "")
        except grpc.RpcError as err:
            if self._stopping.is_set() and _code(err) is grpc.StatusCode.CANCELLED:
                return None
            return from_rpc_error(err)
        except asyncio.CancelledError:
            # grpc.aio reports a call cancelled here (after the grace period of a stop) by
            # raising CancelledError in the reader; the task's own cancellation propagates.
            if self._stopping.is_set() and not _task_cancelling():
                return None
            call.cancel()
            raise
        finally:
            stream.close()
            self._stream = None
            async with self._state:
                self._connected = False
                self._state.notify_all()
            call.cancel()  # a no-op once the call has ended

    async def _set_connected(self) -> None:
        async with self._state:
            self._connected = True
            self._connections += 1
            self._state.notify_all()
        log.info("serving reviews for %s", role_names(self.roles))
        if self._on_connected is not None:
            try:
                result = self._on_connected()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("on_connected raised")

    async def _end_when_stopped(self) -> None:
        await self._stopping.wait()
        stream = self._stream
        if stream is None:
            return  # between streams: the loop sees the stop
        await stream.half_close()
        await asyncio.sleep(STOP_GRACE)
        stream.call.cancel()

    async def _stop_when(self, event: asyncio.Event) -> None:
        await event.wait()
        self.stop()

    async def _handle(self, stream: _Stream, task: ReviewTask) -> None:
        async with self._slots:
            remaining = task.remaining()
            if remaining <= 0:
                log.warning(
                    "%s: no handler was free before the deadline; no vote is sent", describe(task)
                )
                return
            # Not wait_for: whether the handler was still running at the deadline is what the
            # wait says, not the wall clock afterwards (a timer may fire a moment early), nor a
            # TimeoutError the handler raised itself.
            running = asyncio.ensure_future(self._handler(task))
            try:
                await asyncio.wait((running,), timeout=remaining)
            except asyncio.CancelledError:
                running.cancel()
                raise
            if not running.done():
                running.cancel()
                await asyncio.wait((running,))
                log.warning(
                    "%s: the handler was still running at the deadline; it was cancelled and "
                    "no vote is sent (the role's failure policy votes)",
                    describe(task),
                )
                return
            try:
                answer = running.result()
            except Exception:
                log.exception(
                    "%s: the handler raised; no vote is sent (the role's failure policy votes)",
                    describe(task),
                )
                return
        request = vote_request_for(task, answer)
        if request is not None and not await stream.send(request):
            log.info("%s: its stream has ended; the vote is not sent", describe(task))


async def serve_reviews(
    address: str,
    *,
    roles: Iterable[ReviewerRoleLike],
    handler: AsyncHandler,
    tls: bool = False,
    root_certificates: bytes | None = None,
    certificate_chain: bytes | None = None,
    private_key: bytes | None = None,
    token: str | None = None,
    options: ChannelOptions = (),
    concurrency: int = DEFAULT_CONCURRENCY,
    reconnect: ReconnectPolicy | None = None,
    on_connected: Callable[[], object] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serves ``roles`` with the coroutine function ``handler`` until ``stop`` is set (then
    returns None) or the task is cancelled, reconnecting as needed; raises the error that ended
    serving when retrying cannot help. The arguments are those of :class:`AsyncReviewer`, which
    this is ``await AsyncReviewer(...).serve()`` of.

        async def review(task: cc.ReviewTask) -> cc.ReviewVote:
            verdict = await my_model.judge(task.suggestion.diff)
            return cc.ReviewVote(verdict.vote, verdict.why, confidence=verdict.confidence)

        await aio.serve_reviews("council:50051", roles=["safety"], handler=review, token=token)
    """
    await AsyncReviewer(
        address,
        roles=roles,
        handler=handler,
        tls=tls,
        root_certificates=root_certificates,
        certificate_chain=certificate_chain,
        private_key=private_key,
        token=token,
        options=options,
        concurrency=concurrency,
        reconnect=reconnect,
        on_connected=on_connected,
        stop=stop,
    ).serve()


def _task_cancelling() -> bool:
    """Whether the current task is being cancelled (Python 3.11+; False before)."""
    task = asyncio.current_task()
    cancelling: Callable[[], int] | None = getattr(task, "cancelling", None)
    return cancelling is not None and cancelling() > 0


def _code(err: grpc.RpcError) -> grpc.StatusCode | None:
    code = getattr(err, "code", None)
    return code() if callable(code) else None


def _log_unexpected(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a reviewer task failed", exc_info=task.exception())
