"""Tencent COS's dialect of S3, as cos-python-sdk-v5 speaks it, for moto behind `s3_dialects`.

What differs from S3 on the wire, and so what this module re-encodes (each has a test in
tests/contract/test_cos.py, through the SDK):
- the copy source is `<bucket>-<appid>.cos.<region>.myqcloud.com/<key>` and the metadata
  directive is `Copy`/`Replaced`;
- KMS encryption is `cos/kms` with its key in `x-cos-server-side-encryption-cos-kms-key-id`;
- a presigned URL signs in its query (`q-sign-algorithm=...`), which becomes the Authorization
  header moto needs to serve a private object;
- every answer carries `x-cos-request-id`, and an error body names its `Resource` and `RequestId`
  (the SDK discards an error body that lacks either, leaving only the HTTP status);
- the SDK lists with V1 markers only; moto's V1 pages objects but repeats every common prefix on
  each page, so a listing is served by moto's V2 (`start-after`) and answered in V1 form;
- `?uploads` listings are asked with `encoding-type=url`, which moto ignores, so keys are encoded.

The bucket comes from the Host header (`<bucket>-<appid>.cos.<region>.myqcloud.com`), which moto
reads as a virtual-hosted bucket, so the SDK reaches it through `CosConfig(IP=..., Port=...)`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from servers.s3_dialects import Dialect, Headers

SIGNATURE = "q-sign-algorithm="
S3_NAMESPACE = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
LISTING_PARAMETERS = frozenset({"prefix", "delimiter", "marker", "max-keys", "encoding-type"})
LISTED_MARKER = "objfs.cos.marker"
"""Where `translate_request` leaves the V1 marker of a listing it turned into V2."""
UPLOADS_ENCODED = "objfs.cos.uploads-encoded"
KMS_KEY_HEADER = ("server-side-encryption-cos-kms-key-id", "server-side-encryption-aws-kms-key-id")
KMS_VALUE = ("cos/kms", "aws:kms")
V2_ONLY = ("KeyCount", "StartAfter", "ContinuationToken", "NextContinuationToken")


class CosDialect(Dialect):
    vendor = "cos"

    def claims(self, environ: dict[str, Any]) -> bool:
        """COS signs with `q-sign-algorithm=...` (no scheme word) in the Authorization header, or
        in the query string of a presigned URL; either alone says COS."""
        signed = environ.get("HTTP_AUTHORIZATION", "").startswith(SIGNATURE)
        presigned = SIGNATURE in environ.get("QUERY_STRING", "")
        return signed or presigned or super().claims(environ)

    def translate_request(self, environ: dict[str, Any]) -> None:
        """The KMS key header is renamed here: the core renames only the prefix, not `cos-kms`."""
        kms_key = _environ_name(self.prefix + KMS_KEY_HEADER[0])
        if kms_key in environ:
            environ[_environ_name("x-amz-" + KMS_KEY_HEADER[1])] = environ.pop(kms_key)
        super().translate_request(environ)
        _presigned_to_header(environ)
        if environ["REQUEST_METHOD"] == "GET" and environ.get("PATH_INFO", "/") == "/":
            _translate_bucket_query(environ)

    def translate_header_value(self, name: str, value: str) -> str:
        if name == "COPY_SOURCE":
            host, _, key = value.partition("/")
            return f"/{host.split('.', 1)[0]}/{key}"
        if name == "METADATA_DIRECTIVE":
            return {"Copy": "COPY", "Replaced": "REPLACE"}.get(value, value)
        if name == "SERVER_SIDE_ENCRYPTION" and value == KMS_VALUE[0]:
            return KMS_VALUE[1]
        return value

    def translate_headers(self, headers: Headers) -> Headers:
        """Give KMS encryption back its COS spelling."""
        answer: Headers = []
        for name, value in super().translate_headers(headers):
            lowered = name.lower()
            kms = lowered == f"{self.prefix}server-side-encryption" and value == KMS_VALUE[1]
            renamed = self.prefix + KMS_KEY_HEADER[0] if lowered == self.prefix + KMS_KEY_HEADER[1] else name
            answer.append((renamed, KMS_VALUE[0] if kms else value))
        return answer

    def rewrites_body(self, environ: dict[str, Any], status: str, headers: Headers) -> bool:
        failed = int(status.split(maxsplit=1)[0]) >= 400 and environ["REQUEST_METHOD"] != "HEAD"
        return failed or LISTED_MARKER in environ or UPLOADS_ENCODED in environ

    def translate_body(
        self, environ: dict[str, Any], status: str, headers: Headers, body: bytes
    ) -> tuple[str, Headers, bytes]:
        if not body:
            return status, headers, body
        root = ET.fromstring(body.decode().replace(S3_NAMESPACE, ""))
        if root.tag == "Error":
            _cos_error(root, environ)
        elif root.tag == "ListBucketResult" and LISTED_MARKER in environ:
            _v1_listing(root, environ[LISTED_MARKER], _url_encoded(environ))
        elif root.tag == "ListMultipartUploadsResult" and UPLOADS_ENCODED in environ:
            for key in root.iter("Key"):
                key.text = quote(key.text or "")
        return status, headers, ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _environ_name(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


def _url_encoded(environ: dict[str, Any]) -> bool:
    return ("encoding-type", "url") in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)


def _presigned_to_header(environ: dict[str, Any]) -> None:
    """A presigned URL carries in its query the signature a request carries in Authorization; moto
    serves a private object only to a request with one of S3's two forms, so it gets the header."""
    query = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    signature = [(name, value) for name, value in query if name.startswith("q-")]
    if signature and "HTTP_AUTHORIZATION" not in environ:
        environ["HTTP_AUTHORIZATION"] = "&".join(f"{name}={value}" for name, value in signature)
        rest = [(name, value) for name, value in query if not name.startswith("q-")]
        environ["QUERY_STRING"] = urlencode(rest, quote_via=quote)


def _translate_bucket_query(environ: dict[str, Any]) -> None:
    """Serve a V1 object listing with moto's V2, and mark `?uploads` listings whose keys need encoding."""
    query = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    names = {name for name, _ in query}
    if "uploads" in names and _url_encoded(environ):
        environ[UPLOADS_ENCODED] = True
    if not names <= LISTING_PARAMETERS:
        return
    marker = dict(query).get("marker", "")
    v2 = [(name, value) for name, value in query if name != "marker"] + [("list-type", "2")]
    if marker:
        v2.append(("start-after", marker))
    environ["QUERY_STRING"] = urlencode(v2, quote_via=quote)
    environ[LISTED_MARKER] = marker


def _v1_listing(root: ET.Element, marker: str, encoded: bool) -> None:
    """V2's answer in V1's words: `Marker`, and `NextMarker` (the last name listed) when truncated."""
    for name in V2_ONLY:
        for element in root.findall(name):
            root.remove(element)
    ET.SubElement(root, "Marker").text = quote(marker) if encoded else marker
    if root.findtext("IsTruncated") == "true":
        keys = [item.findtext("Key") or "" for item in root.findall("Contents")]
        names = keys + [item.findtext("Prefix") or "" for item in root.findall("CommonPrefixes")]
        ET.SubElement(root, "NextMarker").text = max(names, key=unquote if encoded else str)


def _cos_error(root: ET.Element, environ: dict[str, Any]) -> None:
    """COS's error body: moto's Code and Message, plus the Resource and RequestId the SDK requires."""
    request_id = root.findtext("RequestId") or root.findtext("RequestID") or ""
    for element in list(root):
        if element.tag not in ("Code", "Message"):
            root.remove(element)
    ET.SubElement(root, "Resource").text = environ.get("HTTP_HOST", "") + environ.get("PATH_INFO", "/")
    ET.SubElement(root, "RequestId").text = request_id
    ET.SubElement(root, "TraceId").text = request_id


DIALECT = CosDialect()
