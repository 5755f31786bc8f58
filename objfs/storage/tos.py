"""Volcengine TOS through its own SDK (`tos`), which speaks TOS's dialect: x-tos-* headers, JSON bodies.

Credentials come from `VOLCENGINE_TOS_ACCESS_KEY`/`VOLCENGINE_TOS_SECRET_KEY`; without them requests
are anonymous, which only a public bucket accepts. No message ever contains a secret.

The SDK's CRC64 check stays on: TOS returns the CRC64 of every upload and of every whole-object
download, and the SDK compares it with its own, so bytes damaged on the way are caught in both
directions; a mismatch is an `IntegrityError`. Ranged reads carry no CRC, as on TOS itself.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from tos import HttpMethodType, MetadataDirectiveType, StorageClassType, TosClientV2
from tos.exceptions import TosClientError, TosServerError
from tos.models2 import UploadedPart as SdkPart

from .base import (
    STREAM_CHUNK,
    BadConfiguration,
    Capabilities,
    IntegrityError,
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
    absent_fails_if_match,
    content_md5,
    one_line,
    payload_size,
)
from .s3_family import S3_ERRORS_BY_CODE, S3_REJECTED_CREDENTIALS, S3FamilyStorage, byte_range, server_time
from .settings import CA_BUNDLE, PROXY, SSE, STORAGE_CLASS, SettingNames, Settings

if logging.getLogger("tos").level == logging.NOTSET:
    # below DEBUG the SDK print()s its slow-request warnings; at WARNING they go through logging
    logging.getLogger("tos").setLevel(logging.WARNING)

ACCESS_KEY = "VOLCENGINE_TOS_ACCESS_KEY"
SECRET_KEY = "VOLCENGINE_TOS_SECRET_KEY"
STORAGE_CLASSES = {
    kind.value: kind for kind in StorageClassType if kind is not StorageClassType.Storage_Unknown
}
CRC_FAILURES = ("Check CRC failed", "client crc")
"""How the SDK words a CRC64 mismatch; it raises a plain TosClientError with no code to tell it by."""

_ERRORS_BY_CODE: dict[str, type[StorageError]] = {
    **S3_ERRORS_BY_CODE,
    "ExpiredToken": PermissionDenied,
    "InvalidSecurityToken": PermissionDenied,
    "KeyTooLong": InvalidKey,
    "InvalidObjectName": InvalidKey,
    "SlowDown": Unavailable,
    "TooManyRequests": Unavailable,
    "ExceedAccountQPSLimit": Unavailable,
    "ExceedAccountRateLimit": Unavailable,
    "ExceedBucketQPSLimit": Unavailable,
    "ExceedBucketRateLimit": Unavailable,
}


@dataclass(frozen=True)
class TosConnection:
    """How to reach and sign for TOS, and what every new object gets; secrets stay out of `repr`."""

    endpoint: str
    region: str
    access_key: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    proxy: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None
    sse: str | None = None
    sse_c_key: bytes | None = field(default=None, repr=False)
    storage_class: StorageClassType | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TosConnection:
        access, secret = settings.get(ACCESS_KEY, ""), settings.get(SECRET_KEY, "")
        if bool(access) != bool(secret):
            raise BadConfiguration(f"{ACCESS_KEY} and {SECRET_KEY} must be set together")
        sse = settings.sse()
        if sse == "sse-kms":
            raise BadConfiguration(
                f"{SSE}=sse-kms is not supported by volcengine-tos (its SDK has no per-object KMS key); "
                "set KMS default encryption on the bucket instead"
            )
        ca_bundle = settings.get(CA_BUNDLE)
        if ca_bundle is not None and not os.path.isfile(ca_bundle):
            raise BadConfiguration(f"{CA_BUNDLE} does not name a readable file")
        return cls(
            endpoint=settings.get(TosStorage.names.endpoint or "", ""),
            region=settings.require(TosStorage.names.region or "", "the TOS region, e.g. cn-beijing"),
            access_key=access,
            secret_key=secret,
            proxy=settings.get(PROXY),
            ca_bundle=ca_bundle,
            sse=sse,
            sse_c_key=settings.sse_c_key(),
            storage_class=_storage_class(settings.get(STORAGE_CLASS)),
        )

    def client(self, connect_timeout: float, read_timeout: float) -> TosClientV2:
        """One attempt per call (objfs.storage.retrying retries every backend alike); no DNS cache,
        which the SDK installs by patching urllib3 for the whole process; no content-type guessing,
        so an object's type is only what objfs gives it.

        The slow-request log stays on: turning it off (threshold 0) makes tos 2.9.3's decorator
        return None from every call it wraps, put_object included.
        """
        proxy = _proxy_parts(self.proxy)
        client = TosClientV2(
            self.access_key,
            self.secret_key,
            self.endpoint,
            self.region,
            auto_recognize_content_type=False,
            max_retry_count=0,
            max_connections=32,
            connection_time=connect_timeout,
            socket_timeout=read_timeout,
            dns_cache_time=0,
            ca_crt=self.ca_bundle,
            **proxy,
        )
        if proxy:
            # the SDK proxies only http:// endpoints; STORAGE_PROXY is for every request
            client.proxies = {"http": client.proxies["http"], "https": client.proxies["http"]}
        return client

    def write_arguments(self) -> dict[str, Any]:
        """What put, create-multipart and copy add for encryption and storage class."""
        arguments = self.read_arguments()
        if self.sse == "sse-s3":
            arguments["server_side_encryption"] = "AES256"
        if self.storage_class is not None:
            arguments["storage_class"] = self.storage_class
        return arguments

    def read_arguments(self) -> dict[str, Any]:
        """With SSE-C every request that touches the bytes must present the key again."""
        if self.sse_c_key is None:
            return {}
        return {
            "ssec_algorithm": "AES256",
            "ssec_key": base64.b64encode(self.sse_c_key).decode(),
            "ssec_key_md5": content_md5(self.sse_c_key),
        }

    def copy_source_arguments(self) -> dict[str, Any]:
        return {f"copy_source_{name}": value for name, value in self.read_arguments().items()}


def _storage_class(name: str | None) -> StorageClassType | None:
    if name is None:
        return None
    kind = STORAGE_CLASSES.get(name.upper())
    if kind is None:
        raise BadConfiguration(
            f"{STORAGE_CLASS} must be one of {', '.join(STORAGE_CLASSES)} for volcengine-tos"
        )
    return kind


def _proxy_parts(proxy: str | None) -> dict[str, Any]:
    """STORAGE_PROXY as the SDK takes it; user and password stay percent-encoded, as the SDK
    pastes them back into a URL."""
    if proxy is None:
        return {}
    parts = urlsplit(proxy)
    try:
        port = parts.port or 80
    except ValueError:
        port = 0
    if parts.scheme != "http" or not parts.hostname or not port:
        raise BadConfiguration(f"{PROXY} must be an http://host:port URL for volcengine-tos")
    return {
        "proxy_host": parts.hostname,
        "proxy_port": port,
        "proxy_username": parts.username,
        "proxy_password": parts.password,
    }


class TosStorage(S3FamilyStorage):
    """One bucket; every method is one TOS request, except copy (stat, then copy) and complete
    (complete, then stat), and a copy of a source over `copy_limit`, which takes one per part."""

    scheme = "tos"
    names = SettingNames(
        bucket="VOLCENGINE_TOS_BUCKET_NAME",
        endpoint="VOLCENGINE_TOS_ENDPOINT",
        region="VOLCENGINE_TOS_REGION",
    )
    capabilities = Capabilities(
        copy=True,
        multipart=True,
        conditional_write=True,
        metadata_in_listing=False,
        max_metadata_bytes=2048,
        etag_is_md5=False,
    )
    errors_by_code = _ERRORS_BY_CODE
    rejected_credentials = S3_REJECTED_CREDENTIALS | {"ExpiredToken"}
    archived = "is in an archive storage class"

    def __init__(self, bucket: str, connection: TosConnection) -> None:
        self.bucket = bucket
        self._connection = connection
        self._client = self._make_client(connect_timeout=10, read_timeout=60)
        self._endpoint = self._client.endpoint
        self._writes = connection.write_arguments()
        self._reads = connection.read_arguments()

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        bucket = settings.require(cls.names.bucket or "", f"the bucket: {cls.scheme}://bucket/prefix")
        return cls(bucket, TosConnection.from_settings(settings))

    def check(self) -> None:
        """List at most one key with short timeouts, so a wrong endpoint fails in seconds."""
        probe = self._make_client(connect_timeout=3, read_timeout=4)
        try:
            with self._calls():
                probe.list_objects_type2(self.bucket, max_keys=1, list_only_once=True)
        finally:
            probe.close()

    def stat(self, key: str) -> ObjectInfo:
        with self._calls(key):
            head = self._client.head_object(self.bucket, key, **self._reads)
        return ObjectInfo(
            key, head.content_length, head.etag, head.last_modified.timestamp(), head.content_type, head.meta
        )

    def read(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        if length == 0:
            self.stat(key)  # no empty range exists, but a missing key must still be NotFound
            return b""
        return b"".join(self._chunks(key, offset, length))

    def read_stream(self, key: str, offset: int = 0) -> Iterator[bytes]:
        return self._chunks(key, offset, None)

    def _chunks(self, key: str, offset: int, length: int | None) -> Iterator[bytes]:
        """Read to the end, even for one chunk: the SDK checks a whole object's CRC64 only there."""
        with self._calls(key):
            output = self._get(key, offset, length)
            if output is None:
                return
            try:
                yield from iter(lambda: output.read(STREAM_CHUNK), b"")
            finally:
                output.resp.resp.close()  # a consumer that stops early must not hold the connection

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
        size = payload_size(data)
        with absent_fails_if_match(key, if_match), self._calls(key):
            output = self._client.put_object(
                self.bucket,
                key,
                content=data,
                content_length=size,
                content_md5=md5,
                content_type=content_type,
                meta=metadata or None,
                forbid_overwrite=if_none_match or None,
                if_match=if_match,
                **self._writes,
            )
        return ObjectInfo(key, size, output.etag, _server_time(output), content_type, dict(metadata or {}))

    def list(
        self,
        prefix: str = "",
        delimiter: str | None = "/",
        token: str | None = None,
        limit: int = 1000,
    ) -> ListPage:
        with self._calls():
            output = self._client.list_objects_type2(
                self.bucket,
                prefix=prefix or None,
                delimiter=delimiter or None,
                continuation_token=token,
                max_keys=limit,
                list_only_once=True,
            )
        return ListPage(
            objects=[
                ObjectInfo(item.key, item.size, item.etag, item.last_modified.timestamp())
                for item in output.contents
            ],
            prefixes=[item.prefix for item in output.common_prefixes],
            next_token=output.next_continuation_token if output.is_truncated else None,
        )

    def _copy_object(
        self,
        source: ObjectInfo,
        dst: str,
        metadata: dict[str, str] | None,
        content_type: str | None,
        *,
        replace: bool,
    ) -> ObjectInfo:
        """REPLACE must restate the content type, or TOS drops it."""
        arguments: dict[str, Any] = {**self._writes, **self._connection.copy_source_arguments()}
        if replace:
            arguments.update(
                metadata_directive=MetadataDirectiveType.Metadata_Directive_Replace,
                meta=metadata or None,
                content_type=content_type,
            )
        with self._calls(dst):
            output = self._client.copy_object(self.bucket, dst, self.bucket, source.key, **arguments)
        mtime = output.last_modified.timestamp() if output.last_modified else time.time()
        return ObjectInfo(dst, source.size, output.etag, mtime, content_type, dict(metadata or {}))

    def delete(self, key: str) -> None:
        with self._calls(key):
            self._client.delete_object(self.bucket, key)

    def create_multipart(
        self, key: str, *, metadata: dict[str, str] | None = None, content_type: str | None = None
    ) -> str:
        with self._calls(key):
            output = self._client.create_multipart_upload(
                self.bucket, key, content_type=content_type, meta=metadata or None, **self._writes
            )
        return output.upload_id

    def upload_part(self, key: str, upload_id: str, number: int, data: Payload, md5: str) -> UploadedPart:
        with self._calls(key):
            output = self._client.upload_part(
                self.bucket,
                key,
                upload_id,
                number,
                content=data,
                content_length=payload_size(data),
                content_md5=md5,
                **self._reads,
            )
        return UploadedPart(number, output.etag)

    def complete_multipart(self, key: str, upload_id: str, parts: list[UploadedPart]) -> ObjectInfo:
        with self._calls(key):
            self._client.complete_multipart_upload(
                self.bucket, key, upload_id, parts=[SdkPart(part.number, part.etag) for part in parts]
            )
        return self.stat(key)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(NotFound), self._calls(key):
            self._client.abort_multipart_upload(self.bucket, key, upload_id)

    def list_multipart(self, prefix: str = "") -> list[MultipartUpload]:
        uploads: list[MultipartUpload] = []
        markers: dict[str, str] = {}
        while True:
            with self._calls():
                output = self._client.list_multipart_uploads(self.bucket, prefix=prefix or None, **markers)
            uploads += [
                MultipartUpload(item.key, item.upload_id, item.initiated.timestamp())
                for item in output.uploads
            ]
            if not output.is_truncated:
                return uploads
            markers = {"key_marker": output.next_key_marker, "upload_id_marker": output.next_upload_id_marker}

    def url(self, key: str, expires: int = 3600) -> str:
        with self._calls(key):
            return self._client.pre_signed_url(
                HttpMethodType.Http_Method_Get, self.bucket, key, expires=expires
            ).signed_url

    def close(self) -> None:
        self._client.close()

    # -- helpers -------------------------------------------------------------------------

    def _make_client(self, connect_timeout: float, read_timeout: float) -> TosClientV2:
        try:
            client = self._connection.client(connect_timeout, read_timeout)
        except TosClientError as exc:
            raise BadConfiguration(f"cannot configure {self.describe()}: {one_line(exc.message)}") from exc
        if not urlsplit(client.endpoint).hostname:
            region = self._connection.region
            raise BadConfiguration(f"{self.names.endpoint} is not set and region {region!r} has no default")
        return client

    def _get(self, key: str, offset: int, length: int | None) -> Any:
        """GET the bytes from `offset`; None when that is past the end, which TOS answers with 416."""
        ranged = {} if offset == 0 and length is None else {"range": byte_range(offset, length)}
        try:
            return self._client.get_object(self.bucket, key, **ranged, **self._reads)
        except TosServerError as exc:
            if exc.status_code == 416:
                return None
            raise

    def _copy_part(
        self, source: ObjectInfo, dst: str, upload_id: str, number: int, offset: int, length: int
    ) -> UploadedPart:
        """If-Match, so a source overwritten mid-copy fails the copy instead of completing as a mix."""
        with self._calls(dst):
            output = self._client.upload_part_copy(
                self.bucket,
                dst,
                upload_id,
                number,
                self.bucket,
                source.key,
                copy_source_range_start=offset,
                copy_source_range_end=offset + length - 1,
                copy_source_if_match=source.etag,
                **self._reads,
                **self._connection.copy_source_arguments(),
            )
        return UploadedPart(number, output.etag)

    @contextlib.contextmanager
    def _calls(self, key: str | None = None) -> Iterator[None]:
        """Turn every SDK failure into a typed error, once for all methods, so no SDK type escapes.

        Bodies are read after the SDK returns, so requests' own errors (a reset mid-body) land here too.
        """
        try:
            yield
        except TosServerError as exc:
            raise self._service_error(exc, key) from exc
        except TosClientError as exc:
            raise self._client_error(exc, key) from exc
        except requests.RequestException as exc:
            raise self._unreachable(exc, key) from exc
        except OSError as exc:
            raise Unavailable(f"{self._where(key)}: {exc.strerror or exc}", key=key) from exc

    def _service_error(self, exc: TosServerError, key: str | None) -> StorageError:
        status = int(exc.status_code or 0)
        return self._answer_error(exc.code, status, key, exc.message, exc.request_id)

    def _client_error(self, exc: TosClientError, key: str | None) -> StorageError:
        """The SDK's client errors: a failed connection (with the cause), a CRC64 mismatch, or a
        request it refused to send (an object name TOS does not allow)."""
        if isinstance(exc.cause, requests.RequestException):
            return self._unreachable(exc.cause, key)
        if str(exc.message).startswith(CRC_FAILURES):
            return IntegrityError(f"{self._where(key)}: CRC64 mismatch ({one_line(exc.message)})", key=key)
        if "object name" in str(exc.message):
            return InvalidKey(f"{self._where(key)}: {one_line(exc.message)}", key=key)
        return Unavailable(f"{self._where(key)}: {one_line(exc.message)}", key=key)

    def _unreachable(self, exc: requests.RequestException, key: str | None) -> Unavailable:
        via = f" through proxy {_proxy_address(self._connection.proxy)}" if self._connection.proxy else ""
        return Unavailable(f"cannot reach {self._endpoint}{via}: {_reason(exc)}", key=key)


def _server_time(output: Any) -> float:
    return server_time(output.header.get("date"))


def _proxy_address(proxy: str | None) -> str:
    """The proxy without its user and password, for messages."""
    parts = urlsplit(proxy or "")
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 80}"


def _reason(exc: requests.RequestException) -> str:
    """Why no answer came, in words; requests buries the socket error under urllib3's wrappers."""
    if isinstance(exc, requests.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, requests.ReadTimeout):
        return "no answer in time (read timed out)"
    text = str(exc)
    for marker, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "host name not found"),
        ("Temporary failure in name resolution", "host name not found"),
        ("Connection reset", "connection reset"),
    ):
        if marker in text:
            return reason
    return f"connection failed ({one_line(exc)})"
