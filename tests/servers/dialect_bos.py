"""Baidu BOS's dialect of S3 (x-bce-* headers, camelCase JSON bodies) over moto, for bce-python-sdk.

What BOS does differently on the wire, as the SDK speaks it:
- requests: `x-bce-*` headers (the core renames them), a lower-case metadata directive, its own
  storage class names, `maxKeys`/`marker` listing parameters (S3's v1 listing in moto pages
  neither prefixes nor markers correctly, so listings go to moto's v2 listing with `start-after`),
  a JSON part list to complete an upload, and user metadata
  given when an upload completes (S3 takes it when one starts);
- answers: camelCase JSON wherever S3 answers XML (listings, copies, multipart, errors), with
  unquoted etags and a `nextMarker` on every truncated listing.
BOS also validates Content-MD5, which moto ignores; it is checked here, since the backend's
integrity contract rests on it. Storage semantics are moto's.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qsl, urlencode

from servers.s3_dialects import Dialect, Headers, json_content, read_body, replace_body

MARKER = "objfs.bos.marker"
CLASSES = {"STANDARD": "STANDARD", "STANDARD_IA": "STANDARD_IA", "COLD": "GLACIER_IR", "ARCHIVE": "GLACIER"}
"""BOS storage classes and the S3 class moto keeps for each: ARCHIVE must be restored before a
read, as GLACIER must, so moto answers InvalidObjectState for it as BOS does."""
S3_CLASSES = {s3: bos for bos, s3 in CLASSES.items()}
LISTING_PARAMETERS = {
    "maxKeys": "max-keys",
    "marker": "start-after",
    "prefix": "prefix",
    "delimiter": "delimiter",
}
LISTS = {"Contents": "contents", "CommonPrefixes": "commonPrefixes", "Upload": "uploads"}
"""XML elements that repeat, and the JSON array each becomes."""
NUMBERS = frozenset({"Size", "MaxKeys"})
DROPPED = frozenset({"KeyCount", "ContinuationToken", "NextContinuationToken", "StartAfter", "EncodingType"})
"""ListObjectsV2 fields that BOS's (v1-like) listing does not have."""


class BosDialect(Dialect):
    vendor = "bce"

    def claims(self, environ: dict[str, Any]) -> bool:
        """The SDK signs with `bce-auth-v1/...`, in the Authorization header or a presigned URL's query."""
        signed = environ.get("HTTP_AUTHORIZATION", "") + " " + environ.get("QUERY_STRING", "")
        return signed.startswith("bce-auth-v1/") or "authorization=bce-auth-v1" in signed

    def translate_request(self, environ: dict[str, Any]) -> None:
        super().translate_request(environ)
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        method, bucket, key = _request_line(environ)
        if "authorization" in query:
            # a presigned URL: moto serves a private object only to a request it sees as signed
            environ["HTTP_AUTHORIZATION"] = query.pop("authorization")
            environ["QUERY_STRING"] = urlencode(query)
        if method == "GET" and not key and set(query) <= set(LISTING_PARAMETERS):
            environ[MARKER] = query.get("marker", "")
            renamed = {LISTING_PARAMETERS[name]: value for name, value in query.items()}
            environ["QUERY_STRING"] = urlencode({"list-type": "2", **renamed})
        elif method == "POST" and "uploadId" in query:
            _carry_metadata(environ, bucket, query["uploadId"])
            replace_body(environ, _complete_xml(read_body(environ)))

    def translate_header_value(self, name: str, value: str) -> str:
        if name == "METADATA_DIRECTIVE":
            return value.upper()
        if name == "STORAGE_CLASS":
            return CLASSES.get(value, value)
        return value

    def translate_headers(self, headers: Headers) -> Headers:
        headers = super().translate_headers(headers)
        storage = f"{self.prefix}storage-class"
        return [(n, S3_CLASSES.get(v, v) if n.lower() == storage else v) for n, v in headers]

    def rewrites_body(self, environ: dict[str, Any], status: str, headers: Headers) -> bool:
        """Every answer but object bytes, which stream untouched."""
        method, _, key = _request_line(environ)
        reads_object = method in ("GET", "HEAD") and key and "uploadId" not in environ.get("QUERY_STRING", "")
        return not status.startswith("2") or not reads_object

    def translate_body(
        self, environ: dict[str, Any], status: str, headers: Headers, body: bytes
    ) -> tuple[str, Headers, bytes]:
        if not body.lstrip().startswith(b"<"):
            return status, headers, body
        root = ET.fromstring(body)
        answer = _json(root)
        tag = _tag(root)
        if tag == "Error":
            answer = _error(answer, headers)
        elif tag == "ListBucketResult":
            answer = _listing(answer, environ.get(MARKER, ""))
        elif tag == "ListMultipartUploadsResult":
            answer.setdefault("uploads", [])
        return status, json_content(headers), json.dumps(answer).encode()


def _request_line(environ: dict[str, Any]) -> tuple[str, str, str]:
    """The method, bucket and key of a path-style request (an IP endpoint makes the SDK use paths)."""
    bucket, _, key = environ.get("PATH_INFO", "/").lstrip("/").partition("/")
    return environ["REQUEST_METHOD"], bucket, key


def _carry_metadata(environ: dict[str, Any], bucket: str, upload_id: str) -> None:
    """Give moto's pending upload the user metadata BOS takes when an upload completes.

    S3 (and so moto) only takes metadata when an upload starts; BOS only when it completes.
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    prefix = "HTTP_X_AMZ_META_"
    metadata = {
        "x-amz-meta-" + name[len(prefix) :].lower().replace("_", "-"): value
        for name, value in environ.items()
        if name.startswith(prefix)
    }
    upload = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets.get(bucket)
    pending = upload.multiparts.get(upload_id) if upload is not None else None
    if pending is not None and metadata:
        pending.metadata.update(metadata)


def _complete_xml(body: bytes) -> bytes:
    """BOS completes an upload with `{"parts": [{"partNumber": 1, "eTag": ...}]}`; S3 with XML."""
    root = ET.Element("CompleteMultipartUpload")
    for part in json.loads(body or b"{}").get("parts", []):
        element = ET.SubElement(root, "Part")
        ET.SubElement(element, "PartNumber").text = str(part["partNumber"])
        ET.SubElement(element, "ETag").text = part["eTag"]
    return ET.tostring(root)


def _tag(element: ET.Element) -> str:
    return element.tag.rpartition("}")[2]


def _name(tag: str) -> str:
    """S3's PascalCase element name as BOS's camelCase JSON key: `ETag` -> `eTag`, `ID` -> `id`."""
    return "id" if tag == "ID" else tag[0].lower() + tag[1:]


def _json(element: ET.Element) -> Any:
    children = list(element)
    if not children:
        return _value(_tag(element), element.text or "")
    result: dict[str, Any] = {}
    for child in children:
        tag = _tag(child)
        if tag in LISTS:
            result.setdefault(LISTS[tag], []).append(_json(child))
        elif tag not in DROPPED:
            result[_name(tag)] = _json(child)
    return result


def _value(tag: str, text: str) -> Any:
    if tag in NUMBERS:
        return int(text)
    if tag == "ETag":
        return text.strip('"')
    if tag == "StorageClass":
        return S3_CLASSES.get(text, text)
    return {"true": True, "false": False}.get(text, text)


def _listing(answer: dict[str, Any], marker: str) -> dict[str, Any]:
    """BOS names the marker asked for, and on a truncated page the last name it returned, which
    is what the next page's `marker` must be (moto's v2 pages keys and prefixes in one order)."""
    answer.setdefault("contents", [])
    answer.setdefault("commonPrefixes", [])
    answer["marker"] = marker
    if answer.get("isTruncated"):
        names = [item["key"] for item in answer["contents"]]
        names += [item["prefix"] for item in answer["commonPrefixes"]]
        answer["nextMarker"] = max(names)
    return answer


def _error(answer: dict[str, Any], headers: Headers) -> dict[str, Any]:
    """BOS errors are `{"code", "message", "requestId"}`; moto's XML spells the id either way."""
    request_id = answer.get("requestId") or answer.get("requestID")
    request_id = request_id or next((v for n, v in headers if n.lower() == "x-amz-request-id"), "")
    return {"code": answer.get("code", ""), "message": answer.get("message", ""), "requestId": request_id}


DIALECT = BosDialect()
