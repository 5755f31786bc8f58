"""Pieces the backend suites share: a backend opened from settings, a port nothing listens on, and
a loopback HTTP server that answers every request with one canned answer.

The canned server gives the answers the fake services never give (a bad digest, rejected
credentials: they check no vendor's signature), still through each SDK's real HTTP path.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar

from objfs.storage import registry
from objfs.storage.base import Storage

S = TypeVar("S", bound=Storage)


def open_storage(settings: Mapping[str, str], kind: type[S], **extra: str) -> S:
    """The backend `settings` (with `extra` over them) configure, checked to be a `kind`."""
    storage = registry.open_location(None, base={**settings, **extra}).storage
    assert isinstance(storage, kind)
    return storage


def opened(settings: Mapping[str, str], kind: type[S], **extra: str) -> Iterator[S]:
    """`open_storage` for a fixture (`yield from`): the backend is closed after the test."""
    storage = open_storage(settings, kind, **extra)
    yield storage
    storage.close()


def closed_port() -> int:
    """A loopback port nothing listens on, so a connection to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class CannedServer(ThreadingHTTPServer):
    """Answers every request with `status`, the fixed headers and `body` (none to a HEAD)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__(("127.0.0.1", 0), _CannedHandler)
        self.reply_headers = dict(headers)
        self.status = 500
        self.body = b""

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def answer(self, status: int, body: bytes = b"") -> None:
        """What every request from now on is answered with."""
        self.status, self.body = status, body


class _CannedHandler(BaseHTTPRequestHandler):
    server: CannedServer

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(self.server.status)
        for name, value in self.server.reply_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(self.server.body)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _answer  # noqa: N815 - http.server's names

    def log_message(self, *args: object) -> None:
        """Quiet: pytest shows what a test prints."""


@contextlib.contextmanager
def canned_server(headers: Mapping[str, str]) -> Iterator[CannedServer]:
    """A running `CannedServer` sending `headers` (a request id) with every answer."""
    server = CannedServer(headers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
