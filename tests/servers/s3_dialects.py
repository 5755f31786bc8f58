"""Moto's S3 backend speaking the S3 dialects of other clouds (OSS, COS, BOS, TOS), on loopback.

Those services are S3 underneath with their own header prefix (`x-oss-meta-*` for `x-amz-meta-*`)
and, for some, JSON where S3 answers XML. Each dialect is one module `dialect_<vendor>.py` beside
this file that exports `DIALECT`, a `Dialect` subclass; this module is the WSGI core they share.
Storage semantics all come from moto: a dialect only re-encodes the wire format, and it is a
test fixture of ours, not a real vendor server, so each translated field has a test of its own.

Shared by every dialect: moto's request id is echoed as `x-<vendor>-request-id`, and a body that
contradicts its Content-MD5 is refused with S3's BadDigest error (which each dialect re-encodes),
as every one of these services does and moto does not.

Run as `python s3_dialects.py PORT`; tests start it with `start_dialect_server()`, which stops it
by PID. Plain `moto_server` cannot be used: it guesses the service from the signature scheme,
and vendor schemes (`OSS4-HMAC-SHA256`) make it fail with 500.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import io
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

Headers = list[tuple[str, str]]
StartResponse = Callable[[str, Headers], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

HERE = Path(__file__).resolve().parent
AMZ = "x-amz-"
TRANSLATED_HEADERS = ("meta-", "copy-source", "metadata-directive", "server-side-encryption", "storage-class")
"""Request headers a vendor spells `x-<vendor>-...` where S3 spells `x-amz-...`."""
MOTO_REQUEST_IDS = ("x-amzn-requestid", "x-amz-request-id")
BAD_DIGEST = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>BadDigest</Code>'
    b"<Message>The Content-MD5 you specified did not match what was received.</Message>"
    b"<RequestId>objfs-dialect-bad-digest</RequestId></Error>"
)


class Dialect:
    """One vendor's S3 dialect. The base class translates the header prefix both ways;
    subclasses add what else differs (JSON bodies, error formats, copy-source forms)."""

    vendor: str = ""
    """The header prefix word: `oss` for `x-oss-meta-*`."""

    @property
    def prefix(self) -> str:
        return f"x-{self.vendor}-"

    def claims(self, environ: dict[str, Any]) -> bool:
        """Whether a request is in this dialect; by default, any `x-<vendor>-` header says so."""
        marker = "HTTP_" + self.prefix.upper().replace("-", "_")
        return any(name.startswith(marker) for name in environ)

    def translate_request(self, environ: dict[str, Any]) -> None:
        """Rename `x-<vendor>-meta-*`, copy source and the like to their `x-amz-` names, in place."""
        vendor = "HTTP_" + self.prefix.upper().replace("-", "_")
        for name in [name for name in environ if name.startswith(vendor)]:
            rest = name[len(vendor) :]
            if rest.lower().replace("_", "-").startswith(TRANSLATED_HEADERS):
                environ["HTTP_X_AMZ_" + rest] = self.translate_header_value(rest, environ.pop(name))

    def translate_header_value(self, name: str, value: str) -> str:
        """A hook for values that differ too, such as a copy source given as a host name."""
        return value

    def translate_headers(self, headers: Headers) -> Headers:
        """Echo `x-amz-*` answers back under the vendor's prefix, keeping the originals too, and
        moto's request id as the vendor's `x-<vendor>-request-id`."""
        echoed = [
            (self.prefix + name[len(AMZ) :], value) for name, value in headers if name.lower().startswith(AMZ)
        ]
        request_id = next((value for name, value in headers if name.lower() in MOTO_REQUEST_IDS), None)
        ids = [] if request_id is None else [(self.prefix + "request-id", request_id)]
        return headers + echoed + ids

    def rewrites_body(self, environ: dict[str, Any], status: str, headers: Headers) -> bool:
        """Whether `translate_body` must see this answer's body; object bodies stream untouched."""
        return False

    def translate_body(
        self, environ: dict[str, Any], status: str, headers: Headers, body: bytes
    ) -> tuple[str, Headers, bytes]:
        return status, headers, body


def read_body(environ: dict[str, Any]) -> bytes:
    """The request's body, left in place to be read again by moto or a dialect."""
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    body = stream.read(int(length)) if length else stream.read()
    replace_body(environ, body)
    return body


def replace_body(environ: dict[str, Any], body: bytes) -> None:
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)


def json_content(headers: Headers) -> Headers:
    """The headers of an answer whose body a dialect turned from XML into JSON."""
    kept = [(name, value) for name, value in headers if name.lower() != "content-type"]
    return [*kept, ("Content-Type", "application/json")]


def load_dialects() -> list[Dialect]:
    """Every `dialect_*.py` beside this file, so a new vendor is one new module."""
    sys.path.insert(0, str(HERE))
    return [importlib.import_module(path.stem).DIALECT for path in sorted(HERE.glob("dialect_*.py"))]


class DialectMiddleware:
    def __init__(self, app: WsgiApp, dialects: list[Dialect]) -> None:
        self.app = app
        self.dialects = dialects

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        dialect = next((d for d in self.dialects if d.claims(environ)), None)
        if dialect is None:
            return self.app(environ, start_response)
        if _digest_mismatch(environ):
            status = "400 Bad Request"
            raw_headers = [
                ("Content-Type", "application/xml"),
                ("x-amz-request-id", "objfs-dialect-bad-digest"),
            ]
            chunks: Iterable[bytes] = [BAD_DIGEST]
        else:
            dialect.translate_request(environ)
            status, raw_headers, chunks = _call(self.app, environ)
        headers = dialect.translate_headers(raw_headers)
        if not dialect.rewrites_body(environ, status, headers):
            start_response(status, headers)
            return chunks
        body = b"".join(chunks)
        status, headers, body = dialect.translate_body(environ, status, headers, body)
        headers = [(n, v) for n, v in headers if n.lower() != "content-length"]
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]


def _call(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, Headers, Iterable[bytes]]:
    answer: dict[str, Any] = {}

    def capture(status: str, headers: Headers, exc_info: Any = None) -> Callable[[bytes], None]:
        answer.update(status=status, headers=headers)
        return io.BytesIO().write

    chunks = app(environ, capture)
    return answer["status"], answer["headers"], chunks


def _digest_mismatch(environ: dict[str, Any]) -> bool:
    """Whether the body contradicts its Content-MD5: the vendors refuse it (moto does not look)."""
    md5 = environ.get("HTTP_CONTENT_MD5")
    if md5 is None or environ["REQUEST_METHOD"] not in ("PUT", "POST"):
        return False
    return md5 != base64.b64encode(hashlib.md5(read_body(environ)).digest()).decode()


def make_app() -> WsgiApp:
    from moto.moto_server.werkzeug_app import create_backend_app

    return DialectMiddleware(create_backend_app("s3"), load_dialects())


def serve(port: int) -> None:
    from werkzeug.serving import run_simple

    run_simple("127.0.0.1", port, make_app(), threaded=True)


@pytest.fixture(scope="session")
def dialect_endpoint() -> Iterator[str]:
    """One dialect server for the run; buckets of fresh names keep tests apart."""
    from servers.process import start_server

    server = start_server([sys.executable, str(Path(__file__)), "{port}"], "s3-dialects")
    try:
        yield server.endpoint
    finally:
        server.stop()


if __name__ == "__main__":
    sys.path[0] = str(HERE.parent)  # tests/, not servers/, whose moto.py would shadow moto itself
    serve(int(sys.argv[1]))
