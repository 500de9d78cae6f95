"""Serving a reviewer role, blocking flavour: :class:`Reviewer` and :func:`serve_reviews`.

A reviewer agent is a handler (task -> vote) plus one call: it connects to ``ServeReviews``,
handles the tasks in a bounded thread pool, answers each with the handler's vote, and reconnects
with backoff until it is stopped or meets an error that retrying cannot fix. The asyncio flavour
is :mod:`council_client.aio` (``AsyncReviewer``, ``serve_reviews``).
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

import grpc

from ._client import CouncilClient, connect
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
from .errors import CouncilError, from_rpc_error

__all__ = ["Reviewer", "serve_reviews"]

Handler = Callable[[ReviewTask], ReviewVote | None]


class _Outbox:
    """What one stream sends, in order: the hello, then votes, until it is closed (which
    half-closes the stream). gRPC's own thread consumes it as the call's request iterator."""

    def __init__(self, hello: pb.ServeReviewsRequest) -> None:
        self._queue: queue.SimpleQueue[pb.ServeReviewsRequest | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._open = True
        self._queue.put(hello)

    @property
    def open(self) -> bool:
        return self._open

    def send(self, request: pb.ServeReviewsRequest) -> bool:
        """Queues ``request``; False if the stream has ended (the request is dropped)."""
        with self._lock:
            if not self._open:
                return False
            self._queue.put(request)
            return True

    def close(self) -> None:
        with self._lock:
            if self._open:
                self._open = False
                self._queue.put(None)

    def __iter__(self) -> Iterator[pb.ServeReviewsRequest]:
        while (request := self._queue.get()) is not None:
            yield request


class Reviewer:
    """A reviewer agent serving ``roles`` with ``handler``, blocking flavour.

    ``serve()`` serves in the calling thread until ``stop()`` (from another thread, a signal
    handler, a handler) or ``stop`` (a ``threading.Event``) is set, then returns None; it raises
    the :class:`~council_client.errors.CouncilError` that ended serving when retrying cannot help
    (``Unauthenticated``, ``PermissionDenied``, ``FailedPrecondition`` for a role that is not
    external in the policy in force, ``InvalidArgument``, or code UNIMPLEMENTED). Every other end
    of the stream (the server went away, the connection was lost, ``UNAVAILABLE`` from a replica
    that shuts down) is followed by a reconnect, after a backoff (``reconnect``, a
    :class:`ReconnectPolicy`). ``start()`` serves in a background thread instead (``wait()``
    then raises that error); ``with Reviewer(...) as r:`` starts, and stops at the end.

    ``handler(task)`` gets a :class:`ReviewTask` and returns a :class:`ReviewVote` (or None: no
    vote). Handlers run in a pool of ``concurrency`` threads (16 by default; more tasks wait their
    turn, and are skipped if their deadline passes while they wait), so they must be thread-safe.
    A handler that raises is logged (logger ``council_client.reviewer``) and sends no vote; a
    vote returned after the task's deadline is dropped: in both cases the role's failure policy
    votes at the deadline. Keep a handler within ``task.remaining()`` seconds: a thread cannot be
    interrupted, and a handler still running when serving stops finishes in the background, its
    vote dropped.

    ``wait_connected(timeout)`` returns True once the server has accepted the stream;
    ``connected`` says whether it is now; ``on_connected()`` is called (in the serving thread) each
    time a stream is accepted, the first and after each reconnect; ``connections`` counts them.
    The connection arguments are those of :func:`council_client.connect`; ``token`` is the bearer
    token of a principal with the role reviewer.
    """

    def __init__(
        self,
        address: str,
        *,
        roles: Iterable[ReviewerRoleLike],
        handler: Handler,
        tls: bool = False,
        root_certificates: bytes | None = None,
        certificate_chain: bytes | None = None,
        private_key: bytes | None = None,
        token: str | None = None,
        options: ChannelOptions = (),
        concurrency: int = DEFAULT_CONCURRENCY,
        reconnect: ReconnectPolicy | None = None,
        on_connected: Callable[[], object] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.roles = check_roles(roles)
        check_credentials(certificate_chain, private_key)
        self._concurrency = check_concurrency(concurrency)
        self._handler = handler
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
        self._stopping = threading.Event()
        self._state = threading.Condition()
        self._serving = False
        self._ended = False
        self._connected = False
        self._connections = 0
        self._error: CouncilError | None = None
        self._outbox: _Outbox | None = None
        self._call: grpc.Call | None = None
        self._grace: threading.Timer | None = None
        self._serving_thread: int | None = None

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

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Waits until the server has accepted a stream and returns True; False if ``timeout``
        (seconds) passed first or serving was stopped. Raises the error that ended serving."""
        with self._state:
            self._state.wait_for(lambda: self._connected or self._ended, timeout)
            if self._connected:
                return True
        if self._error is not None:
            raise self._error
        return False

    def wait(self, timeout: float | None = None) -> bool:
        """Waits until serving has ended and returns True (False if ``timeout`` passed first);
        raises the error that ended it, if one did."""
        with self._state:
            if not self._state.wait_for(lambda: self._ended, timeout):
                return False
        if self._error is not None:
            raise self._error
        return True

    # Control.

    def start(self) -> Reviewer:
        """Serves in a background (daemon) thread; returns self."""
        with self._state:
            self._claim()
        serving = threading.Thread(
            target=self._serve_in_background, name="council-reviewer", daemon=True
        )
        serving.start()
        return self

    def serve(self) -> None:
        """Serves in the calling thread until stopped (returns None) or a configuration error
        (raised)."""
        with self._state:
            self._claim()
        self._serve()

    def stop(self, timeout: float | None = None) -> bool:
        """Stops serving: half-closes the stream, so that the server lets go of it and gives any
        task still open to another reviewer (the call is cancelled if the server has not ended it
        within 5 s). Waits until serving has ended (at most ``timeout`` seconds) and returns
        whether it has; never raises the error that ended serving (``wait()`` does)."""
        self._stopping.set()
        with self._state:
            if not self._serving:
                self._ended = True
                self._state.notify_all()
                return True
            self._end_stream()
            if self._serving_thread == threading.get_ident():
                return False  # from on_connected or a signal handler: serving ends after it
            return self._state.wait_for(lambda: self._ended, timeout)

    def __enter__(self) -> Reviewer:
        if not self._serving:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if exc_type is None and self._error is not None:
            raise self._error

    # Serving.

    def _claim(self) -> None:
        if self._serving or self._ended:
            raise RuntimeError("a Reviewer serves once; make a new one to serve again")
        self._serving = True

    def _serve_in_background(self) -> None:
        try:
            self._serve()
        except CouncilError as err:
            log.error("serving reviews ended: %s", err)

    def _serve(self) -> None:
        self._serving_thread = threading.get_ident()
        if self._stop_event is not None:
            # Stops serving once the caller's event is set. If serving ends first, this thread waits
            # on, idle, until the event is set or the process ends.
            event = self._stop_event
            threading.Thread(
                target=lambda: (event.wait(), self.stop(timeout=0)),
                name="council-reviewer-stop",
                daemon=True,
            ).start()
        client = self._connect()
        pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="council-reviewer")
        try:
            self._loop(client, pool)
        except CouncilError as err:
            self._error = err
            raise
        finally:
            self._stopping.set()
            with self._state:
                self._ended = True
                self._connected = False
                if self._grace is not None:
                    self._grace.cancel()
                self._state.notify_all()
            # Tasks not started yet are dropped; handlers still running finish in the background.
            pool.shutdown(wait=False, cancel_futures=True)
            client.close()

    def _loop(self, client: CouncilClient, pool: ThreadPoolExecutor) -> None:
        backoff = Backoff(self._reconnect)
        while not self._stopping.is_set():
            error = self._stream(client, pool, backoff)
            if self._stopping.is_set():
                return
            if error is not None and gives_up(error):
                raise error
            if self._stopping.wait(backoff.next(error)):
                return

    def _stream(
        self, client: CouncilClient, pool: ThreadPoolExecutor, backoff: Backoff
    ) -> CouncilError | None:
        """One stream, from the hello to its end; the error it ended with (None: OK, or stopped)."""
        outbox = _Outbox(hello_request(self.roles))
        call = client.stub.ServeReviews(iter(outbox), metadata=client.metadata)
        with self._state:
            self._outbox, self._call = outbox, call
            if self._stopping.is_set():  # stop() ran before this stream was there to end
                self._end_stream()
        try:
            # Returns at the server's response headers (the hello was accepted), or once the call
            # has ended (refused: the error is raised by the iteration below).
            call.initial_metadata()
            if call.is_active():
                backoff.accepted()
                self._set_connected()
            for message in call:
                if message.HasField("task"):
                    task = task_from_message(message.task)
                    log.debug("%s: received", describe(task))
                    pool.submit(self._handle, outbox, task)
            return None
        except grpc.RpcError as err:
            if self._stopping.is_set() and err.code() is grpc.StatusCode.CANCELLED:
                return None
            return from_rpc_error(err)
        finally:
            outbox.close()
            with self._state:
                self._outbox = self._call = None
                self._connected = False
                self._state.notify_all()
            call.cancel()  # a no-op once the call has ended

    def _set_connected(self) -> None:
        with self._state:
            self._connected = True
            self._connections += 1
            self._state.notify_all()
        log.info("serving reviews for %s", role_names(self.roles))
        if self._on_connected is not None:
            try:
                self._on_connected()
            except Exception:
                log.exception("on_connected raised")

    def _end_stream(self) -> None:
        """Half-closes the current stream, and cancels it if the server has not ended it within
        the grace period. Called with ``_state`` held."""
        if self._outbox is None or self._call is None or self._grace is not None:
            return
        self._outbox.close()
        self._grace = threading.Timer(STOP_GRACE, self._call.cancel)
        self._grace.daemon = True
        self._grace.start()

    def _handle(self, outbox: _Outbox, task: ReviewTask) -> None:
        if not outbox.open:
            log.info("%s: its stream has ended; no vote is sent", describe(task))
            return
        if task.remaining() <= 0:
            log.warning(
                "%s: no handler was free before the deadline; no vote is sent", describe(task)
            )
            return
        try:
            answer = self._handler(task)
        except Exception:
            log.exception(
                "%s: the handler raised; no vote is sent (the role's failure policy votes)",
                describe(task),
            )
            return
        request = vote_request_for(task, answer)
        if request is not None and not outbox.send(request):
            log.info("%s: its stream has ended; the vote is not sent", describe(task))


def serve_reviews(
    address: str,
    *,
    roles: Iterable[ReviewerRoleLike],
    handler: Handler,
    tls: bool = False,
    root_certificates: bytes | None = None,
    certificate_chain: bytes | None = None,
    private_key: bytes | None = None,
    token: str | None = None,
    options: ChannelOptions = (),
    concurrency: int = DEFAULT_CONCURRENCY,
    reconnect: ReconnectPolicy | None = None,
    on_connected: Callable[[], object] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serves ``roles`` with ``handler`` until ``stop`` is set (then returns None), reconnecting
    as needed; raises the error that ended serving when retrying cannot help. The arguments are
    those of :class:`Reviewer`, which this is ``Reviewer(...).serve()`` of.

        def review(task: cc.ReviewTask) -> cc.ReviewVote:
            if "BEGIN PRIVATE KEY" in task.suggestion.diff:
                return cc.ReviewVote("reject", "a key in the diff", veto="credential_in_diff")
            return cc.ReviewVote("approve", "no credential in the diff", confidence=0.9)

        cc.serve_reviews("council:50051", roles=["safety"], handler=review, token=token)
    """
    Reviewer(
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
