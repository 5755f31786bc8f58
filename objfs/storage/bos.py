"""Baidu Object Storage (BOS) through bce-python-sdk, configured by the seed's BAIDU_OBS_* settings.

The endpoint names the region (`https://bj.bcebos.com`), so there is no region setting; an endpoint
without a scheme is taken as HTTPS. The SDK opens one HTTP connection per request and keeps no
other state, so one client serves every worker thread. Its retries are off (objfs retries every
backend the same way), but the SDK itself repeats a request answered 403 once, whatever the policy.
It has one socket timeout for connecting and for each read, so it is the read timeout (60 s).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
from collections.abc import Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from baidubce.auth.bce_credentials import BceCredentials
from baidubce.bce_client_configuration import BceClientConfiguration
from baidubce.exception import BceClientError, BceHttpClientError, BceServerError
from baidubce.retry.retry_policy import NoRetryPolicy
from baidubce.services.bos.bos_client import BosClient

from .base import (
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
    absent_fails_if_match,
    content_md5,
    one_line,
    payload_size,
    socket_reason,
)
from .s3_family import S3_ERRORS_BY_CODE, S3_REJECTED_CREDENTIALS, BodyReads, S3FamilyStorage
from .settings import CA_BUNDLE, PROXY, SSE, STORAGE_CLASS, SettingNames, Settings

BUCKET = "BAIDU_OBS_BUCKET_NAME"
ENDPOINT = "BAIDU_OBS_ENDPOINT"
ACCESS_KEY = "BAIDU_OBS_ACCESS_KEY"
SECRET_KEY = "BAIDU_OBS_SECRET_KEY"
TIMEOUT_MS = 60_000
CHECK_TIMEOUT_MS = 5_000
OPEN_END = 2**62
"""The last byte of an open-ended range: the SDK only sends `bytes=first-last`, and a last byte
past the end of the object means "to the end" (RFC 9110)."""
META = "x-bce-meta-"

_ERRORS_BY_CODE: dict[str, type[StorageError]] = {
    **S3_ERRORS_BY_CODE,
    "RequestExpired": PermissionDenied,
    "SlowDown": Unavailable,
}


class BosStorage(BodyReads, S3FamilyStorage):
    """One bucket; every method is one BOS request, except copy (a stat first) and complete (a stat
    after), and a copy of a source over `copy_limit`, which takes one request per part."""

    scheme = "bos"
    names = SettingNames(bucket=BUCKET, endpoint=ENDPOINT)
    capabilities = Capabilities(
        copy=True,
        multipart=True,
        conditional_write=True,
        metadata_in_listing=False,
        max_metadata_bytes=2048,
        etag_is_md5=False,
    )
    """Conditional: BOS's PutObject takes If-Match and If-None-Match: *. The etag of a multipart or
    appended object is not marked as such, so no etag is trusted to be an MD5."""
    errors_by_code = _ERRORS_BY_CODE
    rejected_credentials = S3_REJECTED_CREDENTIALS | {"RequestExpired"}

    def __init__(
        self,
        bucket: str,
        endpoint: str,
        access_key: str,
        secret_key: str,
        *,
        proxy: str | None = None,
        storage_class: str | None = None,
    ) -> None:
        self.bucket = bucket
        self._endpoint = endpoint if "://" in endpoint else f"https://{endpoint}"
        if urlsplit(self._endpoint).scheme not in ("http", "https"):
            raise BadConfiguration(f"{ENDPOINT} must be an http:// or https:// URL")
        self._credentials = BceCredentials(access_key, secret_key)
        self._proxy = _proxy_address(proxy)
        self._storage_class = storage_class
        self._client = self._make_client(TIMEOUT_MS)
        self._pending: dict[str, dict[str, str]] = {}
        """User metadata of the uploads this instance started: BOS takes it when one completes."""
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        bucket = settings.require(BUCKET, "the bucket: bos://bucket/prefix")
        endpoint = settings.require(ENDPOINT, "the BOS endpoint, e.g. https://bj.bcebos.com")
        access_key = settings.require(ACCESS_KEY, "the BOS access key")
        secret_key = settings.require(SECRET_KEY, "the BOS secret key")
        if settings.get(CA_BUNDLE) is not None:
            raise BadConfiguration(
                f"{CA_BUNDLE} is not supported by baidu-obs: bce-python-sdk always uses the system's CAs"
            )
        if settings.sse() is not None:
            raise BadConfiguration(
                f"{SSE} is not supported by baidu-obs: bce-python-sdk cannot ask for encryption of "
                "multipart uploads and copies; set the bucket's default encryption instead"
            )
        return cls(
            bucket,
            endpoint,
            access_key,
            secret_key,
            proxy=settings.get(PROXY),
            storage_class=settings.get(STORAGE_CLASS),
        )

    def check(self) -> None:
        """List at most one key with a 5 s timeout: a listing names a missing bucket, a HEAD cannot."""
        with self._calls():
            self._make_client(CHECK_TIMEOUT_MS).list_objects(self.bucket, max_keys=1)

    def stat(self, key: str) -> ObjectInfo:
        with self._calls(key):
            headers = vars(self._client.get_object_meta_data(self.bucket, key).metadata)
        return ObjectInfo(
            key,
            int(headers["content-length"]),
            headers["etag"].strip('"'),
            parsedate_to_datetime(headers["last-modified"]).timestamp(),
            headers.get("content-type"),
            {name[len(META) :]: value for name, value in headers.items() if name.startswith(META)},
        )

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
        """Always with Content-MD5, computed here when not given: BOS checks it, and without it the
        SDK would compute a CRC32 instead, which it cannot do for bytes."""
        conditions = {"If-Match": if_match} if if_match is not None else {}
        if if_none_match:
            conditions["If-None-Match"] = "*"
        md5 = md5 or content_md5(data)
        with absent_fails_if_match(key, if_match), self._calls(key):
            response = self._client.put_object(
                self.bucket,
                key,
                _rewound(data),
                payload_size(data),
                content_md5=md5,
                content_type=content_type,
                user_metadata=dict(metadata or {}),
                storage_class=self._storage_class,
                cond_read_write=conditions or None,
            )
        headers = vars(response.metadata)
        mtime = parsedate_to_datetime(headers["date"]).timestamp()
        return ObjectInfo(
            key, payload_size(data), headers["etag"].strip('"'), mtime, content_type, dict(metadata or {})
        )

    def list(
        self,
        prefix: str = "",
        delimiter: str | None = "/",
        token: str | None = None,
        limit: int = 1000,
    ) -> ListPage:
        """`token` is BOS's marker: the last name (key or sub-prefix) of the page before."""
        with self._calls():
            response = self._client.list_objects(
                self.bucket, max_keys=limit, prefix=prefix, marker=token, delimiter=delimiter or None
            )
        return ListPage(
            objects=[
                ObjectInfo(item.key, int(item.size), item.etag.strip('"'), _iso_time(item.last_modified))
                for item in response.contents or []
            ],
            prefixes=[item.prefix for item in response.common_prefixes or []],
            next_token=response.next_marker if response.is_truncated else None,
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
        """A replacement must restate the content type and metadata, or BOS drops them."""
        kept = dict(metadata or {})
        with self._calls(dst):
            response = self._client.copy_object(
                self.bucket,
                source.key,
                self.bucket,
                dst,
                content_type=content_type if replace else None,
                user_metadata=kept if replace else None,
                storage_class=self._storage_class,
            )
        mtime = _iso_time(response.last_modified)
        return ObjectInfo(dst, source.size, response.etag.strip('"'), mtime, content_type, kept)

    def delete(self, key: str) -> None:
        with contextlib.suppress(NotFound), self._calls(key):
            self._client.delete_object(self.bucket, key)

    def create_multipart(
        self, key: str, *, metadata: dict[str, str] | None = None, content_type: str | None = None
    ) -> str:
        with self._calls(key):
            response = self._client.initiate_multipart_upload(
                self.bucket, key, content_type=content_type, storage_class=self._storage_class
            )
        with self._lock:
            self._pending[response.upload_id] = dict(metadata or {})
        return response.upload_id

    def upload_part(self, key: str, upload_id: str, number: int, data: Payload, md5: str) -> UploadedPart:
        with self._calls(key):
            response = self._client.upload_part(
                self.bucket, key, upload_id, number, payload_size(data), _rewound(data), part_md5=md5
            )
        return UploadedPart(number, response.metadata.etag.strip('"'))

    def complete_multipart(self, key: str, upload_id: str, parts: list[UploadedPart]) -> ObjectInfo:
        """Give the upload the metadata it was started with; stat after, as the answer has no size."""
        with self._lock:
            metadata = self._pending.get(upload_id, {})
        listed = [{"partNumber": part.number, "eTag": part.etag} for part in parts]
        with self._calls(key):
            self._client.complete_multipart_upload(
                self.bucket, key, upload_id, listed, user_metadata=metadata
            )
        with self._lock:
            self._pending.pop(upload_id, None)
        return self.stat(key)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(NotFound), self._calls(key):
            self._client.abort_multipart_upload(self.bucket, key, upload_id)
        with self._lock:
            self._pending.pop(upload_id, None)

    def list_multipart(self, prefix: str = "") -> list[MultipartUpload]:
        with self._calls():
            return [
                MultipartUpload(item.key, item.upload_id, _iso_time(item.initiated))
                for item in self._client.list_all_multipart_uploads(self.bucket, prefix=prefix)
            ]

    def url(self, key: str, expires: int = 3600) -> str:
        with self._calls(key):
            url = self._client.generate_pre_signed_url(self.bucket, key, expiration_in_seconds=expires)
        return url.decode()

    # -- helpers -------------------------------------------------------------------------

    def _make_client(self, timeout_ms: int) -> BosClient:
        host, port = self._proxy or (None, None)
        return BosClient(
            BceClientConfiguration(
                credentials=self._credentials,
                endpoint=self._endpoint,
                connection_timeout_in_mills=timeout_ms,
                retry_policy=NoRetryPolicy(),
                proxy_host=host,
                proxy_port=port,
                under_line_headers=False,  # keeps `x-bce-meta-objfs-test` as sent, not `bce_meta_objfs_test`
            )
        )

    def _body(self, key: str, offset: int, length: int | None) -> Any:
        """GET a byte range; None when it starts past the end, which BOS answers with 416."""
        last = OPEN_END if length is None else offset + length - 1
        ranged = None if offset == 0 and length is None else [offset, last]
        try:
            return self._client.get_object(self.bucket, key, range=ranged).data
        except BceHttpClientError as exc:
            if getattr(exc.last_error, "status_code", None) == 416:
                return None
            raise

    def _copy_part(
        self, source: ObjectInfo, dst: str, upload_id: str, number: int, offset: int, length: int
    ) -> UploadedPart:
        """Only while the source keeps its etag, so an overwrite mid-copy fails the copy instead of
        mixing old and new bytes."""
        with self._calls(dst):
            response = self._client.upload_part_copy(
                self.bucket, source.key, self.bucket, dst, upload_id, number, length, offset, etag=source.etag
            )
        return UploadedPart(number, response.etag.strip('"'))

    @contextlib.contextmanager
    def _calls(self, key: str | None = None) -> Iterator[None]:
        """Turn every SDK failure into a typed error, once for all methods, so no SDK type escapes."""
        try:
            yield
        except BceHttpClientError as exc:
            raise self._failure(exc.last_error, key) from exc
        except BceServerError as exc:
            raise self._service_error(exc, key) from exc
        except (BceClientError, ValueError) as exc:
            # the SDK refuses keys BOS would refuse ('.', '..', 'v1', a leading '/') before sending
            raise InvalidKey(f"{self._where(key)}: {one_line(exc)}", key=key) from exc
        except (OSError, http.client.HTTPException) as exc:  # while reading a body
            raise self._failure(exc, key) from exc

    def _failure(self, error: BaseException, key: str | None) -> StorageError:
        """What went wrong under the SDK's wrapper: the service's answer, or why none came."""
        if isinstance(error, BceServerError):
            return self._service_error(error, key)
        if isinstance(error, json.JSONDecodeError):
            return Unavailable(f"{self._where(key)}: the answer is not BOS's JSON (a proxy's page?)", key=key)
        reason = _unreachable_reason(error)
        if reason is not None:
            return Unavailable(f"cannot reach {self._endpoint}: {reason}", key=key)
        return StorageError(f"{self._where(key)}: {one_line(error)}", key=key)

    def _service_error(self, error: BceServerError, key: str | None) -> StorageError:
        status = int(error.status_code or 0)
        return self._answer_error(error.code, status, key, str(error), error.request_id)


def _proxy_address(url: str | None) -> tuple[str, int] | None:
    """The SDK talks plain HTTP to a proxy given as host and port, and cannot log in to one."""
    if url is None:
        return None
    parts = urlsplit(url if "://" in url else f"http://{url}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or parts.username or not parts.hostname or port is None:
        raise BadConfiguration(f"{PROXY} must be http://HOST:PORT for baidu-obs (no credentials)")
    return parts.hostname, port


def _rewound(data: Payload) -> Any:
    """Bytes as they are; a file at its start, since a retried call finds it where the last one stopped."""
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    data.seek(0)
    return data


def _iso_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _unreachable_reason(error: BaseException) -> str | None:
    """Why no answer came, in words, or None when the failure is not about the connection."""
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, OSError | http.client.HTTPException):
        return socket_reason(error) or f"connection failed ({one_line(error) or type(error).__name__})"
    return None
