"""Volcengine TOS's dialect of S3 (x-tos-* headers, JSON bodies) over moto, for the `tos` SDK.

TOS differs from S3 on the wire in what its SDK sends (`x-tos-meta-*`, `x-tos-forbid-overwrite`,
`x-tos-if-match`, a JSON CompleteMultipartUpload body) and in what it expects back: JSON for every
answer with a body (listings, copies, multipart, errors) and the CRC64 of the bytes it moved
(`x-tos-hash-crc64ecma`), which the SDK checks by default. Object bodies stream through untouched
except a whole-object GET, whose CRC64 must be computed from it. TOS also validates Content-MD5;
the dialect core checks it for every vendor.

The SDK reaches the server as an HTTP proxy, so requests arrive in absolute form
(`PUT http://bucket.tos-cn-beijing.volces.com/key`) with the virtual host in Host: werkzeug splits
the target into PATH_INFO and moto takes the bucket from Host, so that needs no translation.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qs

import crcmod

from servers.s3_dialects import Dialect, Headers, json_content, read_body, replace_body

CRC64 = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, rev=True, xorOut=0xFFFFFFFFFFFFFFFF)
"""CRC-64/XZ (ECMA-182, reflected), which TOS reports as `x-tos-hash-crc64ecma`."""
CRC_HEADER = "x-tos-hash-crc64ecma"
CRC_KEY = "objfs.tos.crc64"
LISTS = {"Contents": "Contents", "CommonPrefixes": "CommonPrefixes", "Upload": "Uploads"}
"""XML elements that repeat, and the JSON array each becomes."""
STORAGE_CLASSES = {"ARCHIVE": "GLACIER"}
"""TOS's archive class under moto's name for one, so reading it needs a restore there too."""


class TosDialect(Dialect):
    vendor = "tos"

    def claims(self, environ: dict[str, Any]) -> bool:
        """The SDK signs with TOS4-HMAC-SHA256, in the Authorization header or a presigned query."""
        signed = environ.get("HTTP_AUTHORIZATION", "") + environ.get("QUERY_STRING", "")
        return "TOS4-HMAC-SHA256" in signed

    def translate_request(self, environ: dict[str, Any]) -> None:
        """TOS's write conditions are its own headers; S3's are the standard If-None-Match/If-Match."""
        if environ.pop("HTTP_X_TOS_FORBID_OVERWRITE", "").lower() == "true":
            environ["HTTP_IF_NONE_MATCH"] = "*"
        if "HTTP_X_TOS_IF_MATCH" in environ:
            environ["HTTP_IF_MATCH"] = environ.pop("HTTP_X_TOS_IF_MATCH")
        super().translate_request(environ)
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if environ["REQUEST_METHOD"] == "POST" and "uploadId" in query:
            replace_body(environ, _complete_xml(read_body(environ)))
        elif environ["REQUEST_METHOD"] == "PUT" and "HTTP_X_AMZ_COPY_SOURCE" not in environ:
            environ[CRC_KEY] = str(CRC64(read_body(environ)))  # the CRC64 TOS answers an upload with

    def translate_header_value(self, name: str, value: str) -> str:
        return STORAGE_CLASSES.get(value, value) if name == "STORAGE_CLASS" else value

    def translate_headers(self, headers: Headers) -> Headers:
        tos_classes = {amz: tos for tos, amz in STORAGE_CLASSES.items()}
        return [
            (name, tos_classes.get(value, value) if name == "x-tos-storage-class" else value)
            for name, value in super().translate_headers(headers)
        ]

    def rewrites_body(self, environ: dict[str, Any], status: str, headers: Headers) -> bool:
        """Everything but object bytes: those pass untouched, except whole-object GETs (for the CRC).

        HEAD answers have no body to rewrite, and rewriting one would reset its Content-Length.
        """
        if environ["REQUEST_METHOD"] == "HEAD":
            return False
        if _is_object_get(environ) and status.startswith("2"):
            return status.startswith("200")
        return True

    def translate_body(
        self, environ: dict[str, Any], status: str, headers: Headers, body: bytes
    ) -> tuple[str, Headers, bytes]:
        if _is_object_get(environ) and status.startswith("200"):
            return status, [*headers, (CRC_HEADER, str(CRC64(body)))], body
        if CRC_KEY in environ and status.startswith("200"):
            headers = [*headers, (CRC_HEADER, environ[CRC_KEY])]
        if body.lstrip().startswith(b"<"):
            return status, json_content(headers), json.dumps(_json(ET.fromstring(body))).encode()
        return status, headers, body


def _is_object_get(environ: dict[str, Any]) -> bool:
    return environ["REQUEST_METHOD"] == "GET" and environ.get("PATH_INFO", "/") not in ("", "/")


def _complete_xml(body: bytes) -> bytes:
    """TOS completes an upload with `{"Parts": [{"PartNumber": 1, "ETag": ...}]}`; S3 with XML."""
    root = ET.Element("CompleteMultipartUpload")
    for part in json.loads(body or b"{}").get("Parts", []):
        element = ET.SubElement(root, "Part")
        ET.SubElement(element, "PartNumber").text = str(part["PartNumber"])
        ET.SubElement(element, "ETag").text = part["ETag"]
    return ET.tostring(root)


def _json(element: ET.Element) -> Any:
    children = list(element)
    if not children:
        text = element.text or ""
        return {"true": True, "false": False}.get(text, text)
    result: dict[str, Any] = {}
    for child in children:
        tag = child.tag.rpartition("}")[2]
        if tag in LISTS:
            result.setdefault(LISTS[tag], []).append(_json(child))
        else:
            result[tag] = _json(child)
    return result


DIALECT = TosDialect()
