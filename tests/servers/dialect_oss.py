"""Aliyun OSS's dialect of S3, as the oss2 SDK speaks it, in front of moto.

What differs from S3 on the wire, and only what oss2 or objfs's OSS backend meets:
- requests are signed `OSS ...` (v1) or `OSS4-HMAC-SHA256 ...` (v4) and use `x-oss-*` headers;
- `x-oss-forbid-overwrite: true` is OSS's put-if-absent, refused with 409 FileAlreadyExists;
- SSE-KMS is spelled `KMS` with `x-oss-server-side-encryption-key-id`, storage classes in OSS's words;
- a v4 presigned URL carries `x-oss-signature` where S3's carries `X-Amz-Signature`;
- oss2 sends an empty `continuation-token=` on a first ListObjectsV2 page, which OSS ignores;
- answers carry `x-oss-request-id`, and XML without S3's namespace: oss2 looks elements up by bare
  name, wants `<Type>` in every listed object and the next markers in every multipart listing.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

from servers.s3_dialects import Dialect, Headers

STORAGE_CLASSES = {
    "Standard": "STANDARD",
    "IA": "STANDARD_IA",
    "Archive": "GLACIER",
    "ColdArchive": "DEEP_ARCHIVE",
}
FORBID_OVERWRITE = "HTTP_X_OSS_FORBID_OVERWRITE"
FORBIDDEN = "oss.forbid_overwrite"
"""Marks a request that asked for put-if-absent, so its 412 can be answered as OSS answers it."""
FILE_EXISTS = (
    b"<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>FileAlreadyExists</Code>"
    b"<Message>The object you specified already exists and can not be overwritten.</Message></Error>"
)
SIGNATURES = {"x-oss-signature": "X-Amz-Signature"}
"""A v4 presigned URL's signature, under the name by which moto knows a presigned request."""
PRESIGNED = ("OSSAccessKeyId=", "x-oss-signature=")
_XMLNS = re.compile(rb'\sxmlns="[^"]*"')
_MARKERS = (b"NextKeyMarker", b"NextUploadIdMarker")


class OssDialect(Dialect):
    """Claims requests signed by oss2 (header or presigned query) or carrying `x-oss-*` headers."""

    vendor = "oss"

    def claims(self, environ: dict[str, Any]) -> bool:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        presigned = any(name in environ.get("QUERY_STRING", "") for name in PRESIGNED)
        return auth.startswith(("OSS ", "OSS4-HMAC-SHA256 ")) or presigned or super().claims(environ)

    def translate_request(self, environ: dict[str, Any]) -> None:
        if environ.pop(FORBID_OVERWRITE, "").lower() == "true":
            environ["HTTP_IF_NONE_MATCH"] = "*"
            environ[FORBIDDEN] = True
        kms_key = environ.pop("HTTP_X_OSS_SERVER_SIDE_ENCRYPTION_KEY_ID", None)
        if kms_key is not None:
            environ["HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION_AWS_KMS_KEY_ID"] = kms_key
        super().translate_request(environ)
        query = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        kept = [(SIGNATURES.get(k, k), v) for k, v in query if (k, v) != ("continuation-token", "")]
        if kept != query:
            environ["QUERY_STRING"] = urlencode(kept)

    def translate_header_value(self, name: str, value: str) -> str:
        if name == "SERVER_SIDE_ENCRYPTION" and value == "KMS":
            return "aws:kms"
        if name == "STORAGE_CLASS":
            return STORAGE_CLASSES.get(value, value)
        return value

    def rewrites_body(self, environ: dict[str, Any], status: str, headers: Headers) -> bool:
        if environ.get(FORBIDDEN) and status.startswith("412"):
            return True
        is_xml = any(n.lower() == "content-type" and "xml" in v for n, v in headers)
        return is_xml and not _is_object_body(environ, status)

    def translate_body(
        self, environ: dict[str, Any], status: str, headers: Headers, body: bytes
    ) -> tuple[str, Headers, bytes]:
        if environ.get(FORBIDDEN) and status.startswith("412"):
            kept = [(n, v) for n, v in headers if n.lower() != "content-type"]
            return "409 Conflict", [*kept, ("Content-Type", "application/xml")], FILE_EXISTS
        body = _XMLNS.sub(b"", body, count=1).replace(b"</Contents>", b"<Type>Normal</Type></Contents>")
        if b"<ListMultipartUploadsResult>" in body:
            missing = b"".join(b"<%s></%s>" % (name, name) for name in _MARKERS if b"<%s>" % name not in body)
            body = body.replace(b"</ListMultipartUploadsResult>", missing + b"</ListMultipartUploadsResult>")
        return status, headers, body


def _is_object_body(environ: dict[str, Any], status: str) -> bool:
    """An object's own bytes (a GET of a key that succeeded), which pass untouched whatever their type."""
    key = environ.get("PATH_INFO", "").lstrip("/").partition("/")[2]
    return (
        environ["REQUEST_METHOD"] == "GET"
        and status.startswith("2")
        and bool(key)
        and ("uploadId=" not in environ.get("QUERY_STRING", ""))
    )


DIALECT = OssDialect()
