"""Huawei Cloud OBS through Huawei's own SDK (esdk-obs-python, module `obs`).

OBS speaks two wire dialects, and the SDK picks one per request:
- `obs`, the native one (`x-obs-*` headers), negotiated per bucket by an unsigned HEAD `?apiversion`
  when the endpoint is a host name and no signature is configured;
- `v2`/`v4`, the AWS-compatible one (`x-amz-*` headers, S3 signatures).
An IP endpoint makes the SDK use path-style URLs, and path-style makes it sign `v2` whatever was asked.
The test suite runs on a loopback moto server, so it covers the AWS-compatible dialect only (`v2`, and `v4`
with region us-east-1). The native `obs` dialect cannot be reached on loopback: it needs virtual-host DNS
names, and the SDK's proxy option tunnels with CONNECT, which moto refuses. That path is untested here.

Settings: the seed's HUAWEI_OBS_BUCKET_NAME, HUAWEI_OBS_ACCESS_KEY, HUAWEI_OBS_SECRET_KEY and
HUAWEI_OBS_SERVER (the endpoint URL), plus two added here: HUAWEI_OBS_SIGNATURE (`obs`, `v2` or `v4`;
unset lets the SDK negotiate) and HUAWEI_OBS_REGION (only `v4` signs with it; the SDK's placeholder
otherwise). Without keys, requests go unsigned, which only a public bucket accepts.

Why the code looks as it does:
- The SDK returns failures as results (`status`, `errorCode`, `requestId`) instead of raising, and raises
  plain exceptions when nothing answers; `_call` turns both into the typed errors, in one place.
- It folds `x-amz-meta-*` and every other `x-amz-*` header into one list with the prefixes cut off, so
  metadata named `request-id` could not be told from the service's header; `_ObsClient` keeps the
  metadata apart.
- OBS has no conditional PUT, so `if_match`/`if_none_match` are checked with a stat first
  (`conditional_write=False`).
- The SDK verifies no certificate by default and never checks host names; TLS is verified here against
  STORAGE_CA_BUNDLE or the system's authorities, with host names checked.
"""

from __future__ import annotations

import calendar
import contextlib
import http.client
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from obs import (
    CompleteMultipartUploadRequest,
    CompletePart,
    CopyObjectHeader,
    GetObjectHeader,
    ListMultipartUploadsRequest,
    ObsClient,
    PutObjectHeader,
    SseCHeader,
    SseKmsHeader,
)

from .base import (
    STREAM_CHUNK,
    BadConfiguration,
    Capabilities,
    InvalidKey,
    ListPage,
    MultipartUpload,
    NotFound,
    ObjectInfo,
    Payload,
    PermissionDenied,
    Storage,
    StorageError,
    Unavailable,
    UploadedPart,
    one_line,
    payload_size,
    socket_reason,
)
from .s3_family import AWS_REJECTED_CREDENTIALS, S3_ERRORS_BY_CODE, S3FamilyStorage, byte_range, server_time
from .settings import CA_BUNDLE, PROXY, SSE, SSE_KMS_KEY_ID, STORAGE_CLASS, SettingNames, Settings

SIGNATURE = "HUAWEI_OBS_SIGNATURE"
SIGNATURES = ("obs", "v2", "v4")
STORAGE_CLASSES = (
    "STANDARD",
    "WARM",
    "COLD",
    "DEEP_ARCHIVE",
    "INTELLIGENT_TIERING",
    "STANDARD_IA",
    "GLACIER",
)
"""What the SDK sends: OBS's names, and S3's, which it translates (WARM <-> STANDARD_IA, COLD <-> GLACIER)."""
TIMEOUT = 60
"""Seconds; the SDK has one socket timeout for connecting and for each read."""
CHECK_TIMEOUT = 4
"""Seconds `check()` waits, so a dead endpoint is reported within 5 s."""
METADATA_ENTRY = "objfs user metadata"
"""Where `_ObsClient` files user metadata among the response headers: no header name has a space."""
META_PREFIXES = ("x-amz-meta-", "x-obs-meta-")
SDK_LOCAL_TIME = "%Y/%m/%d %H:%M:%S"
AFTER_EVERYTHING = "\U0010ffff"
"""Appended to a sub-prefix used as a listing marker, so the next page starts after every key under it."""

_ERRORS_BY_CODE: dict[str, type[StorageError]] = {
    **S3_ERRORS_BY_CODE,
    "AllAccessDisabled": PermissionDenied,
    "ExpiredToken": PermissionDenied,
    "InvalidToken": PermissionDenied,
    "KeyTooLongError": InvalidKey,
    # throttling, some of which arrives as 4xx: transient, so retried
    "SlowDown": Unavailable,
    "ServiceUnavailable": Unavailable,
    "TooManyRequests": Unavailable,
    "Throttling": Unavailable,
}


class _ObsClient(ObsClient):
    """The SDK's client, with the user metadata of every answer kept apart from the service's headers.

    The SDK renames `x-amz-meta-mode` to `mode` but also `x-amz-request-id` to `request-id`, in the same
    list; the extra entry holds the metadata alone, decoded as the SDK decodes it.
    """

    def _rename_response_headers(self, headers: dict[str, str]) -> list[tuple[str, Any]]:
        renamed = super()._rename_response_headers(headers)
        metadata = {
            unquote(name[len(prefix) :]): unquote(value)
            for name, value in headers.items()
            for prefix in META_PREFIXES
            if name.startswith(prefix)
        }
        renamed.append((METADATA_ENTRY, metadata))
        return renamed


@dataclass(frozen=True)
class ObsConnection:
    """How to reach and sign for OBS, and what every new object gets; secrets stay out of `repr`."""

    server: str
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    signature: str | None = None
    region: str | None = None
    ca_bundle: str | None = None
    proxy: str | None = field(default=None, repr=False)  # may carry a password
    sse: str | None = None
    sse_kms_key_id: str | None = None
    sse_c_key: bytes | None = field(default=None, repr=False)
    storage_class: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ObsConnection:
        access, secret = settings.get("HUAWEI_OBS_ACCESS_KEY"), settings.get("HUAWEI_OBS_SECRET_KEY")
        if (access is None) != (secret is None):
            raise BadConfiguration("HUAWEI_OBS_ACCESS_KEY and HUAWEI_OBS_SECRET_KEY must be set together")
        sse = settings.sse()
        if sse == "sse-s3":
            raise BadConfiguration(
                f"{SSE}=sse-s3 is not supported by huawei-obs: its SDK sends only SSE-KMS and SSE-C "
                "(use sse-kms, or the bucket's default encryption)"
            )
        return cls(
            server=settings.require(
                "HUAWEI_OBS_SERVER", "the endpoint, e.g. https://obs.cn-north-4.myhuaweicloud.com"
            ),
            access_key=access,
            secret_key=secret,
            signature=settings.choice(SIGNATURE, SIGNATURES, "obs") if settings.get(SIGNATURE) else None,
            region=settings.get("HUAWEI_OBS_REGION"),
            ca_bundle=_ca_bundle(settings),
            proxy=settings.get(PROXY),
            sse=sse,
            sse_kms_key_id=settings.get(SSE_KMS_KEY_ID),
            sse_c_key=settings.sse_c_key(),
            storage_class=_storage_class(settings),
        )

    def client(self, timeout: float) -> ObsClient:
        """One attempt per request (objfs.storage.retrying retries every backend the same way)."""
        options: dict[str, Any] = {
            "access_key_id": self.access_key or "",
            "secret_access_key": self.secret_key or "",
            "server": self.server,
            "max_retry_count": 0,
            "timeout": timeout,
            "ssl_verify": self.ca_bundle or True,
            **_proxy_options(self.proxy),
        }
        if self.signature is not None:  # asked for: no negotiation may override it
            options.update(signature=self.signature, is_signature_negotiation=False)
        if self.region is not None:
            options["region"] = self.region
        client = _ObsClient(**options)
        if client.context is not None:  # https: the SDK trusts nothing by default and checks no host name
            if self.ca_bundle is None:
                client.context.load_default_certs()
            client.context.check_hostname = True
        return client

    def sse_header(self) -> SseKmsHeader | SseCHeader | None:
        """Encryption of new objects (put, copy target, multipart start)."""
        if self.sse == "sse-kms":
            return SseKmsHeader(encryption="kms", key=self.sse_kms_key_id)
        return self.sse_c_header()

    def sse_c_header(self) -> SseCHeader | None:
        """With SSE-C every request that touches the bytes must present the key again."""
        if self.sse_c_key is None:
            return None
        return SseCHeader(encryption="AES256", key=self.sse_c_key)


def _ca_bundle(settings: Settings) -> str | None:
    """Checked here: the SDK silently skips a CA file it cannot find, and then every handshake fails."""
    path = settings.get(CA_BUNDLE)
    if path is not None and not os.path.isfile(path):
        raise BadConfiguration(f"{CA_BUNDLE} is not a file")
    return path


def _storage_class(settings: Settings) -> str | None:
    """Checked here: the SDK silently drops a storage class it does not know."""
    name = settings.get(STORAGE_CLASS)
    if name is None:
        return None
    if name.upper() not in STORAGE_CLASSES:
        raise BadConfiguration(f"{STORAGE_CLASS} must be one of {', '.join(STORAGE_CLASSES)} for huawei-obs")
    return name.upper()


def _proxy_options(proxy: str | None) -> dict[str, Any]:
    """The SDK reaches the service through an HTTP proxy by CONNECT, for http and https endpoints alike."""
    if proxy is None:
        return {}
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    try:
        port = parts.port or 80
    except ValueError:
        port = 0
    if parts.scheme != "http" or not parts.hostname or not port:
        raise BadConfiguration(f"{PROXY} must be an http://host:port proxy URL for huawei-obs")
    return {
        "proxy_host": parts.hostname,
        "proxy_port": port,
        "proxy_username": unquote(parts.username) if parts.username else None,
        "proxy_password": unquote(parts.password) if parts.password else None,
    }


class ObsStorage(S3FamilyStorage):
    """One bucket; every method is one OBS request (two for copy and complete), except a copy of a
    source over `copy_limit`, which takes one request per part."""

    scheme = "obs"
    names = SettingNames(
        bucket="HUAWEI_OBS_BUCKET_NAME", endpoint="HUAWEI_OBS_SERVER", region="HUAWEI_OBS_REGION"
    )
    capabilities = Capabilities(
        copy=True,
        multipart=True,
        conditional_write=False,
        metadata_in_listing=False,
        min_part_size=5 * 1024 * 1024,  # OBS takes 100 KB; S3-compatible servers (and moto) want 5 MiB
        max_part_count=10_000,
        max_metadata_bytes=2048,  # OBS allows 8 KB; 2 KB keeps objects readable through S3 tools
        etag_is_md5=True,
    )
    errors_by_code = _ERRORS_BY_CODE
    rejected_credentials = AWS_REJECTED_CREDENTIALS
    archived = "is archived (Cold/Deep Archive)"

    def __init__(self, bucket: str, connection: ObsConnection) -> None:
        self.bucket = bucket
        self._connection = connection
        self._endpoint = connection.server
        try:
            self._client = connection.client(TIMEOUT)
        except Exception as exc:  # the SDK raises bare exceptions for a malformed server
            raise BadConfiguration(f"cannot configure {self.describe()}: {one_line(exc)}") from exc
        self._sse = connection.sse_header()
        self._sse_c = connection.sse_c_header()

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        bucket = settings.require("HUAWEI_OBS_BUCKET_NAME", "the bucket: obs://bucket/prefix")
        return cls(bucket, ObsConnection.from_settings(settings))

    def check(self) -> None:
        """List at most one key with a client that gives up after CHECK_TIMEOUT: a listing answers
        with an error code, which tells a missing bucket from rejected credentials."""
        probe = self._connection.client(CHECK_TIMEOUT)
        try:
            self._call(None, probe.listObjects, self.bucket, max_keys=1)
        finally:
            probe.close()

    def stat(self, key: str) -> ObjectInfo:
        response = self._call(key, self._client.getObjectMetadata, self.bucket, key, sseHeader=self._sse_c)
        head = response.body
        return ObjectInfo(
            key,
            int(head.contentLength or 0),
            _etag(head.etag),
            server_time(head.lastModified),
            head.contentType,
            _metadata(response),
        )

    def read(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        if length == 0:
            self.stat(key)  # no empty range exists, but a missing key must still be NotFound
            return b""
        response = self._get(key, offset, length, in_memory=True)
        return b"" if response is None else response.body.buffer or b""

    def read_stream(self, key: str, offset: int = 0) -> Iterator[bytes]:
        response = self._get(key, offset, None, in_memory=False)
        if response is None:
            return
        body = response.body.response
        try:
            with self._failures(key):
                yield from iter(lambda: body.read(STREAM_CHUNK), b"")
        finally:
            body.close()

    def write(
        self,
        key: str,
        data: Payload,
        *,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
        md5: str | None = None,
    ) -> ObjectInfo:
        self.check_conditions(key, if_match, if_none_match)
        size = payload_size(data)
        headers = PutObjectHeader(
            md5=md5,
            contentType=content_type,
            contentLength=size,
            sseHeader=self._sse,
            storageClass=self._connection.storage_class,
        )
        content = _sendable(data)
        response = self._call(
            key,
            self._client.putContent,
            self.bucket,
            key,
            content,
            metadata=dict(metadata or {}),
            headers=headers,
            autoClose=False,  # the caller's file stays the caller's
        )
        mtime = server_time(dict(response.header or []).get("date"))
        return ObjectInfo(key, size, _etag(response.body.etag), mtime, content_type, dict(metadata or {}))

    def list(
        self,
        prefix: str = "",
        delimiter: str | None = "/",
        token: str | None = None,
        limit: int = 1000,
    ) -> ListPage:
        """OBS lists by marker only, and moto's marker listing returns every sub-prefix on every page,
        so the page is merged and cut here: names after `token`, in order, at most `limit`."""
        marker = token
        if token and delimiter and token.endswith(delimiter) and len(token) > len(prefix):
            marker = token + AFTER_EVERYTHING  # a sub-prefix: skip the keys it rolled up
        response = self._call(
            None,
            self._client.listObjects,
            self.bucket,
            prefix=prefix or None,
            marker=marker,
            max_keys=limit,
            delimiter=delimiter or None,
        )
        body = response.body
        entries: dict[str, ObjectInfo | None] = {item.prefix: None for item in body.commonPrefixs or []}
        for item in body.contents or []:
            entries[item.key] = ObjectInfo(
                item.key, int(item.size or 0), _etag(item.etag), _sdk_time(item.lastModified)
            )
        names = sorted(name for name in entries if token is None or name > token)
        page = ListPage()
        for name in names[:limit]:
            info = entries[name]
            if info is None:
                page.prefixes.append(name)
            else:
                page.objects.append(info)
        if len(names) > limit or (body.is_truncated and names):
            page.next_token = names[:limit][-1]
        return page

    def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectInfo:
        """Server-side, except under SSE-C: the SDK sends a copy source's key as `str(bytes)`, so a
        binary SSE-C key cannot be presented for the source and the bytes go through this client."""
        if self._sse_c is not None:
            return self.copy_via_client(src, dst, metadata=metadata, content_type=content_type)
        return super().copy(src, dst, metadata=metadata, content_type=content_type)

    def _copy_object(
        self,
        source: ObjectInfo,
        dst: str,
        metadata: dict[str, str] | None,
        content_type: str | None,
        *,
        replace: bool,
    ) -> ObjectInfo:
        headers = CopyObjectHeader(
            directive="REPLACE" if replace else "COPY",
            contentType=content_type if replace else None,
            destSseHeader=self._sse,
            storageClass=self._connection.storage_class,
        )
        response = self._call(
            dst,
            self._client.copyObject,
            self.bucket,
            source.key,
            self.bucket,
            dst,
            metadata=dict(metadata or {}) if replace else None,
            headers=headers,
        )
        result = response.body
        mtime = _sdk_time(result.lastModified)
        return ObjectInfo(dst, source.size, _etag(result.etag), mtime, content_type, dict(metadata or {}))

    def delete(self, key: str) -> None:
        self._call(key, self._client.deleteObject, self.bucket, key)

    def create_multipart(
        self, key: str, *, metadata: dict[str, str] | None = None, content_type: str | None = None
    ) -> str:
        response = self._call(
            key,
            self._client.initiateMultipartUpload,
            self.bucket,
            key,
            storageClass=self._connection.storage_class,
            metadata=dict(metadata or {}),
            contentType=content_type,
            sseHeader=self._sse,
        )
        return response.body.uploadId

    def upload_part(self, key: str, upload_id: str, number: int, data: Payload, md5: str) -> UploadedPart:
        content = _sendable(data)
        response = self._call(
            key,
            self._client.uploadPart,
            self.bucket,
            key,
            number,
            upload_id,
            content=content,
            partSize=None if isinstance(content, bytes) else payload_size(data),  # a file is read this far
            md5=md5,
            sseHeader=self._sse_c,
            autoClose=False,
        )
        return UploadedPart(number, _etag(response.body.etag))

    def complete_multipart(self, key: str, upload_id: str, parts: list[UploadedPart]) -> ObjectInfo:
        """Stat after completing: the answer carries neither the size nor the metadata."""
        listed = [CompletePart(partNum=part.number, etag=f'"{part.etag}"') for part in parts]
        self._call(
            key,
            self._client.completeMultipartUpload,
            self.bucket,
            key,
            upload_id,
            CompleteMultipartUploadRequest(parts=listed),
        )
        return self.stat(key)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(NotFound):
            self._call(key, self._client.abortMultipartUpload, self.bucket, key, upload_id)

    def list_multipart(self, prefix: str = "") -> list[MultipartUpload]:
        uploads: list[MultipartUpload] = []
        request = ListMultipartUploadsRequest(prefix=prefix or None)
        while True:
            body = self._call(None, self._client.listMultipartUploads, self.bucket, request).body
            uploads += [
                MultipartUpload(item.key, item.uploadId, _sdk_time(item.initiated))
                for item in body.upload or []
            ]
            if not body.isTruncated:
                return uploads
            request = ListMultipartUploadsRequest(
                prefix=prefix or None, key_marker=body.nextKeyMarker, upload_id_marker=body.nextUploadIdMarker
            )

    def url(self, key: str, expires: int = 3600) -> str:
        with self._failures(key):
            return self._client.createSignedUrl("GET", self.bucket, key, expires=expires).signedUrl

    def close(self) -> None:
        self._client.close()

    # -- helpers -------------------------------------------------------------------------

    def _get(self, key: str, offset: int, length: int | None, *, in_memory: bool) -> Any:
        """GET a byte range; None when it starts past the end, which the service calls InvalidRange."""
        ranged = None if offset == 0 and length is None else byte_range(offset, length)
        headers = GetObjectHeader(range=ranged, sseHeader=self._sse_c)
        with self._failures(key):
            response = self._client.getObject(self.bucket, key, headers=headers, loadStreamInMemory=in_memory)
        if response.status == 416 or response.errorCode == "InvalidRange":
            return None
        return self._checked(response, key)

    def _copy_part(
        self, source: ObjectInfo, dst: str, upload_id: str, number: int, offset: int, length: int
    ) -> UploadedPart:
        response = self._call(
            dst,
            self._client.copyPart,
            self.bucket,
            dst,
            number,
            upload_id,
            f"/{self.bucket}/{source.key}",
            copySourceRange=byte_range(offset, length),
        )
        return UploadedPart(number, _etag(response.body.etag))

    def _call(self, key: str | None, method: Any, *args: Any, **kwargs: Any) -> Any:
        """One SDK call, its failures typed: the SDK raises only when no answer came."""
        with self._failures(key):
            response = method(*args, **kwargs)
        return self._checked(response, key)

    def _checked(self, response: Any, key: str | None) -> Any:
        """The answer if it is a success, else the typed error its status and code stand for."""
        status = response.status
        if status is None:
            raise Unavailable(f"{self._where(key)}: no answer", key=key)
        if status < 300:
            return response
        detail = response.errorMessage or response.reason
        raise self._answer_error(response.errorCode, status, key, detail, response.requestId)

    @contextlib.contextmanager
    def _failures(self, key: str | None) -> Iterator[None]:
        """What the SDK raises means no (whole) answer came: the service is unavailable."""
        try:
            yield
        except StorageError:
            raise
        except Exception as exc:
            reason = _unreachable_reason(exc)
            where = f"cannot reach {self._endpoint}" if reason else self._where(key)
            raise Unavailable(f"{where}: {reason or one_line(exc)}", key=key) from exc


def _unreachable_reason(exc: Exception) -> str | None:
    """Why no connection was made, in words, or None when the failure came later."""
    if isinstance(exc, TimeoutError):
        return "no answer in time (timed out)"
    if isinstance(exc, OSError | http.client.HTTPException):
        return socket_reason(exc) or f"connection failed ({one_line(exc)})"
    return None


def _metadata(response: Any) -> dict[str, str]:
    return dict(dict(response.header or []).get(METADATA_ENTRY) or {})


def _sendable(data: Payload) -> bytes | BinaryIO:
    """Bytes as bytes (the SDK sends them whole); a file as itself, read from where it stands."""
    return bytes(data) if isinstance(data, bytes | bytearray | memoryview) else data


def _etag(etag: str | None) -> str:
    return (etag or "").strip('"')


def _sdk_time(text: str | None) -> float:
    """Epoch seconds of a time the SDK parsed out of XML (listings, copies, uploads).

    The SDK turns the service's UTC time into local wall-clock text by `localtime(mktime(utc fields) -
    timezone)`; undoing each step gives the epoch back in any time zone, daylight saving included (but
    for the hour a fall-back repeats, which local text cannot tell apart).
    Text it could not parse it hands back unchanged, in the service's ISO 8601 form.
    """
    if not text:
        return time.time()
    try:
        wall = time.mktime(time.strptime(text, SDK_LOCAL_TIME))
    except ValueError:
        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            return time.time()
    return float(calendar.timegm(time.localtime(wall + time.timezone)))
