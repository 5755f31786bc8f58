"""Aliyun (Alibaba Cloud) Object Storage Service through its own SDK, oss2.

OSS is S3-like with its own dialect (`x-oss-*` headers, `OSS`/`OSS4-HMAC-SHA256` signatures), so
it is served by oss2 rather than boto3. Configured by the seed's `ALIYUN_OSS_*` names; secrets
come only from `ALIYUN_OSS_ACCESS_KEY`/`ALIYUN_OSS_SECRET_KEY` and no message ever contains one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import oss2
import requests
from oss2.exceptions import ClientError, InconsistentError, OssError, RequestError
from oss2.models import PartInfo

from .base import (
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
    PreconditionFailed,
    Storage,
    StorageError,
    Unavailable,
    UploadedPart,
    one_line,
    payload_size,
    unreachable_reason,
)
from .s3_family import S3_ERRORS_BY_CODE, S3_REJECTED_CREDENTIALS, BodyReads, S3FamilyStorage, server_time
from .settings import CA_BUNDLE, PROXY, SSE, SSE_KMS_KEY_ID, STORAGE_CLASS, SettingNames, Settings

AUTH_VERSIONS = ("v1", "v4")
POOL_SIZE = 32
"""Connections kept per session: at least as many as worker threads calling at once."""
META = "x-oss-meta-"

_ERRORS_BY_CODE: dict[str, type[StorageError]] = {
    **S3_ERRORS_BY_CODE,
    "SecurityTokenExpired": PermissionDenied,
    "InvalidSecurityToken": PermissionDenied,
    "FileAlreadyExists": PreconditionFailed,
    "InvalidObjectName": InvalidKey,
}


@dataclass(frozen=True)
class OssConnection:
    """How to reach and sign for OSS, and what every new object gets; secrets stay out of `repr`."""

    endpoint: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    region: str | None = None
    auth_version: str = "v1"
    ca_bundle: str | None = None
    proxy: str | None = None
    sse: str | None = None
    sse_kms_key_id: str | None = None
    storage_class: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> OssConnection:
        """The seed's names; v1 signing unless `ALIYUN_OSS_AUTH_VERSION=v4`, as Dify reads them."""
        region = settings.get("ALIYUN_OSS_REGION")
        auth_version = settings.choice("ALIYUN_OSS_AUTH_VERSION", AUTH_VERSIONS, "v1")
        if auth_version == "v4" and region is None:
            raise BadConfiguration("ALIYUN_OSS_AUTH_VERSION=v4 signs for a region: set ALIYUN_OSS_REGION")
        endpoint = settings.get("ALIYUN_OSS_ENDPOINT") or (region and f"https://oss-{region}.aliyuncs.com")
        if not endpoint:
            raise BadConfiguration("ALIYUN_OSS_ENDPOINT is not set: the OSS endpoint, or ALIYUN_OSS_REGION")
        sse = settings.sse()
        if sse == "sse-c":
            raise BadConfiguration(f"{SSE}=sse-c is not supported by aliyun-oss")
        return cls(
            endpoint=endpoint,
            access_key=settings.require("ALIYUN_OSS_ACCESS_KEY", "the OSS AccessKey ID"),
            secret_key=settings.require("ALIYUN_OSS_SECRET_KEY", "the OSS AccessKey secret"),
            region=region,
            auth_version=auth_version,
            ca_bundle=settings.get(CA_BUNDLE),
            proxy=settings.get(PROXY),
            sse=sse,
            sse_kms_key_id=settings.get(SSE_KMS_KEY_ID),
            storage_class=settings.get(STORAGE_CLASS),
        )

    def session(self) -> oss2.Session:
        session = oss2.Session(pool_size=POOL_SIZE)
        if self.ca_bundle:
            session.session.verify = self.ca_bundle
        return session

    def bucket(self, name: str, session: oss2.Session, connect: float, read: float) -> oss2.Bucket:
        """A client of one bucket; oss2 sends each request once (its retries are only in the
        resumable helpers, which objfs does not use), and the timeouts bound a hung server."""
        auth = oss2.AuthV4 if self.auth_version == "v4" else oss2.Auth
        return oss2.Bucket(
            auth(self.access_key, self.secret_key),
            self.endpoint,
            name,
            session=session,
            connect_timeout=(connect, read),
            proxies={"http": self.proxy, "https": self.proxy} if self.proxy else None,
            region=self.region,
        )

    def write_headers(self) -> dict[str, str]:
        """What PutObject, CopyObject and InitiateMultipartUpload add for encryption and class."""
        headers: dict[str, str] = {}
        if self.sse == "sse-s3":
            headers["x-oss-server-side-encryption"] = "AES256"
        elif self.sse == "sse-kms":
            headers["x-oss-server-side-encryption"] = "KMS"
            if self.sse_kms_key_id:
                headers["x-oss-server-side-encryption-key-id"] = self.sse_kms_key_id
        if self.storage_class:
            headers["x-oss-storage-class"] = self.storage_class
        return headers


class OssStorage(BodyReads, S3FamilyStorage):
    """One bucket; every method is one OSS request (copy, complete: two), except a copy of a
    source over `copy_limit`, which takes one request per part.

    Conditions: OSS checks put-if-absent itself (`x-oss-forbid-overwrite`) but has no If-Match on
    writes, so `if_match` is checked with a stat first and conditional writes are not atomic.
    """

    scheme = "oss"
    names = SettingNames(
        bucket="ALIYUN_OSS_BUCKET_NAME",
        endpoint="ALIYUN_OSS_ENDPOINT",
        region="ALIYUN_OSS_REGION",
        prefix="ALIYUN_OSS_PATH",
    )
    capabilities = Capabilities(
        copy=True,
        multipart=True,
        conditional_write=False,
        metadata_in_listing=False,
        # OSS takes parts from 100 KiB; 5 MiB is what S3-compatible test servers need, and objfs
        # writes larger parts anyway
        min_part_size=5 * 1024 * 1024,
        max_part_count=10_000,
        max_metadata_bytes=8192,
        # a PutObject etag is the MD5 of the bytes (OSS spells it in upper-case hex)
        etag_is_md5=True,
    )
    errors_by_code = _ERRORS_BY_CODE
    rejected_credentials = S3_REJECTED_CREDENTIALS | {"SecurityTokenExpired", "InvalidSecurityToken"}
    archived = "is archived (Archive-class)"
    copy_limit: int = 1024**3
    """Largest source one CopyObject accepts on OSS; bigger sources are copied in parts."""

    def __init__(self, bucket: str, connection: OssConnection) -> None:
        self.bucket = bucket
        self._connection = connection
        self._session = connection.session()
        try:
            self._bucket = connection.bucket(bucket, self._session, connect=10, read=60)
        except ClientError as exc:
            raise BadConfiguration(f"cannot configure {self.describe()}: {one_line(exc.body)}") from exc
        self._endpoint = self._bucket.endpoint
        self._writes = connection.write_headers()

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        bucket = settings.require("ALIYUN_OSS_BUCKET_NAME", "the bucket: oss://bucket/prefix")
        return cls(bucket, OssConnection.from_settings(settings))

    def check(self) -> None:
        """List at most one key with short timeouts, so a wrong endpoint fails in seconds."""
        probe = self._connection.bucket(self.bucket, self._session, connect=3, read=10)
        with self._calls():
            probe.list_objects(max_keys=1)

    def stat(self, key: str) -> ObjectInfo:
        with self._calls(key):
            head = self._bucket.head_object(key)
        return ObjectInfo(
            key,
            head.content_length or 0,
            head.etag,
            float(head.last_modified),
            head.content_type,
            _metadata(head.headers),
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
        self.check_conditions(key, if_match, False)
        headers = {**self._writes, **_attributes(metadata, content_type)}
        if if_none_match:
            headers["x-oss-forbid-overwrite"] = "true"
        if md5 is not None:
            headers["Content-MD5"] = md5
        size = payload_size(data)
        with self._calls(key):
            result = self._bucket.put_object(key, data, headers=headers)
        return ObjectInfo(key, size, result.etag, _server_time(result), content_type, dict(metadata or {}))

    def list(
        self,
        prefix: str = "",
        delimiter: str | None = "/",
        token: str | None = None,
        limit: int = 1000,
    ) -> ListPage:
        with self._calls():
            result = self._bucket.list_objects_v2(
                prefix, delimiter or "", continuation_token=token or "", max_keys=limit
            )
        return ListPage(
            objects=[
                ObjectInfo(item.key, item.size, item.etag, float(item.last_modified))
                for item in result.object_list
            ],
            prefixes=list(result.prefix_list),
            next_token=result.next_continuation_token if result.is_truncated else None,
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
        """REPLACE must restate the content type, or OSS drops it."""
        headers = {**self._writes, "x-oss-metadata-directive": "REPLACE" if replace else "COPY"}
        if replace:
            headers.update(_attributes(metadata, content_type))
        with self._calls(dst):
            result = self._bucket.copy_object(self.bucket, source.key, dst, headers=headers)
        mtime = _server_time(result)
        return ObjectInfo(dst, source.size, result.etag, mtime, content_type, dict(metadata or {}))

    def delete(self, key: str) -> None:
        with self._calls(key):
            self._bucket.delete_object(key)

    def create_multipart(
        self, key: str, *, metadata: dict[str, str] | None = None, content_type: str | None = None
    ) -> str:
        headers = {**self._writes, **_attributes(metadata, content_type)}
        with self._calls(key):
            return self._bucket.init_multipart_upload(key, headers=headers).upload_id

    def upload_part(self, key: str, upload_id: str, number: int, data: Payload, md5: str) -> UploadedPart:
        with self._calls(key):
            result = self._bucket.upload_part(key, upload_id, number, data, headers={"Content-MD5": md5})
        return UploadedPart(number, result.etag)

    def complete_multipart(self, key: str, upload_id: str, parts: list[UploadedPart]) -> ObjectInfo:
        """Stat after completing: the answer carries neither the size nor the metadata."""
        listed = [PartInfo(part.number, part.etag) for part in parts]
        with self._calls(key):
            self._bucket.complete_multipart_upload(key, upload_id, listed)
        return self.stat(key)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(NotFound), self._calls(key):
            self._bucket.abort_multipart_upload(key, upload_id)

    def list_multipart(self, prefix: str = "") -> list[MultipartUpload]:
        uploads: list[MultipartUpload] = []
        markers = {"key_marker": "", "upload_id_marker": ""}
        with self._calls():
            while True:
                result = self._bucket.list_multipart_uploads(prefix=prefix, **markers)
                uploads += [
                    MultipartUpload(u.key, u.upload_id, float(u.initiation_date)) for u in result.upload_list
                ]
                if not result.is_truncated:
                    return uploads
                markers = {
                    "key_marker": result.next_key_marker,
                    "upload_id_marker": result.next_upload_id_marker,
                }

    def url(self, key: str, expires: int = 3600) -> str:
        with self._calls(key):
            return self._bucket.sign_url("GET", key, expires, slash_safe=True)

    def close(self) -> None:
        self._session.session.close()

    # -- helpers -------------------------------------------------------------------------

    def _body(self, key: str, offset: int, length: int | None) -> Any:
        """GET a byte range; None when it starts past the end.

        `x-oss-range-behavior: standard` makes OSS answer a range past the end with 416 and a
        range running over the end with the bytes there are; without it OSS ignores such a
        range and returns the whole object.
        """
        if offset == 0 and length is None:
            span = None
        else:
            span = (offset, None if length is None else offset + length - 1)
        try:
            return self._bucket.get_object(key, byte_range=span, headers={"x-oss-range-behavior": "standard"})
        except OssError as exc:
            if exc.status == 416:
                return None
            raise

    def _copy_part(
        self, source: ObjectInfo, dst: str, upload_id: str, number: int, offset: int, length: int
    ) -> UploadedPart:
        """If-Match, so a source overwritten mid-copy fails the copy instead of mixing bytes."""
        headers = {"x-oss-copy-source-if-match": source.etag}
        span = (offset, offset + length - 1)
        with self._calls(dst):
            result = self._bucket.upload_part_copy(
                self.bucket, source.key, span, dst, upload_id, number, headers=headers
            )
        return UploadedPart(number, result.etag)

    @contextlib.contextmanager
    def _calls(self, key: str | None = None) -> Iterator[None]:
        """Turn every SDK failure into a typed error, once for all methods, so no oss2 type escapes."""
        try:
            yield
        except RequestError as exc:
            raise self._unreachable(exc.exception, key) from exc
        except requests.RequestException as exc:  # a body that broke off while being read
            raise self._unreachable(exc, key) from exc
        except InconsistentError as exc:
            message = f"{self._where(key)}: the CRC-64 of the bytes sent and stored differ"
            raise IntegrityError(message, key=key, request_id=exc.request_id or None) from exc
        except ClientError as exc:
            raise InvalidKey(f"{self._where(key)}: {one_line(exc.body)}", key=key) from exc
        except OssError as exc:
            raise self._service_error(exc, key) from exc

    def _service_error(self, exc: OssError, key: str | None) -> StorageError:
        return self._answer_error(exc.code, exc.status, key, exc.message, exc.request_id)

    def _explain(self, kind: type[StorageError], code: str, key: str | None, detail: str | None) -> str:
        """OSS's own refusal of put-if-absent reads as the contract words it."""
        if kind is PreconditionFailed and code == "FileAlreadyExists":
            return f"{key} already exists"
        return super()._explain(kind, code, key, detail)

    def _unreachable(self, exc: BaseException, key: str | None) -> Unavailable:
        return Unavailable(f"cannot reach {self._endpoint}: {_unreachable_reason(exc)}", key=key)


def _attributes(metadata: dict[str, str] | None, content_type: str | None) -> dict[str, str]:
    """Metadata and content type as put, copy (REPLACE) and initiate-multipart all spell them."""
    headers = {f"{META}{name}": value for name, value in (metadata or {}).items()}
    if content_type:
        headers["Content-Type"] = content_type
    return headers


def _metadata(headers: Any) -> dict[str, str]:
    return {
        name.lower()[len(META) :]: value for name, value in headers.items() if name.lower().startswith(META)
    }


def _server_time(result: Any) -> float:
    return server_time(result.headers.get("date"))


def _unreachable_reason(exc: BaseException) -> str:
    """Why no answer came, in words, from the requests (urllib3) failure under it."""
    if isinstance(exc, requests.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, requests.Timeout):
        return "no answer in time (read timed out)"
    return unreachable_reason(exc)
