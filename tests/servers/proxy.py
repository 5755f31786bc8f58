"""A TCP proxy on loopback that a test can cut and restore, to stop a server without losing it.

moto keeps its buckets in memory, so stopping it would also erase what the test wants to
inspect afterwards. Cutting the proxy instead makes the server unreachable (every connection
reset) while its state survives for boto3 to check directly.
"""

from __future__ import annotations

import contextlib
import socket
import threading

CHUNK = 64 * 1024


class CuttableProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._cut = threading.Event()
        self._closed = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """From now on every connection, open or new, is reset."""
        self._cut.set()
        with self._lock:
            for sock in self._sockets:
                _reset(sock)

    def restore(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self._closed.set()
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:  # tracked before a byte flows, so a cut can never miss them
                if self._cut.is_set():
                    _reset(client)
                    _reset(upstream)
                    continue
                self._sockets.update((client, upstream))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        while not self._cut.is_set():
            try:
                data = source.recv(CHUNK)
                if not data:
                    break
                target.sendall(data)
            except OSError:
                break
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)
        with self._lock:
            self._sockets.discard(source)


def _reset(sock: socket.socket) -> None:
    """Drop a connection at once, as a dead server's host would.

    shutdown() first: a plain close() does nothing while a pump thread is blocked in recv()
    on the socket, and the client would wait for its read timeout instead of failing.
    """
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
