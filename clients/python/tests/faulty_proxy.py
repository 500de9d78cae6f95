"""A TCP proxy on 127.0.0.1 in front of the live server, for real network faults in tests.

It forwards bytes unchanged. With ``cut_after_data_frames=n`` it reads the server-to-client byte
stream of its *first* connection as HTTP/2 frames and, right after forwarding the n-th DATA frame
(one gRPC message, as the server writes them), closes both sides: the client sees the connection
drop in the middle of a stream, as when a server or a load balancer dies. With ``lose_reply=True``
the n-th DATA frame is dropped instead of forwarded: the server has handled the call and sent its
reply, which never reaches the client (a unary reply lost mid-flight). Later connections pass
through untouched. ``cut()`` closes every connection open at that moment.

With ``hold_replies_for=s``, on *every* connection, the server's frames of calls (HTTP/2 streams
other than 0) are dropped, while those of the connection itself (settings, pings) pass, and the
connection is closed ``s`` seconds after the first dropped frame: each call waits ``s`` seconds
for an answer that never comes, then fails UNAVAILABLE, as behind a server that hangs and then
dies. Every attempt of a retried call costs ``s`` seconds, which is what an overall deadline
across retries is tested with.
"""

from __future__ import annotations

import socket
import threading

_FRAME_HEADER = 9
_DATA = 0x0


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (at the time of the call)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise ConnectionError("closed")
        chunks += chunk
    return bytes(chunks)


class FaultyProxy:
    def __init__(
        self,
        target: str,
        *,
        port: int = 0,
        cut_after_data_frames: int | None = None,
        lose_reply: bool = False,
        hold_replies_for: float | None = None,
    ) -> None:
        host, _, target_port = target.rpartition(":")
        self._target = (host.strip("[]"), int(target_port))
        self._cut_after = cut_after_data_frames
        self._lose_reply = lose_reply
        self._hold_for = hold_replies_for
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self.port = int(self._listener.getsockname()[1])
        self.address = f"127.0.0.1:{self.port}"
        self.connections = 0
        self.cuts = 0
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> FaultyProxy:
        self._listener.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def close(self) -> None:
        self._closed = True
        with self._lock:
            sockets = [self._listener, *self._sockets]
        for s in sockets:
            _close(s)

    def cut(self) -> None:
        """Closes every connection open now, both sides (as when a load balancer or the network
        drops them); the proxy keeps accepting new ones."""
        with self._lock:
            sockets = list(self._sockets)
            self._sockets.clear()
            self.cuts += 1
        for s in sockets:
            _close(s)

    def __enter__(self) -> FaultyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self._target, timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self.connections += 1
                first = self.connections == 1
                self._sockets += [client, server]
            cut = self._cut_after if first else None
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()
            if self._hold_for is not None:
                threading.Thread(
                    target=self._pipe_holding, args=(server, client, self._hold_for), daemon=True
                ).start()
                continue
            threading.Thread(
                target=self._pipe_frames if cut else self._pipe,
                args=(server, client, cut) if cut else (server, client),
                daemon=True,
            ).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)

    def _pipe_frames(self, src: socket.socket, dst: socket.socket, cut_after: int) -> None:
        data_frames = 0
        try:
            while True:
                header = _read_exactly(src, _FRAME_HEADER)
                length = int.from_bytes(header[:3], "big")
                frame_type = header[3]
                stream_id = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
                frame = header + _read_exactly(src, length)
                cut = False
                if frame_type == _DATA and stream_id != 0 and length > 0:
                    data_frames += 1
                    cut = data_frames >= cut_after
                if not (cut and self._lose_reply):
                    dst.sendall(frame)
                if cut:
                    with self._lock:
                        self.cuts += 1
                    return
        except (OSError, ConnectionError):
            pass
        finally:
            _close(src)
            _close(dst)


    def _pipe_holding(self, src: socket.socket, dst: socket.socket, hold_for: float) -> None:
        timer: threading.Timer | None = None

        def cut() -> None:
            with self._lock:
                self.cuts += 1
            _close(src)
            _close(dst)

        try:
            while True:
                header = _read_exactly(src, _FRAME_HEADER)
                length = int.from_bytes(header[:3], "big")
                stream_id = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
                frame = header + _read_exactly(src, length)
                if stream_id == 0:
                    dst.sendall(frame)
                elif timer is None:
                    timer = threading.Timer(hold_for, cut)
                    timer.daemon = True
                    timer.start()
        except (OSError, ConnectionError):
            pass
        finally:
            if timer is None:
                _close(src)
                _close(dst)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
